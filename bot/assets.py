"""Make sure the trained intent model and the FAQ index exist and match the data on disk."""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bot.config import Settings, TrainSettings
from bot.encoders.sharing import current_runtimes, runtimes, shared_embedder
from bot.knowledge.embedder import TextEmbedder, load_embedder
from bot.knowledge.index import BuildResult, build_index
from bot.knowledge.loader import FaqEntry, load_entries
from bot.nlu.data import Example, data_hash, deduplicate, load_examples, unlabeled_messages
from bot.nlu.rasa_nlu import RasaNluData, read_rasa_nlu_data
from bot.nlu.self_training import self_train
from bot.nlu.train import Manifest, train


def training_examples(settings: Settings, data: Path | None = None) -> list[Example]:
    """The labelled messages the intent model learns: a Rasa project's every NLU file, else
    the support logs (or nlu.yml, or CSV) at `data` or `settings.training_data`."""
    if data is None and settings.rasa.project is not None:
        return rasa_examples(rasa_nlu(settings))
    return load_examples(data or settings.training_data)


def rasa_examples(nlu: RasaNluData) -> list[Example]:
    return [Example(e.text, e.intent) for e in nlu.examples]


def rasa_nlu(settings: Settings) -> RasaNluData:
    return read_rasa_nlu_data([settings.training_data])


def train_model(settings: Settings, data: Path | None = None, out: Path | None = None,
                console: Console | None = None) -> Manifest:
    """The default language's model; with the default data, also the multilingual one (and, for
    a Rasa project, the entity tagger on the fine-tuned encoder)."""
    console = console or Console(stderr=True)
    model_dir = out or settings.model_dir
    project = settings.rasa.project if data is None else None
    nlu = rasa_nlu(settings) if project is not None else None  # read once: intents and entities
    examples = rasa_examples(nlu) if nlu is not None else training_examples(settings, data)
    reads_logs = settings.train.self_training and project is None  # self-training's untagged messages
    unlabeled = unlabeled_messages(data or settings.training_data) if reads_logs else []
    manifest = _train(examples, settings.train, model_dir, settings.models.base_model, console, unlabeled)
    export_onnx(settings, model_dir, manifest, console)
    if project is not None and nlu is not None:
        train_entities(settings, project, nlu, model_dir, console)
    elif data is None and out is None and settings.multilingual_model_dir is not None:
        train_multilingual_model(settings, console)
    return manifest


def train_entities(settings: Settings, project_dir: Path, nlu: RasaNluData, model_dir: Path,
                   console: Console) -> None:
    """A Rasa project's entities: BIO tags learned on the intent model's encoder, plus its regexes,
    lookup tables, synonyms and Duckling's dimensions (from built-in patterns)."""
    from bot.nlu.entities import EntityExtractor
    from bot.rasa.project import RasaProject

    project = RasaProject.load(project_dir)
    manifest = Manifest.load(model_dir)
    encoder = str(model_dir / "model") if (model_dir / "model").is_dir() else manifest.base_model
    started = time.perf_counter()
    EntityExtractor.train(nlu, encoder, model_dir / "entities",
                          dimensions=project.config.entity_dimensions, seed=settings.train.seed)
    console.print(f"entity tagger trained in {time.perf_counter() - started:.0f}s")


def train_multilingual_model(settings: Settings, console: Console | None = None) -> Manifest | None:
    if settings.multilingual_model_dir is None:
        return None
    cfg = settings.train.model_copy(update={"mode": "multilingual"})
    return _train(multilingual_examples(settings), cfg, settings.multilingual_model_dir, None,
                  console or Console(stderr=True))


def multilingual_examples(settings: Settings) -> list[Example]:
    """The default language's logs plus `training_data/<lang>/` for every other served language."""
    examples = load_examples(settings.training_data)
    for lang in settings.languages:
        folder = settings.training_data / lang
        if lang != settings.default_language and folder.is_dir():
            examples += load_examples(folder)
    return examples


