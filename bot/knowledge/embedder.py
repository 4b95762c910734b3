"""Sentence embeddings for FAQ retrieval, loaded from a local path (see MODELS.md)."""

from __future__ import annotations

import numpy as np

from bot.nlu.encoders import resolve


class Embedder:
    def __init__(self, path: str | None = None) -> None:
        from sentence_transformers import SentenceTransformer

        self.path = resolve(path)
        self._model = SentenceTransformer(self.path, device="cpu")
        self.dim = int(self._model.get_embedding_dimension())

    def encode(self, texts: list[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        vectors = self._model.encode(texts, batch_size=batch_size, normalize_embeddings=True,
                                     show_progress_bar=progress, convert_to_numpy=True)
        return np.ascontiguousarray(vectors, dtype=np.float32)
