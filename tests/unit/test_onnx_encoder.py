"""The ONNX Runtime int8 path of the intent model (`SUPPORTBOT_NLU_RUNTIME=onnx-int8`): it answers
like torch, `supportbot train` writes it, a second start reuses it, a retrained model replaces it.

Agreement is checked on the demo's own training messages. int8 weights move logits by a few
percent of their range, so a message whose two best intents are nearly tied may flip; a broken
export (padding not masked, the wrong pooling, no normalisation) flips confident ones too. So each
test asks for high overall agreement and for *every* message with a clear margin to agree. The
fine-tuned model here is deliberately tiny (1 epoch on 150 messages, for speed): its predictions
are less certain than a real model's, so its overall bar is lower (measured: 95 %; frozen: 99 %;
BANKING77's full model: benchmarks/onnx_int8.py).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError
from rich.console import Console

from bot.assets import train_model
from bot.config import Settings, TrainSettings
from bot.encoders.manifest import Manifest
from bot.encoders.onnx import ensure_int8, int8_path, is_current
from bot.nlu.data import deduplicate, load_examples
from bot.nlu.model import IntentModel, LanguageRoutedIntentModel
from tests.conftest import ROOT, demo_settings

TINY_FINETUNE = TrainSettings(mode="finetune", epochs=1, max_examples=150, max_length=32, seed=13)


@pytest.fixture(scope="module")
def texts() -> list[str]:
    """Every other distinct demo message (537): enough to measure agreement, half the time."""
    return [e.text for e in deduplicate(load_examples(ROOT / "training_data"))][::2]


@pytest.fixture(scope="module")
def frozen_data(demo_assets: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the demo models (the shared folder stays as other tests expect it), shared index."""
    data = tmp_path_factory.mktemp("onnx-frozen")
    shutil.copytree(demo_assets / "models", data / "models")
    (data / "index").symlink_to(demo_assets / "index")
    return data


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Trained through `supportbot train`'s path with the onnx-int8 runtime chosen."""
    out = tmp_path_factory.mktemp("onnx-finetune") / "intent"
    # the intent model's own graph (with the shared pass, training writes shared.int8.onnx instead)
    settings = Settings(train=TINY_FINETUNE, models={"nlu_runtime": "onnx-int8", "share_encoder": False})
    train_model(settings, data=ROOT / "training_data", out=out, console=Console(quiet=True))
    return out


