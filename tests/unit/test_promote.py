"""`supportbot retrain`: labelled review messages → a candidate model that replaces the current one
only when its validation score is not worse; the manifest records both scores."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.assets import model_is_current
from bot.cli import app as cli
from bot.config import TrainSettings
from bot.nlu.data import DataError, Example, load_examples
from bot.nlu.promote import read_labels, retrain
from bot.nlu.train import Manifest, split, train
from tests.conftest import ROOT, demo_settings

LABELLED = [Example("parcel says delivered but my porch is empty", "order_status"),
            Example("can my gift voucher be used on sale items", "gift_card"),
            Example("the whisk I got is not what I ordered", "wrong_item"),
            Example("do you take apple pay", "payment_methods"),
            Example("my kettle lid snapped after a month, is that covered", "warranty")]


@pytest.fixture
def training_data(tmp_path: Path) -> Path:
    folder = tmp_path / "training_data"
    folder.mkdir()
    shutil.copy(ROOT / "training_data" / "support_logs.jsonl", folder)
    shutil.copy(ROOT / "training_data" / "demo_orders.csv", folder)
    return folder


def write_review(path: Path, rows: list[tuple[str, str]]) -> Path:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "intent", "predicted", "confidence", "reason", "count", "channels"])
        w.writerows([text, intent, "affirm", "0.31", "low_confidence", 1, "web"] for text, intent in rows)
    return path


def test_better_candidate_is_promoted_and_matches_the_data(tmp_path: Path, training_data: Path) -> None:
    settings = demo_settings(tmp_path / "var").updated({"training_data": training_data})
    weak = TrainSettings(mode="frozen", seed=13, max_examples=60)  # two messages per intent
    train(load_examples(training_data), weak, settings.model_dir)

    decision = retrain(settings, LABELLED)

    assert decision.promoted and decision.added == 5
    assert decision.candidate_macro_f1 > decision.current_macro_f1
    manifest = Manifest.load(settings.model_dir)
    assert manifest.promotion["promoted"] is True
    assert manifest.promotion["current"]["macro_f1"] == decision.current_macro_f1
    assert manifest.promotion["candidate"]["macro_f1"] == decision.candidate_macro_f1
    assert Manifest.load(settings.model_dir.with_name("intent.previous")).mode == "frozen"
    # the labels joined the training data, so `serve` sees a current model and does not retrain
    assert {e.text for e in load_examples(training_data)} >= {e.text for e in LABELLED}
    assert model_is_current(settings)


def test_worse_candidate_is_not_promoted_and_nothing_changes(tmp_path: Path, training_data: Path,
                                                             demo_assets: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    data_dir = tmp_path / "var"
    shutil.copytree(demo_assets / "models", data_dir / "models")
    settings = demo_settings(data_dir).updated({"training_data": training_data})
    before = Manifest.load(settings.model_dir)
    review = write_review(tmp_path / "review.csv", [(e.text, e.intent) for e in LABELLED]
                          + [("some message nobody labelled", "")])
    # a candidate that cannot learn: it reads two tokens ([CLS] [SEP]) of every message
    for key, value in {"DATA_DIR": data_dir, "TRAINING_DATA": training_data,
                       "DOMAIN_FILE": ROOT / "training_data" / "domain.yml",
                       "TRAIN__MODE": "finetune", "TRAIN__EPOCHS": 1, "TRAIN__MAX_LENGTH": 2}.items():
        monkeypatch.setenv(f"SUPPORTBOT_{key}", str(value))

    result = CliRunner().invoke(cli, ["retrain", str(review)])

    assert result.exit_code == 3, result.output
    assert "not promoted" in result.output
    assert Manifest.load(settings.model_dir).created_at == before.created_at  # untouched
    rejected = Manifest.load(settings.model_dir.with_name("intent.candidate"))
    assert rejected.promotion["promoted"] is False
    assert rejected.promotion["candidate"]["macro_f1"] < rejected.promotion["current"]["macro_f1"]
    assert not (training_data / "reviewed.jsonl").exists()
    kept = list((data_dir / "review").glob("rejected-*.csv"))
    assert len(kept) == 1 and len(list(csv.DictReader(kept[0].open()))) == 5


def test_review_labels_are_checked(tmp_path: Path) -> None:
    review = write_review(tmp_path / "r.csv", [("hello", "greet"), ("unlabelled", ""), ("x", "gret")])
    with pytest.raises(DataError, match="unknown intents gret"):
        read_labels(review, {"greet"})
    assert read_labels(review) == [Example("hello", "greet"), Example("x", "gret")]
    (tmp_path / "bad.csv").write_text("message,label\nhi,greet\n")
    with pytest.raises(DataError, match="text,intent"):
        read_labels(tmp_path / "bad.csv")


def test_the_hold_out_is_stable_when_data_grows() -> None:
    base = load_examples(ROOT / "training_data")
    _, val_before = split(base, 0.15, 13)
    _, val_after = split(base + LABELLED * 1, 0.15, 13)
    assert set(val_before) <= set(val_after)  # adding data never moves a message into training
    assert 0.10 < len(val_before) / len(base) < 0.20
