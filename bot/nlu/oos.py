"""Out of scope by distance: how far a message's fine-tuned sentence vector lies from the training
messages, instead of how unsure the classifier's softmax is (a confident softmax far from every
intent is the failure this catches). Scores grow with distance; the threshold is chosen on the
validation split only, as the softmax threshold is (bot.nlu.calibration)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from bot.nlu.calibration import balanced_score, has_oos_examples

OOS_FILE = "oos_distance.npz"


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


class DistanceScorer(Protocol):
    """Fitted on the in-scope training vectors; `score` is larger the farther a vector lies."""

    name: str

    def score(self, vectors: np.ndarray) -> np.ndarray: ...
    def arrays(self) -> dict[str, np.ndarray]: ...


class KnnScorer:
    """One minus the mean cosine similarity to the `k` nearest training messages."""

    name = "knn"

    def __init__(self, bank: np.ndarray, k: int = 1) -> None:
        self.bank, self.k = _unit(bank), int(k)

    @classmethod
    def fit(cls, vectors: np.ndarray, labels: np.ndarray, k: int = 1) -> KnnScorer:
        return cls(vectors, k)

    def score(self, vectors: np.ndarray) -> np.ndarray:
        sims = _unit(vectors) @ self.bank.T
        k = min(self.k, sims.shape[1])
        top = np.partition(sims, -k, axis=1)[:, -k:]
        return (1.0 - top.mean(axis=1)).astype(np.float32)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"bank": self.bank.astype(np.float16), "k": np.array(self.k)}


class MahalanobisScorer:
    """The smallest Mahalanobis distance to an intent's mean, with one covariance shared by all
    intents (shrunk towards the identity: a few hundred intents' examples in 384 dimensions)."""

    name = "mahalanobis"

    def __init__(self, means: np.ndarray, precision: np.ndarray) -> None:
        self.means, self.precision = means.astype(np.float32), precision.astype(np.float32)

    @classmethod
    def fit(cls, vectors: np.ndarray, labels: np.ndarray, shrinkage: float = 0.1) -> MahalanobisScorer:
        x = _unit(vectors)
        classes = np.unique(labels)
        means = np.stack([x[labels == c].mean(axis=0) for c in classes])
        centred = x - means[np.searchsorted(classes, labels)]
        cov = centred.T @ centred / max(1, len(x) - len(classes))
        cov = (1 - shrinkage) * cov + shrinkage * np.trace(cov) / len(cov) * np.eye(len(cov))
        return cls(means, np.linalg.inv(cov))

    def score(self, vectors: np.ndarray) -> np.ndarray:
        x = _unit(vectors)
        # (x-m)^T P (x-m) = x^T P x - 2 x^T P m + m^T P m, for every mean at once
        xp = x @ self.precision
        mp = self.means @ self.precision
        d = (xp * x).sum(1)[:, None] - 2 * xp @ self.means.T + (mp * self.means).sum(1)[None, :]
        return np.sqrt(np.maximum(d.min(axis=1), 0.0)).astype(np.float32)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"means": self.means, "precision": self.precision}


SCORERS: dict[str, Callable[[np.ndarray, np.ndarray], DistanceScorer]] = {
    "knn": KnnScorer.fit, "mahalanobis": MahalanobisScorer.fit}


def fit_scorer(method: str, vectors: np.ndarray, labels: np.ndarray) -> DistanceScorer:
    if method not in SCORERS:
        raise ValueError(f"unknown out-of-scope method {method!r} ({', '.join(SCORERS)})")
    return SCORERS[method](vectors, labels)


def save_scorer(scorer: DistanceScorer, directory: Path) -> None:
    arrays: dict[str, Any] = {"method": np.array(scorer.name), **scorer.arrays()}
    np.savez(directory / OOS_FILE, **arrays)


def load_scorer(directory: Path) -> DistanceScorer:
    data = np.load(directory / OOS_FILE)
    method = str(data["method"])
    if method == "knn":
        return KnnScorer(data["bank"].astype(np.float32), int(data["k"]))
    if method == "mahalanobis":
        return MahalanobisScorer(data["means"], data["precision"])
    raise ValueError(f"{directory / OOS_FILE}: unknown out-of-scope method {method!r}")


def choose_distance_threshold(scores: np.ndarray, pred: np.ndarray, labels: np.ndarray,
                              oos_label: int | None, keep: float = 0.95) -> float:
    """The distance over which a message counts as out of scope, on validation only.

    With out-of-scope validation messages: the threshold maximising the mean of in-scope accuracy
    and out-of-scope recall (as the softmax threshold is chosen). Without: the distance that keeps
    `keep` of the correctly classified validation messages in scope."""
    if has_oos_examples(labels, oos_label):
        best, best_t = -1.0, float(scores.max())
        for t in np.unique(np.quantile(scores, np.linspace(0.0, 1.0, 401))):
            score = balanced_score(pred, labels, (scores > t) | (pred == oos_label), oos_label)
            if score > best + 1e-9:
                best, best_t = score, float(t)
        return best_t
    correct = scores[pred == labels]
    return float(np.quantile(correct, keep)) if len(correct) else float(scores.max(initial=1.0))


def auroc(scores: np.ndarray, is_oos: np.ndarray) -> float:
    """How well the scores rank out-of-scope messages above in-scope ones (0.5: not at all)."""
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(is_oos.astype(int), scores))