def agreement(a: np.ndarray, b: np.ndarray, margin: float) -> tuple[float, float]:
    """Share of equal top intents overall, and among messages whose top-2 gap in `a` > margin."""
    same = a.argmax(1) == b.argmax(1)
    top2 = np.sort(a, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > margin
    assert clear.mean() > 0.5, "too few clear predictions to test"
    return float(same.mean()), float(same[clear].mean())


def assert_close(a: np.ndarray, b: np.ndarray) -> None:
    spread = float(np.mean(a.max(1) - a.min(1)))
    assert float(np.abs(a - b).mean()) < 0.04 * spread


def test_frozen_int8_answers_like_torch(frozen_data: Path, texts: list[str],
                                        caplog: pytest.LogCaptureFixture) -> None:
    model_dir = frozen_data / "models" / "intent"
    torch_model = IntentModel.load(model_dir, runtime="torch")
    with caplog.at_level(logging.WARNING, logger="bot.encoders.onnx"):
        onnx_model = IntentModel.load(model_dir, runtime="onnx-int8", threads=1)
    assert "exporting" in caplog.text and int8_path(model_dir).exists()  # the lazy fallback
    assert onnx_model.runtime == "onnx-int8" and onnx_model._features is not torch_model._features

    vectors_t, vectors_o = torch_model._features(texts), onnx_model._features(texts)
    assert np.allclose(np.linalg.norm(vectors_o, axis=1), 1.0, atol=1e-4)
    cosine = (vectors_t * vectors_o).sum(1)
    assert cosine.mean() > 0.98 and cosine.min() > 0.9

    head = onnx_model._coef.T, onnx_model._intercept  # what `logits` does after the vectors
    logits_t, logits_o = vectors_t @ head[0] + head[1], vectors_o @ head[0] + head[1]
    # (one batch against the same batch: int8 activations are scaled per batch, so a message's
    # numbers move a little with the messages it is batched with)
    np.testing.assert_allclose(onnx_model.logits(texts[:8]),
                               onnx_model._features(texts[:8]) @ head[0] + head[1], rtol=1e-5, atol=1e-5)
    overall, clear = agreement(logits_t, logits_o, margin=1.0)
    assert overall >= 0.97 and clear == 1.0
    assert_close(logits_t, logits_o)


def test_training_writes_the_int8_file_and_it_answers_like_torch(finetuned: Path, texts: list[str],
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    path = int8_path(finetuned)
    assert is_current(path, Manifest.load(finetuned))  # written by training, before any load
    torch_model = IntentModel.load(finetuned)
    with caplog.at_level(logging.WARNING, logger="bot.encoders.onnx"):
        onnx_model = IntentModel.load(finetuned, runtime="onnx-int8", threads=1)
    assert "exporting" not in caplog.text
    assert not hasattr(onnx_model, "_model")  # torch weights are not loaded at all

    logits_t, logits_o = torch_model.logits(texts), onnx_model.logits(texts)
    overall, clear = agreement(logits_t, logits_o, margin=3.0)
    # int8 moves a logit by up to ~4 (benchmarks/results/onnx_int8.json): among the clear torch
    # predictions at most one in a hundred may flip (1 of 350 with transformers 5.25's numerics).
    assert overall >= 0.92 and clear >= 0.99
    assert_close(logits_t, logits_o)
    parse_t, parse_o = torch_model.parse("I'd like to talk to a real person please"), onnx_model.parse(
        "I'd like to talk to a real person please")
    assert parse_o.intent == parse_t.intent
    assert abs(parse_o.confidence - parse_t.confidence) < 0.1


def test_file_is_reused_and_replaced_when_the_model_is_retrained(frozen_data: Path, tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    model_dir = tmp_path / "intent"
    shutil.copytree(frozen_data / "models" / "intent", model_dir,
                    ignore=shutil.ignore_patterns("onnx"))
    manifest = Manifest.load(model_dir)
    path = ensure_int8(model_dir, manifest)
    before = path.stat()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="bot.encoders.onnx"):
        IntentModel.load(model_dir, runtime="onnx-int8")
        assert ensure_int8(model_dir, manifest) == path
    assert "exporting" not in caplog.text
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary files left

    manifest.created_at += 1  # as if `train` had written a new model into the same folder
    manifest.save(model_dir)
    assert not is_current(path, manifest)
    with caplog.at_level(logging.WARNING, logger="bot.encoders.onnx"):
        IntentModel.load(model_dir, runtime="onnx-int8")
    assert "older training run" in caplog.text
    assert is_current(path, manifest) and path.stat().st_ino != before.st_ino  # renamed into place


def test_unwritable_model_folder_exports_to_a_temporary_folder_once(
        frozen_data: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    model_dir = tmp_path / "intent"
    shutil.copytree(frozen_data / "models" / "intent", model_dir,
                    ignore=shutil.ignore_patterns("onnx"))
    (model_dir / "onnx").write_text("")  # a file where the folder goes: writing fails (even as root)
    manifest = Manifest.load(model_dir)
    path = ensure_int8(model_dir, manifest)
    try:
        assert path.parent.parent == Path(tempfile.gettempdir()) and is_current(path, manifest)
        assert "not writable" in caplog.text
        caplog.clear()
        model = IntentModel.load(model_dir, runtime="onnx-int8")
        assert "exporting" not in caplog.text  # the second start reuses the temporary file
        assert model.parse("I'd like to talk to a real person please").intent == "talk_to_human"
    finally:
        shutil.rmtree(path.parent)


def test_load_models_takes_the_runtime_from_settings(frozen_data: Path) -> None:
    from bot.services import load_models

    nlu, _ = load_models(
        demo_settings(frozen_data, models__nlu_runtime="onnx-int8", inference__torch_threads=1)
    )
    assert isinstance(nlu, LanguageRoutedIntentModel)
    assert nlu.default.runtime == "onnx-int8"
    assert nlu.multilingual is not None and nlu.multilingual.runtime == "torch"  # no torch encoder
    assert nlu.parse("I'd like to talk to a real person please").intent == "talk_to_human"


def test_runtime_setting_is_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().models.nlu_runtime == "auto"  # int8 where it passed its benchmark bar
    monkeypatch.setenv("SUPPORTBOT_NLU_RUNTIME", "onnx-int8")
    assert Settings().models.nlu_runtime == "onnx-int8"
    for bad in ("onnx", "int8", "ONNX-INT8", ""):
        monkeypatch.setenv("SUPPORTBOT_NLU_RUNTIME", bad)
        with pytest.raises(ValidationError, match="nlu_runtime"):
            Settings()
    monkeypatch.delenv("SUPPORTBOT_NLU_RUNTIME")
    with pytest.raises(ValueError, match="unknown intent runtime"):
        IntentModel(Path("never-read"), runtime="tensorrt")  # refused before anything loads


# -- the FAQ embedder (SUPPORTBOT_EMBEDDER_RUNTIME=onnx-int8) ---------------------------------------

def test_int8_embedder_finds_what_torch_finds_and_its_graph_is_reused(frozen_data: Path) -> None:
    """Served through load_models, int8 query vectors search the index the frozen demo model's
    `auto` built with torch (a mismatch that is logged). On the held-out paraphrases the top entry
    agrees with torch's for nearly every query (mostly near-ties differ; benchmarks/embedder_int8.py
    measures Recall@1 per runtime, with each runtime's own index)."""
    import yaml

    from bot.knowledge.embedder import OnnxEmbedder
    from bot.services import load_models

    settings = demo_settings(frozen_data, models__embedder_runtime="onnx-int8", inference__torch_threads=1)
    _, kb_int8 = load_models(settings)
    _, kb_torch = load_models(demo_settings(frozen_data, models__embedder_runtime="torch",
                                            models__nlu_runtime="torch", inference__torch_threads=1))
    assert isinstance(kb_int8.default.embedder, OnnxEmbedder)
    assert kb_int8.multilingual is not None and kb_int8.multilingual.embedder.multilingual  # e5: its own
    doc = yaml.safe_load((ROOT / "benchmarks" / "data" / "faq_paraphrases.yml").read_text(encoding="utf-8"))
    queries = [q["text"] for q in doc["queries"]]
    a = [hits[0].entry_id for hits in kb_int8.search_batch(queries, 3, "en")]
    b = [hits[0].entry_id for hits in kb_torch.search_batch(queries, 3, "en")]
    assert np.mean([x == y for x, y in zip(a, b, strict=True)]) >= 0.95
    vectors = kb_int8.default.embedder.encode(queries[:8])
    assert vectors.shape == (8, 384) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-4)
    # The generative fallback's grounding check keeps torch's vectors (its thresholds are torch's).
    from bot.dialogue.domain import Domain
    from bot.generation.extractive import ExtractiveComposer
    from bot.inference import InferencePool
    from bot.knowledge.embedder import Embedder
    from bot.observability import Metrics
    from bot.services import build_generation

    generation = build_generation(settings, Domain.load(settings.domain_file), kb_int8,
                                  InferencePool(1, 4), Metrics(), ExtractiveComposer())
    assert isinstance(generation.checker.encode.__self__, Embedder)
    # Exported once into <data_dir>/models/embedder and reused by the next start.
    graphs = list((frozen_data / "models" / "embedder").glob("*/model.int8.onnx"))
    assert len(graphs) == 1
    written = graphs[0].stat().st_mtime_ns
    load_models(settings)
    assert graphs[0].stat().st_mtime_ns == written


def test_embedder_runtime_is_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.knowledge.embedder import load_embedder

    assert Settings().models.embedder_runtime == "auto"
    monkeypatch.setenv("SUPPORTBOT_EMBEDDER_RUNTIME", "onnx")
    with pytest.raises(ValidationError, match="embedder_runtime"):
        Settings()
    with pytest.raises(ValueError, match="unknown embedder runtime"):
        load_embedder(None, runtime="tensorrt")
    with pytest.raises(ValueError, match="cache folder"):
        load_embedder(None, runtime="onnx-int8")


def test_unwritable_data_dir_exports_the_embedder_to_a_temporary_folder_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from bot.encoders.onnx import ensure_sentence_int8
    from bot.encoders.paths import resolve
    from bot.knowledge.embedder import OnnxEmbedder

    (tmp_path / "embedder").write_text("")  # a file where the folder goes: writing fails (even as root)
    path = ensure_sentence_int8(resolve(None), tmp_path / "embedder")
    try:
        assert path.parent.parent == Path(tempfile.gettempdir()) and "not writable" in caplog.text
        caplog.clear()
        embedder = OnnxEmbedder(None, tmp_path / "embedder")
        assert "exporting" not in caplog.text  # the next start reuses the temporary file
        assert embedder.encode(["where is my parcel"]).shape == (1, 384)
    finally:
        shutil.rmtree(path.parent)
