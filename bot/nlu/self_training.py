"""Self-training: with only a few labelled messages per intent, a first model labels the company's
unlabelled messages (its support logs), and the ones it is most sure of, a few per intent, join the
labelled ones for a second, final run. The held-out messages stay the labelled ones, so early
stopping and calibration never read a guessed label."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from bot.config import TrainSettings
from bot.encoders.manifest import Manifest
from bot.nlu.data import Example, data_hash, deduplicate
from bot.nlu.model import IntentModel
from bot.nlu.train import OOS, split, train
from bot.nlu.trainers import Progress


def pseudo_labelled(texts: list[str], probs: np.ndarray, labels: list[str], per_intent: int,
                    min_confidence: float) -> list[Example]:
    """Up to `per_intent` texts per intent, the most confident first, each at least
    `min_confidence` sure; none for out of scope (what is not an intent teaches nothing)."""
    pred, conf = probs.argmax(1), probs.max(1)
    chosen: list[Example] = []
    for label_i, label in enumerate(labels):
        if label == OOS:
            continue
        members = np.flatnonzero((pred == label_i) & (conf >= min_confidence))
        best = members[np.argsort(-conf[members], kind="stable")][:per_intent]
        chosen.extend(Example(texts[i], label) for i in best)
    return chosen


def self_train(examples: list[Example], unlabeled: list[str], cfg: TrainSettings, out_dir: Path,
               base_model: str | None = None, progress: Progress | None = None,
               val_examples: list[Example] | None = None) -> Manifest:
    """Train on `examples`, pseudo-label `unlabeled`, train again on both into `out_dir`. The second
    run takes as many optimizer steps as the first (fewer epochs over more messages)."""
    examples = deduplicate(examples)
    if val_examples is None:
        train_ex, val_ex = split(examples, cfg.val_fraction, cfg.seed)
    else:
        train_ex, val_ex = examples, val_examples
    seen = {" ".join(e.text.lower().split()) for e in examples + val_ex}
    pool = [t for t in dict.fromkeys(unlabeled) if t.strip() and " ".join(t.lower().split()) not in seen]
    with tempfile.TemporaryDirectory() as tmp:
        train(train_ex, cfg, Path(tmp), base_model, progress, val_examples=val_ex)
        first = IntentModel.load(Path(tmp))
        extra = pseudo_labelled(pool, first.probabilities(pool), first.labels, cfg.self_training,
                                cfg.self_training_confidence) if pool else []
    epochs = max(1, round(cfg.epochs * len(train_ex) / (len(train_ex) + len(extra))))
    manifest = train(train_ex + extra, cfg.model_copy(update={"epochs": epochs}), out_dir, base_model,
                     progress, val_examples=val_ex)
    manifest.data_hash = data_hash(examples)  # the labelled data it stands for (`model_is_current`)
    manifest.n_pseudo_labelled = len(extra)
    manifest.save(out_dir)
    return manifest
