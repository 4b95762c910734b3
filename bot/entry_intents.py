"""Which intents each FAQ entry's phrasings are read as: the policy prefers, among close FAQ
hits, the entry whose phrasings mean what the customer's message was classified as ("what's your
email address?" is contact_us: the contact entry, not "How do I change the email on my account?")."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from bot.types import Parse

Profiles = dict[str, dict[str, float]]
_cache: dict[tuple[int, int], Profiles] = {}  # tests build many apps over one pair of models


class Parser(Protocol):
    def parse_batch(self, texts: list[str], language: str | None = None) -> list[Parse]: ...


class Entry(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def question(self) -> str: ...
    @property
    def alternatives(self) -> Sequence[str]: ...


def entry_intents(nlu: Parser, entries: Iterable[Entry], batch: int = 64) -> Profiles:
    """Per entry, the intent model's mean probability of each intent over the entry's question and
    alternatives. Computed once per (model, knowledge base) pair in a process."""
    entries = list(entries)
    key = (id(nlu), hash(tuple((e.id, e.question, *e.alternatives) for e in entries)))
    if key in _cache:
        return _cache[key]
    texts, owners = [], []
    for entry in entries:
        for text in [entry.question, *entry.alternatives]:
            texts.append(text)
            owners.append(entry.id)
    sums: dict[str, dict[str, float]] = {}
    counts: dict[str, int] = {}
    for start in range(0, len(texts), batch):
        for owner, parse in zip(owners[start:start + batch], nlu.parse_batch(texts[start:start + batch]),
                                strict=True):
            profile = sums.setdefault(owner, {})
            for score in parse.ranking:
                profile[score.name] = profile.get(score.name, 0.0) + score.confidence
            counts[owner] = counts.get(owner, 0) + 1
    profiles = {owner: {i: round(p / counts[owner], 4) for i, p in scores.items()
                        if p / counts[owner] >= 0.01} for owner, scores in sums.items()}
    _cache[key] = profiles
    return profiles