def _train(examples: list[Example], cfg: TrainSettings, out: Path, base_model: str | None,
           console: Console, unlabeled: list[str] | None = None) -> Manifest:
    intents = len({e.intent for e in examples})
    console.print(f"Training on {len(examples)} messages, {intents} intents "
                  f"({cfg.mode}, up to {cfg.epochs} epochs)")
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=False) as bar:
        task = bar.add_task("training", total=None)

        def progress(desc: str, done: int, total: int) -> None:
            bar.update(task, description=desc, completed=done, total=total)

        if cfg.self_training and cfg.mode != "multilingual" and unlabeled:
            console.print(f"Self-training: {len(unlabeled)} unlabelled messages to choose from")
            manifest = self_train(examples, unlabeled, cfg, out, base_model, progress)
        else:
            manifest = train(examples, cfg, out, base_model, progress)
    console.print(f"validation accuracy {manifest.val_accuracy:.3f}, macro-F1 "
                  f"{manifest.val_macro_f1:.3f}, out-of-scope threshold {manifest.oos_threshold}, "
                  f"{manifest.train_seconds:.0f}s")
    return manifest


def export_onnx(settings: Settings, model_dir: Path, manifest: Manifest, console: Console) -> None:
    """With the intent model on onnx-int8 (`nlu_runtime`, auto included), write the int8 graph
    beside the weights now, at training time: a production model folder may be read-only when the
    server starts."""
    if runtimes(settings, manifest)[0] != "onnx-int8" or manifest.mode == "multilingual":
        return
    from bot.encoders.onnx import ensure_model_int8

    path = ensure_model_int8(model_dir, manifest, shared_embedder(settings, manifest))
    console.print(f"ONNX int8 encoder written to {path} ({path.stat().st_size / 1e6:.0f} MB)")


def model_is_current(settings: Settings) -> bool:
    current = _is_current(settings.model_dir, training_examples(settings))
    return current and (settings.rasa.project is None or (settings.model_dir / "entities").is_dir())


def _is_current(model_dir: Path, examples: list[Example]) -> bool:
    path = model_dir / "manifest.json"
    return path.exists() and Manifest.load(model_dir).data_hash == data_hash(deduplicate(examples))


def build_faq_index(settings: Settings, force: bool = False, console: Console | None = None,
                    embedder: TextEmbedder | None = None) -> BuildResult:
    """The default-language index, and the multilingual one when other languages are served."""
    console = console or Console(stderr=True)
    entries = load_entries(settings.knowledge_base)
    result = _build(entries, embedder or serving_embedder(settings), settings.index_dir, settings, force,
                    console)
    if settings.multilingual_index_dir is not None:
        _build(entries, load_embedder(settings.models.multilingual_embedder), settings.multilingual_index_dir,
               settings, force, console)
    return result


def serving_embedder(settings: Settings) -> TextEmbedder:
    """The FAQ embedder as it will encode customers' messages (its runtime included): the index's
    vectors, its entry ranker and its unanswered head are fitted on what the queries will look like."""
    return load_embedder(settings.models.embedder, current_runtimes(settings)[1],
                         settings.data_dir / "models" / "embedder", settings.inference.torch_threads)


def _build(entries: list[FaqEntry], embedder: TextEmbedder, out: Path, settings: Settings, force: bool,
           console: Console) -> BuildResult:
    result = build_index(entries, embedder, out, force=force, progress=True,
                         base_language=settings.default_language)
    m = result.manifest
    name = Path(m.embedder).name
    if result.skipped:
        console.print(f"FAQ index ({name}) is up to date ({m.entries} entries, hash {m.content_hash})")
    else:
        console.print(f"Indexed {m.entries} FAQ entries as {m.vectors} vectors ({m.kind}, {name}) "
                      f"in {m.build_seconds:.1f}s")
    return result


def ensure_assets(settings: Settings, console: Console | None = None) -> None:
    console = console or Console(stderr=True)
    if not model_is_current(settings):
        console.print("No trained model for the current training data: training one now.")
        train_model(settings, console=console)
    elif settings.multilingual_model_dir is not None and not _is_current(
            settings.multilingual_model_dir, multilingual_examples(settings)):
        console.print("No multilingual intent model for the current training data: training one now.")
        train_multilingual_model(settings, console)
    manifest = Manifest.load(settings.model_dir)
    if runtimes(settings, manifest)[0] == "onnx-int8":  # a model trained before the runtime was chosen
        from bot.encoders.onnx import ensure_model_int8

        ensure_model_int8(settings.model_dir, manifest, shared_embedder(settings, manifest))
    if settings.rasa.project is None or settings.knowledge_base.is_dir():
        build_faq_index(settings, console=console)  # an int8 embedder's graph is exported for it
