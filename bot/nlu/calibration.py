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
    if oos_label is not None and (labels == oos_label).any() and (labels != oos_label).any():
        best, best_t = -1.0, 0.0
        for t in np.linspace(0.0, 0.95, 96):
            rejected = (conf < t) | (pred == oos_label)
            ins = labels != oos_label
            in_acc = ((pred == labels) & ~rejected)[ins].mean()
            oos_recall = rejected[~ins].mean()
            score = (in_acc + oos_recall) / 2
            if score > best + 1e-9:
                best, best_t = score, float(t)
        return round(best_t, 4)
    correct = conf[pred == labels]
    if len(correct) == 0:
        return 0.0
    return round(float(np.quantile(correct, 1 - keep)), 4)
