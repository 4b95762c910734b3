"""Train an intent model on labelled support messages: prepare and split the data, fit one of the
learners in `bot.nlu.trainers`, calibrate it on the validation split and write the model directory.

`finetune` trains the whole encoder (the product's recipe); `frozen` fits a logistic-regression head
on frozen sentence embeddings (the tiny-data mode and the benchmark baseline); `multilingual` fits
one on multilingual-e5 vectors plus character n-grams (languages other than English, e.g. Chinese).
All write a model directory with `manifest.json` that `IntentModel.load` reads.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bot.config import TrainSettings
from bot.encoders.manifest import Manifest
from bot.encoders.paths import resolve
from bot.nlu import calibration
from bot.nlu.data import Example, data_hash, deduplicate
from bot.nlu.oos import choose_distance_threshold, fit_scorer, save_scorer
from bot.nlu.report import scores, write_report, write_validation
from bot.nlu.trainers import Learner, Progress
from bot.nlu.trainers.finetune import Finetuner
from bot.nlu.trainers.frozen import FrozenHead
from bot.nlu.trainers.multilingual import MultilingualHead

OOS = "out_of_scope"
LEARNERS: dict[str, Callable[[str, list[str], TrainSettings], Learner]] = {
    "finetune": Finetuner, "frozen": FrozenHead, "multilingual": MultilingualHead}


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def split(examples: list[Example], fraction: float, seed: int) -> tuple[list[Example], list[Example]]:
    """Hold out by a hash of each text, not by shuffling.

    A message stays on the same side when data is added, so a retrained model is compared with the
    current one on messages that neither has trained on (`promote`). Intents too rare to split
    stay in training only.
    """
    counts: dict[str, int] = {}
    for ex in examples:
        counts[ex.intent] = counts.get(ex.intent, 0) + 1
    if fraction <= 0 or sum(c for c in counts.values() if c >= 4) < 10:
        return examples, []
    train_ex: list[Example] = []
    val_ex: list[Example] = []
    for ex in examples:
        held = counts[ex.intent] >= 4 and _bucket(ex.text, seed) < fraction
        (val_ex if held else train_ex).append(ex)
    return train_ex, val_ex


def _bucket(text: str, seed: int) -> float:
    digest = hashlib.sha256(f"{seed}:{' '.join(text.lower().split())}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass
class _Data:
    """Deduplicated examples as label indices, split into training and validation."""

    digest: str
    labels: list[str]
    train: list[Example]
    val: list[Example]

    def arrays(self, examples: list[Example]) -> tuple[list[str], np.ndarray]:
        index = {label: i for i, label in enumerate(self.labels)}
        return [e.text for e in examples], np.array([index[e.intent] for e in examples], dtype=int)


def _prepare(examples: list[Example], cfg: TrainSettings, val_examples: list[Example] | None) -> _Data:
    examples = deduplicate(examples)
    digest = data_hash(examples)
    if cfg.max_examples:
        examples = _stratified_subset(examples, cfg.max_examples, cfg.seed)
    labels = sorted({ex.intent for ex in examples})
    if len(labels) < 2:
        raise ValueError("training needs at least two intents")
    if val_examples is None:
        train_ex, val_ex = split(examples, cfg.val_fraction, cfg.seed)
    else:
        known = set(labels)
        train_ex, val_ex = examples, [e for e in deduplicate(val_examples) if e.intent in known]
    return _Data(digest, labels, train_ex, val_ex)


def train(
    examples: list[Example],
    cfg: TrainSettings,
    out_dir: Path,
    base_model: str | None = None,
    progress: Progress | None = None,
    val_examples: list[Example] | None = None,
) -> Manifest:
    """Train, calibrate on the validation split, and write the model directory with its report.

    Without `val_examples` a stratified `cfg.val_fraction` of `examples` is held out; a data set
    with its own validation split (CLINC150) passes it instead, so nothing is tuned on test data.
    """
    base = "multilingual-e5-small" if cfg.mode == "multilingual" else resolve(base_model)
    seed_everything(cfg.seed)
    data = _prepare(examples, cfg, val_examples)
    (texts, y), (val_texts, val_y) = data.arrays(data.train), data.arrays(data.val)
    learner = LEARNERS[cfg.mode](base, data.labels, cfg)
    started = time.perf_counter()
    epochs_run = learner.fit(texts, y, val_texts, val_y, progress)
    seconds = time.perf_counter() - started

    val_logits = learner.logits(val_texts) if val_texts else np.zeros((0, len(data.labels)))
    temperature = calibration.fit_temperature(val_logits, val_y)
    probs = calibration.softmax(val_logits, temperature)
    oos = data.labels.index(OOS) if OOS in data.labels else None
    threshold = calibration.choose_oos_threshold(probs, val_y, oos) if len(val_y) else 0.0
    pred = probs.argmax(1) if len(val_y) else np.array([], dtype=int)

    out_dir.mkdir(parents=True, exist_ok=True)
    learner.save(out_dir)
    manifest = _manifest(base, cfg, data, scores(val_y, pred), temperature, threshold, epochs_run, seconds)
    manifest.frozen_layers = int(getattr(learner, "split", 0))
    if cfg.oos_method != "softmax":
        _fit_distance(cfg.oos_method, learner, manifest, (texts, y), (val_texts, val_y, pred), oos, out_dir)
    manifest.save(out_dir)
    write_validation(out_dir, data.val)
    if len(val_y):
        write_report(out_dir, data.labels, val_y, pred, val_texts)
    return manifest


def _fit_distance(method: str, learner: Any, manifest: Manifest, train_data: tuple[list[str], np.ndarray],
                  val_data: tuple[list[str], np.ndarray, np.ndarray], oos: int | None, out_dir: Path) -> None:
    """Out of scope by distance (bot.nlu.oos): fitted on the in-scope training messages' vectors,
    its threshold chosen on validation; the manifest says so only when it could be fitted."""
    (texts, y), (val_texts, val_y, pred) = train_data, val_data
    if not hasattr(learner, "vectors") or manifest.pooling != "mean" or not len(val_y):
        return  # frozen and multilingual heads, [CLS] models, no validation split: the softmax rule
    keep = y != oos
    scorer = fit_scorer(method, learner.vectors([t for t, k in zip(texts, keep, strict=True) if k]), y[keep])
    distance = choose_distance_threshold(scorer.score(learner.vectors(val_texts)), pred, val_y, oos)
    save_scorer(scorer, out_dir)
    manifest.oos_method, manifest.oos_distance = method, round(distance, 6)


def _manifest(base: str, cfg: TrainSettings, data: _Data, val_scores: tuple[float, float],
              temperature: float, threshold: float, epochs_run: int, seconds: float) -> Manifest:
    import torch
    import transformers

    return Manifest(
        base_model=base,
        mode=cfg.mode,
        data_hash=data.digest,
        labels=data.labels,
        n_train=len(data.train),
        n_val=len(data.val),
        val_accuracy=val_scores[0],
        val_macro_f1=val_scores[1],
        temperature=round(temperature, 4),
        oos_threshold=threshold,
        seed=cfg.seed,
        epochs_run=epochs_run,
        train_seconds=round(seconds, 1),
        max_length=cfg.max_length,
        pooling=cfg.pooling if cfg.mode == "finetune" else "mean",
        versions={"torch": torch.__version__, "transformers": transformers.__version__},
    )


def _stratified_subset(examples: list[Example], n: int, seed: int) -> list[Example]:
    rng = random.Random(seed)
    by_intent: dict[str, list[Example]] = {}
    for ex in examples:
        by_intent.setdefault(ex.intent, []).append(ex)
    per = max(1, n // max(1, len(by_intent)))
    subset: list[Example] = []
    for intent in sorted(by_intent):
        items = by_intent[intent][:]
        rng.shuffle(items)
        subset.extend(items[:per])
    return subset
