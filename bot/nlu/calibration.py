"""Temperature scaling and the out-of-scope threshold, both chosen on the validation split only."""

from __future__ import annotations

import numpy as np


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = logits / temperature
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature minimising validation negative log-likelihood (grid search: deterministic)."""
    if len(labels) == 0:
        return 1.0
    grid = np.exp(np.linspace(np.log(0.05), np.log(10.0), 200))
    nll = [
        -np.log(softmax(logits, t)[np.arange(len(labels)), labels] + 1e-12).mean() for t in grid
    ]
    return float(grid[int(np.argmin(nll))])


def choose_oos_threshold(
    probs: np.ndarray, labels: np.ndarray, oos_label: int | None, keep: float = 0.95
) -> float:
    """Confidence under which a message counts as out of scope.

    With an explicit out-of-scope class in the data, pick the threshold that maximises the mean of
    in-scope accuracy and out-of-scope recall on validation. Without one, keep `keep` of the
    correctly classified validation messages above it.
    """
    conf = probs.max(axis=1)
    pred = probs.argmax(axis=1)
    if has_oos_examples(labels, oos_label):
        best, best_t = -1.0, 0.0
        for t in np.linspace(0.0, 0.95, 96):
            score = balanced_score(pred, labels, (conf < t) | (pred == oos_label), oos_label)
            if score > best + 1e-9:
                best, best_t = score, float(t)
        return round(best_t, 4)
    correct = conf[pred == labels]
    if len(correct) == 0:
        return 0.0
    return round(float(np.quantile(correct, 1 - keep)), 4)


def has_oos_examples(labels: np.ndarray, oos_label: int | None) -> bool:
    """Validation data with both out-of-scope and in-scope messages to choose a threshold on."""
    return oos_label is not None and bool((labels == oos_label).any()) and bool((labels != oos_label).any())


def balanced_score(pred: np.ndarray, labels: np.ndarray, rejected: np.ndarray,
                   oos_label: int | None) -> float:
    """The criterion every out-of-scope threshold is chosen by: the mean of in-scope accuracy (a
    rejected in-scope message counts as wrong) and out-of-scope recall."""
    ins = labels != oos_label
    return float((((pred == labels) & ~rejected)[ins].mean() + rejected[~ins].mean()) / 2)
