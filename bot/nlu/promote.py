"""Retrain with labelled review items and promote the new model only if it is not worse.

Both models are scored by the same code on the candidate's validation messages. The hold-out is
chosen by a hash of each text (`train.split`), so the current model has not trained on any of them
either: the comparison is fair. The candidate's manifest records both scores and the decision. On
promotion the labelled messages join `training_data/reviewed.jsonl` (so the model matches the data
on disk and `serve` does not retrain), the current model is kept as `<model>.previous`, and the
candidate takes its place. A rejected candidate leaves data and model untouched; its labels wait in
`<data_dir>/review/rejected-*.csv` for another try.
"""

from __future__ import annotations

import csv
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from sklearn.metrics import accuracy_score, f1_score

from bot.config import Settings
from bot.nlu.data import DataError, Example, load_examples
from bot.nlu.model import IntentModel
from bot.nlu.support_logs import LogMessage, SupportLog, write_support_logs
from bot.nlu.train import Progress, train

REVIEWED = "reviewed.jsonl"


@dataclass
class Decision:
    promoted: bool
    added: int
    val_examples: int
    candidate_accuracy: float
    candidate_macro_f1: float
    current_accuracy: float | None
    current_macro_f1: float | None
    model_dir: Path
    kept_labels: Path | None = None


def read_labels(path: Path, known: set[str] | None = None) -> list[Example]:
    """Rows of an exported review file that a person gave an intent; others are skipped."""
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or not {"text", "intent"} <= set(reader.fieldnames):
            raise DataError(f"{path}: a review file needs the columns text,intent")
        labelled = [Example(r["text"].strip(), r["intent"].strip()) for r in reader
                    if (r.get("intent") or "").strip() and (r.get("text") or "").strip()]
    if known is not None:
        unknown = sorted({e.intent for e in labelled} - known)
        if unknown:
            raise DataError(f"{path}: unknown intents {', '.join(unknown)} (add them to the domain "
                            "and the training data first, or fix the typo)")
    return labelled


def score(model_dir: Path, val: list[Example]) -> tuple[float, float]:
    model = IntentModel.load(model_dir)
    pred = []
    for i in range(0, len(val), 64):
        pred += [p.intent for p in model.parse_batch([e.text for e in val[i : i + 64]])]
    truth = [e.intent for e in val]
    return (round(float(accuracy_score(truth, pred)), 4),
            round(float(f1_score(truth, pred, average="macro", zero_division=0)), 4))


def read_validation(model_dir: Path) -> list[Example]:
    lines = (model_dir / "validation.jsonl").read_text(encoding="utf-8").splitlines()
    return [Example(d["text"], d["intent"]) for d in map(json.loads, filter(None, lines))]


def append_reviewed(path: Path, examples: list[Example]) -> None:
    """Labelled messages as support-log records, so every loader and the data hash see them."""
    stamp = int(time.time())
    write_support_logs(path, [
        SupportLog(id=f"review-{stamp}-{i}", channel="review", tags=[ex.intent],
                   messages=[LogMessage(author="customer", text=ex.text, intent=ex.intent)])
        for i, ex in enumerate(examples)], append=True)


def retrain(settings: Settings, labelled: list[Example], progress: Progress | None = None) -> Decision:
    if not settings.training_data.is_dir():
        raise DataError(f"{settings.training_data}: retraining needs the training-data folder")
    current = settings.model_dir
    candidate = current.with_name(current.name + ".candidate")
    shutil.rmtree(candidate, ignore_errors=True)
    examples = load_examples(settings.training_data) + labelled
    manifest = train(examples, settings.train, candidate, settings.models.base_model, progress)
    val = read_validation(candidate)
    if not val:
        raise DataError("no validation messages: too little data to compare models")
    cand_acc, cand_f1 = score(candidate, val)
    cur_acc = cur_f1 = None
    if (current / "manifest.json").exists():
        cur_acc, cur_f1 = score(current, val)
    promoted = cur_f1 is None or cand_f1 >= cur_f1
    manifest.promotion = {
        "decided_at": time.time(), "promoted": promoted, "added_examples": len(labelled),
        "val_examples": len(val), "candidate": {"accuracy": cand_acc, "macro_f1": cand_f1},
        "current": None if cur_f1 is None else {"accuracy": cur_acc, "macro_f1": cur_f1},
    }
    manifest.save(candidate)
    from bot.encoders.sharing import runtimes, shared_embedder

    if runtimes(settings, manifest)[0] == "onnx-int8" and manifest.mode != "multilingual":  # as `train` does
        from bot.encoders.onnx import ensure_model_int8

        ensure_model_int8(candidate, manifest, shared_embedder(settings, manifest))
    decision = Decision(promoted, len(labelled), len(val), cand_acc, cand_f1, cur_acc, cur_f1,
                        current if promoted else candidate)
    if promoted:
        append_reviewed(settings.training_data / REVIEWED, labelled)
        previous = current.with_name(current.name + ".previous")
        shutil.rmtree(previous, ignore_errors=True)
        if current.exists():
            current.rename(previous)
        candidate.rename(current)
    else:
        kept = settings.data_dir / "review" / f"rejected-{int(time.time())}.csv"
        kept.parent.mkdir(parents=True, exist_ok=True)
        with kept.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["text", "intent"])
            writer.writerows([e.text, e.intent] for e in labelled)
        decision.kept_labels = kept
    return decision

