"""Training: deterministic given a seed, writes a loadable model directory with its report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bot.config import Settings, TrainSettings
from bot.nlu.data import Example, load_examples
from bot.nlu.model import IntentModel
from bot.nlu.train import train

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def small() -> list[Example]:
    examples = load_examples(ROOT / "training_data")
    keep = {"greet", "order_status", "shipping_cost", "out_of_scope", "talk_to_human"}
    return [e for e in examples if e.intent in keep]


def by_intent(examples: list[Example]) -> dict[str, list[Example]]:
    by: dict[str, list[Example]] = {}
    for example in examples:
        by.setdefault(example.intent, []).append(example)
    return by


def test_finetuning_is_deterministic_and_round_trips(small: list[Example], tmp_path: Path) -> None:
    cfg = TrainSettings(mode="finetune", epochs=1, batch_size=16, max_length=24, max_examples=60,
                        learning_rate=1e-4, seed=7)
    a = train(small, cfg, tmp_path / "a")
    b = train(small, cfg, tmp_path / "b")
    ma, mb = IntentModel.load(tmp_path / "a"), IntentModel.load(tmp_path / "b")
    texts = ["where is my parcel", "hello", "what's the weather"]
    np.testing.assert_allclose(ma.logits(texts), mb.logits(texts), rtol=1e-5, atol=1e-5)
    assert (a.val_accuracy, a.temperature, a.oos_threshold) == (
        b.val_accuracy, b.temperature, b.oos_threshold)
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["mode"] == "finetune" and manifest["labels"] == sorted(manifest["labels"])
    assert {"base_model", "data_hash", "val_accuracy", "val_macro_f1", "oos_threshold"} <= set(manifest)
    assert (tmp_path / "a" / "confusion_matrix.png").stat().st_size > 1000


def test_frozen_head_learns_the_demo_intents(small: list[Example], tmp_path: Path) -> None:
    manifest = train(small, TrainSettings(mode="frozen", seed=3), tmp_path)
    assert manifest.val_accuracy >= 0.8
    model = IntentModel.load(tmp_path)
    parse = model.parse("I'd like to talk to a real person please")
    assert parse.intent == "talk_to_human" and not parse.out_of_scope
    assert parse.ranking[0].confidence >= parse.ranking[1].confidence
    assert model.parse("who won the football last night").out_of_scope


def test_missing_model_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="supportbot train"):
        IntentModel.load(tmp_path)


def test_contrastive_pairs_partner_each_message_with_its_own_and_other_intents() -> None:
    from bot.nlu.trainers.contrastive import pairs

    y = np.array([0, 0, 0, 1, 1, 2])
    left, right, same = pairs(y, 3, np.random.default_rng(0))
    assert ((y[left] == y[right]) == (same == 1.0)).all() and (left != right).all()
    assert (np.bincount(left[same == 0.0]) == 3).all()
    assert np.bincount(left[same == 1.0], minlength=6).tolist() == [3, 3, 3, 3, 3, 0]  # 5 is alone


def test_the_contrastive_stage_pulls_an_intents_messages_together(small: list[Example],
                                                                   tmp_path: Path) -> None:
    by = by_intent(small)
    few = [e for intent in sorted(by) for e in by[intent][:5]]
    texts, labels = [e.text for e in few], np.array([sorted(by).index(e.intent) for e in few])

    def margin(pairs_per_message: int) -> float:
        cfg = TrainSettings(mode="finetune", epochs=1, batch_size=8, max_length=24, val_fraction=0.0,
                            seed=7, contrastive_pairs=pairs_per_message)
        train(few, cfg, tmp_path / str(pairs_per_message))
        vectors, _ = IntentModel.load(tmp_path / str(pairs_per_message)).vectors_and_logits(texts)
        unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        sims, same = unit @ unit.T, labels[:, None] == labels[None, :]
        return float(sims[same & ~np.eye(len(texts), dtype=bool)].mean() - sims[~same].mean())

    assert margin(8) > margin(0) + 0.02


def test_label_smoothing_makes_the_fine_tuned_model_less_certain(small: list[Example],
                                                                  tmp_path: Path) -> None:
    texts = [e.text for e in small[:40]]

    def certainty(smoothing: float) -> float:
        cfg = TrainSettings(mode="finetune", epochs=2, batch_size=16, max_length=24, max_examples=60,
                            seed=7, label_smoothing=smoothing)
        train(small, cfg, tmp_path / str(smoothing))
        logits = IntentModel.load(tmp_path / str(smoothing)).logits(texts)
        z = np.exp(logits - logits.max(1, keepdims=True))
        return float((z / z.sum(1, keepdims=True)).max(1).mean())

    assert certainty(0.3) < certainty(0.0) - 0.02


def test_rdrop_trains_a_different_deterministic_model(small: list[Example], tmp_path: Path) -> None:
    texts = [e.text for e in small[:20]]

    def logits(rdrop: float, name: str) -> np.ndarray:
        cfg = TrainSettings(mode="finetune", epochs=1, batch_size=16, max_length=24, max_examples=60,
                            seed=7, rdrop=rdrop)
        train(small, cfg, tmp_path / name)
        return IntentModel.load(tmp_path / name).logits(texts)

    with_rdrop = logits(1.0, "a")
    np.testing.assert_allclose(with_rdrop, logits(1.0, "b"), rtol=1e-5, atol=1e-5)
    assert np.abs(with_rdrop - logits(0.0, "plain")).max() > 1e-3


def test_pseudo_labels_are_the_surest_few_per_intent_and_never_out_of_scope() -> None:
    from bot.nlu.self_training import pseudo_labelled

    labels = ["a", "b", "out_of_scope"]
    probs = np.array([[0.9, 0.05, 0.05], [0.6, 0.3, 0.1], [0.7, 0.2, 0.1], [0.4, 0.35, 0.25],
                      [0.1, 0.8, 0.1], [0.05, 0.05, 0.9]])
    texts = [f"t{i}" for i in range(len(probs))]
    chosen = pseudo_labelled(texts, probs, labels, per_intent=2, min_confidence=0.5)
    assert [(e.text, e.intent) for e in chosen] == [("t0", "a"), ("t2", "a"), ("t4", "b")]


def test_self_training_adds_pseudo_labelled_messages_and_keeps_the_data_hash(small: list[Example],
                                                                             tmp_path: Path) -> None:
    from bot.nlu.data import data_hash, deduplicate
    from bot.nlu.self_training import self_train

    by = by_intent(small)
    few = [e for intent in sorted(by) for e in by[intent][:6]]
    unlabeled = [e.text for intent in sorted(by) for e in by[intent][6:20]]
    cfg = TrainSettings(mode="frozen", seed=3, val_fraction=0.0, self_training=3,
                        self_training_confidence=0.3)
    manifest = self_train(few, unlabeled, cfg, tmp_path)
    assert 0 < manifest.n_pseudo_labelled <= 3 * (len(by) - 1)
    assert manifest.n_train == len(deduplicate(few)) + manifest.n_pseudo_labelled
    assert manifest.data_hash == data_hash(deduplicate(few))
    assert IntentModel.load(tmp_path).labels == sorted(by)


def test_supportbot_train_self_trains_on_the_logs_untagged_messages(small: list[Example],
                                                                     tmp_path: Path) -> None:
    from rich.console import Console

    from bot.assets import train_model
    from bot.nlu.data import unlabeled_messages

    by = by_intent(small)
    logs = tmp_path / "logs.jsonl"
    lines = [{"id": f"t{i}", "tags": [e.intent], "messages": [{"author": "customer", "text": e.text}]}
             for i, e in enumerate(e for intent in sorted(by) for e in by[intent][:6])]
    lines += [{"id": f"u{i}", "messages": [{"author": "customer", "text": e.text},
                                           {"author": "agent", "text": "Let me check."}]}
              for i, e in enumerate(e for intent in sorted(by) for e in by[intent][6:16])]
    logs.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    assert len(unlabeled_messages(logs)) == len({e.text for i in by for e in by[i][6:16]})
    settings = Settings(data_dir=tmp_path / "data", models={"multilingual_embedder": ""},
                        train=TrainSettings(mode="frozen", seed=3, self_training=3, val_fraction=0.0,
                                            self_training_confidence=0.3))
    manifest = train_model(settings, data=logs, out=tmp_path / "model", console=Console(quiet=True))
    assert manifest.n_pseudo_labelled > 0
    plain = train_model(settings.updated({"train.self_training": 0}), data=logs, out=tmp_path / "plain",
                        console=Console(quiet=True))
    assert plain.n_pseudo_labelled == 0 and plain.data_hash == manifest.data_hash
