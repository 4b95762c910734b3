"""Out of scope by distance (`train.oos_method`): a model trained with it says so in its manifest,
keeps its scorer beside the weights, and every runtime (torch, the pass shared with the FAQ
embedder, ONNX int8) reads the same vectors and decides the same way."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from bot.nlu.model import IntentModel
from bot.nlu.oos import OOS_FILE, KnnScorer, MahalanobisScorer, auroc, choose_distance_threshold
from bot.services import load_models
from tests.conftest import TINY_FINETUNE, demo_settings, tiny_finetuned

pytestmark = pytest.mark.integration

TINY_KNN = TINY_FINETUNE.model_copy(update={"oos_method": "knn"})
MESSAGES = ["where is my parcel?", "Can I pay with PayPal?", "i want to return the kettle, it leaks",
            "what is the boiling point of mercury on mars", "ok thanks, bye"]


@pytest.fixture(scope="module")
def knn_dir(demo_assets: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_finetuned(demo_assets, tmp_path_factory.mktemp("knn"), TINY_KNN)


def test_the_manifest_and_scorer_are_written(knn_dir: Path) -> None:
    model_dir = knn_dir / "models" / "intent"
    manifest = json.loads((model_dir / "manifest.json").read_text())
    assert manifest["oos_method"] == "knn" and manifest["oos_distance"] > 0
    assert (model_dir / OOS_FILE).exists()
    model = IntentModel.load(model_dir)
    vectors, logits = model.vectors_and_logits(MESSAGES)
    assert vectors.shape == (len(MESSAGES), 384)
    assert logits == pytest.approx(model.logits(MESSAGES), abs=1e-4)


def test_the_distance_threshold_decides(knn_dir: Path, tmp_path: Path) -> None:
    """The chosen distance, not the softmax threshold, decides: no distance keeps everything in
    scope that the out-of-scope class does not win; a zero distance sends everything out."""
    def parsed(distance: float) -> list[bool]:
        model_dir = tmp_path / f"d{distance}"
        shutil.copytree(knn_dir / "models" / "intent", model_dir)
        manifest = json.loads((model_dir / "manifest.json").read_text())
        manifest.update(oos_distance=distance, oos_threshold=0.999)
        (model_dir / "manifest.json").write_text(json.dumps(manifest))
        return [p.out_of_scope and p.intent != "out_of_scope"
                for p in IntentModel.load(model_dir).parse_batch(MESSAGES)]

    assert not any(parsed(2.0))  # cosine distances are at most 2
    assert all(p for p in parsed(-1.0))


def test_every_runtime_reads_the_same_distance(knn_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(knn_dir / "models" / "intent", data / "models" / "intent")
    (data / "index").symlink_to(knn_dir / "index")
    plain = IntentModel.load(data / "models" / "intent")
    shared, _ = load_models(demo_settings(data, train=TINY_KNN, models__multilingual_embedder=""))
    int8 = IntentModel.load(data / "models" / "intent", runtime="onnx-int8")
    expected = plain.parse_batch(MESSAGES)
    got = shared.parse_batch(MESSAGES)
    assert [(p.intent, p.out_of_scope) for p in got] == [(p.intent, p.out_of_scope) for p in expected]
    vectors, _ = plain.vectors_and_logits(MESSAGES)
    quantised, logits = int8.vectors_and_logits(MESSAGES)
    cos = (vectors * quantised).sum(1) / np.linalg.norm(vectors, axis=1) / np.linalg.norm(quantised, axis=1)
    assert cos.min() > 0.95 and logits.shape == (len(MESSAGES), len(plain.labels))


@pytest.mark.parametrize("scorer", [KnnScorer, MahalanobisScorer])
def test_scorers_rank_far_messages_above_near_ones(scorer: type, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 16)) * 3
    labels = np.repeat(np.arange(4), 50)
    train = centres[labels] + rng.normal(size=(200, 16)) * 0.3
    near = centres[np.arange(40) % 4] + rng.normal(size=(40, 16)) * 0.3
    far = rng.normal(size=(40, 16)) * 3
    fitted = scorer.fit(train, labels)
    scores = np.concatenate([fitted.score(near), fitted.score(far)])
    is_far = np.r_[np.zeros(40, bool), np.ones(40, bool)]
    assert auroc(scores, is_far) > 0.95
    pred = np.r_[np.arange(40) % 4, np.zeros(40, int)]
    val_labels = np.r_[np.arange(40) % 4, np.full(40, 4)]
    threshold = choose_distance_threshold(scores, pred, val_labels, oos_label=4)
    assert ((scores > threshold) == is_far).mean() > 0.9
