"""What `train` leaves beside a model for a person to review: validation scores, the validation
messages, a confusion matrix and the misclassified messages."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

from bot.nlu.data import Example


def scores(y: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    """Validation accuracy and macro-F1, rounded as the manifest keeps them (0.0 without messages)."""
    if not len(y):
        return 0.0, 0.0
    return (round(float(accuracy_score(y, pred)), 4),
            round(float(f1_score(y, pred, average="macro", zero_division=0)), 4))


def write_validation(out_dir: Path, examples: list[Example]) -> None:
    """The held-out messages, one JSON object a line (`promote` scores both models on them)."""
    with (out_dir / "validation.jsonl").open("w", encoding="utf-8") as fh:
        fh.writelines(json.dumps({"text": e.text, "intent": e.intent}, ensure_ascii=False) + "\n"
                      for e in examples)


def write_report(out_dir: Path, labels: list[str], y: np.ndarray, pred: np.ndarray,
                 texts: list[str]) -> None:
    """Confusion matrix PNG and the misclassified validation messages, for a human to review."""
    _plot_confusion(out_dir / "confusion_matrix.png", labels, confusion_matrix(
        y, pred, labels=list(range(len(labels)))))
    errors = [
        {"text": t, "tagged": labels[a], "predicted": labels[b]}
        for t, a, b in zip(texts, y, pred, strict=True) if a != b
    ]
    (out_dir / "report.json").write_text(json.dumps({"errors": errors}, indent=2))


def _plot_confusion(path: Path, labels: list[str], cm: np.ndarray) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    size = max(6, len(labels) * 0.35)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("tagged by agent")
    ax.set_title("Validation confusion matrix")
    for i in range(len(labels)):
        for j in range(len(labels)):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
