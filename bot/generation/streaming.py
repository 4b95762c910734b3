"""A model's token stream cut into complete sentences, so that each is checked before it is shown.

A small model does not always stop: it may start a new "document" (another "Question:", a blank
line, a passage number) or loop on a template. `SentenceStream` ends the answer at either.
"""

from __future__ import annotations

import re
from typing import Literal

from bot.generation.guard.sentences import SENTENCE_END, split_sentences, strip_citations

# Where a small model starts a new "document" instead of ending its answer.
_RUNAWAY = re.compile(r"\n\s*\n|(?:^|\n)\s*(?:Passages?|Question|Customer|Earlier in this conversation)\s*:"
                      r"|\n\s*\[\d+\]\s|<\|", re.IGNORECASE)


class SentenceStream:
    """Text deltas in, complete sentences out; `finish` becomes "cut" at a runaway or a loop."""

    def __init__(self) -> None:
        self.buffer = ""  # the unfinished sentence
        self.deltas = 0
        self.finish: Literal["stop", "length", "cut"] = "stop"
        self._seen: set[str] = set()
        self._openings: set[str] = set()

    @property
    def cut(self) -> bool:
        return self.finish == "cut"

    def feed(self, delta: str) -> list[str]:
        """The sentences this delta completed."""
        self.deltas += 1
        self.buffer += delta
        runaway = _RUNAWAY.search(self.buffer.lstrip())
        if runaway:
            self.buffer = self.buffer.lstrip()[: runaway.start()]
            self.finish = "cut"
        complete, self.buffer = _pop_sentences(self.buffer, final=bool(runaway))
        repeated = [s for s in complete if _norm(s) in self._seen or _opening(s) in self._openings]
        if repeated:  # a small model looping: keep what came before, stop there
            complete = complete[: complete.index(repeated[0])]
            self.finish, self.buffer = "cut", ""
        self._seen.update(_norm(s) for s in complete)
        self._openings.update(_opening(s) for s in complete if _opening(s))
        return complete


def _pop_sentences(buffer: str, final: bool = False) -> tuple[list[str], str]:
    """Complete sentences at the front of `buffer` and the unfinished rest (kept as it is, spaces
    included, since the next delta continues it). A sentence counts as complete once the next one
    has begun (or the text ended)."""
    if final:
        return split_sentences(buffer), ""
    ends = list(SENTENCE_END.finditer(buffer))
    if not ends:
        return [], buffer
    last = ends[-1]
    return split_sentences(buffer[: last.start()]), buffer[last.end():]


def _opening(sentence: str) -> str:
    """The first five words: a small model looping on a template ("You can return items
    within 30 days. You can return items within 5 days.") starts each sentence the same."""
    words = _norm(sentence).split()
    return " ".join(words[:5]) if len(words) >= 7 else ""


def _norm(sentence: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", strip_citations(sentence)[0].lower()))
