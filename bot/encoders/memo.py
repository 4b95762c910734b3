"""The last few hundred texts' results, by text: what lets two calls about the same message (the
intent model's, then the FAQ search's) share one encoder pass."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

V = TypeVar("V")


class RecentByText(Generic[V]):
    """A thread-safe LRU of per-text results; `misses` counts the texts that had to be computed."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.misses = 0
        self._items: OrderedDict[str, V] = OrderedDict()
        self._lock = threading.Lock()

    def get_or_compute(self, texts: list[str], compute: Callable[[list[str]], Sequence[V]]) -> list[V]:
        """Each text's result, computing (once, in one call) only those not remembered."""
        with self._lock:
            found = {t: self._items[t] for t in texts if t in self._items}
            for text in found:
                self._items.move_to_end(text)
        missing = list(dict.fromkeys(t for t in texts if t not in found))
        if missing:
            fresh = compute(missing)
            with self._lock:
                self.misses += len(missing)
                for text, value in zip(missing, fresh, strict=True):
                    found[text] = self._items[text] = value
                while len(self._items) > self.size:
                    self._items.popitem(last=False)
        return [found[t] for t in texts]
