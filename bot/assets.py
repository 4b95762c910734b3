"""Make sure the trained intent model and the FAQ index exist and match the data on disk."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bot.config import Settings
from bot.knowledge.embedder import TextEmbedder, load_embedder
from bot.knowledge.index import BuildResult, build_index
from bot.knowledge.loader import load_entries
from bot.nlu.data import data_hash, deduplicate, load_examples
from bot.nlu.train import Manifest, train


def train_model(settings: Settings, data: Path | None = None, out: Path | None = None,
                console: Console | None = None) -> Manifest:
    console = console or Console(stderr=True)
    examples = load_examples(data or settings.training_data)
    intents = len({e.intent for e in examples})
    console.print(f"Training on {len(examples)} messages, {intents} intents "
                  f"({settings.train.mode}, up to {settings.train.epochs} epochs)")
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=False) as bar:
        task = bar.add_task("training", total=None)

        def progress(desc: str, done: int, total: int) -> None:
            bar.update(task, description=desc, completed=done, total=total)

        manifest = train(examples, settings.train, out or settings.model_dir, settings.base_model,
                         progress)
    console.print(f"validation accuracy {manifest.val_accuracy:.3f}, macro-F1 "
                  f"{manifest.val_macro_f1:.3f}, out-of-scope threshold {manifest.oos_threshold}, "
                  f"{manifest.train_seconds:.0f}s")
    return manifest


def model_is_current(settings: Settings) -> bool:
    path = settings.model_dir / "manifest.json"
    if not path.exists():
        return False
    examples = deduplicate(load_examples(settings.training_data))
    return Manifest.load(settings.model_dir).data_hash == data_hash(examples)


def build_faq_index(settings: Settings, force: bool = False, console: Console | None = None,
                    embedder: TextEmbedder | None = None) -> BuildResult:
    console = console or Console(stderr=True)
    entries = load_entries(settings.knowledge_base)
    result = build_index(entries, embedder or load_embedder(settings.embedder), settings.index_dir,
                         force=force, progress=True)
    m = result.manifest
    if result.skipped:
        console.print(f"FAQ index is up to date ({m.entries} entries, hash {m.content_hash})")
    else:
        console.print(f"Indexed {m.entries} FAQ entries as {m.vectors} vectors ({m.kind}) "
                      f"in {m.build_seconds:.1f}s")
    return result


def ensure_assets(settings: Settings, console: Console | None = None) -> None:
    console = console or Console(stderr=True)
    if not model_is_current(settings):
        console.print("No trained model for the current training data: training one now.")
        train_model(settings, console=console)
    build_faq_index(settings, console=console)
