"""`frozen`: a logistic-regression head on frozen sentence embeddings (the tiny-data mode and the
benchmark baseline)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bot.config import TrainSettings
from bot.nlu.trainers import Progress


class FrozenHead:
    C = 10.0

    def __init__(self, base: str, labels: list[str], cfg: TrainSettings) -> None:
        from sentence_transformers import SentenceTransformer

        self.encoder = SentenceTransformer(base, device="cpu")
        self.cfg = cfg
        self.n = len(labels)
        self.coef: np.ndarray | None = None
        self.intercept: np.ndarray | None = None

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.encoder.encode(texts, batch_size=64, normalize_embeddings=True,
                                   show_progress_bar=False, convert_to_numpy=True)

    def logits(self, texts: list[str]) -> np.ndarray:
        assert self.coef is not None and self.intercept is not None
        return self.embed(texts) @ self.coef.T + self.intercept

    def fit(self, texts: list[str], y: np.ndarray, val_texts: list[str], val_y: np.ndarray,
            progress: Progress | None) -> int:
        if progress:
            progress("embedding", 0, 2)
        x = self.embed(texts)
        if progress:
            progress("fitting head", 1, 2)
        self.coef, self.intercept = fit_linear_head(x, y, self.n, self.C, self.cfg.seed)
        if progress:
            progress("done", 2, 2)
        return 1

    def save(self, directory: Path) -> None:
        assert self.coef is not None and self.intercept is not None
        np.savez(directory / "head.npz", coef=self.coef, intercept=self.intercept)


def fit_linear_head(x: object, y: np.ndarray, n: int, c: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Logistic regression as (coef, intercept) over all `n` labels; absent labels never win."""
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=c, max_iter=3000, random_state=seed).fit(x, y)
    dim = clf.coef_.shape[1]
    coef = np.zeros((n, dim), dtype=np.float32)
    intercept = np.full(n, -1e4, dtype=np.float32)  # classes absent from training
    if len(clf.classes_) > 2:
        coef[clf.classes_], intercept[clf.classes_] = clf.coef_, clf.intercept_
    else:  # binary: sklearn keeps one row for the positive class
        coef[clf.classes_] = np.vstack([-clf.coef_, clf.coef_])
        intercept[clf.classes_] = [-clf.intercept_[0], clf.intercept_[0]]
    return coef, intercept
