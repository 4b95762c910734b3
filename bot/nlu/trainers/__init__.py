"""The three intent learners behind `bot.nlu.train.train`, one module each: `finetune` (the whole
encoder, the product's recipe), `frozen` (a logistic-regression head on frozen sentence embeddings)
and `multilingual` (a head on multilingual-e5 vectors plus character n-grams). Each has
`fit(texts, y, val_texts, val_y, progress) -> epochs run`, `logits(texts)` and `save(directory)`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

Progress = Callable[[str, int, int], None]


class Learner(Protocol):
    """What `train` needs of a learner, built as `Learner(base model, labels, TrainSettings)`."""

    def fit(self, texts: list[str], y: Any, val_texts: list[str], val_y: Any,
            progress: Progress | None) -> int: ...

    def logits(self, texts: list[str]) -> Any: ...

    def save(self, directory: Path) -> None: ...
