"""Group texts that say the same thing, by their sentence vectors: the analytics page's "top
unanswered questions" are clusters of phrasings ("where's my refund", "when do I get my money
back?"), not only exact repeats.

Greedy leader clustering: the most frequent text leads its group and takes every later text whose
vector is within `threshold` cosine of it. Deterministic, one pass, and a group's label is always a
real customer message (its most frequent phrasing).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

EXAMPLES = 3


@dataclass
class Group:
    text: str  # the most frequent phrasing
    count: int
    examples: list[str] = field(default_factory=list)  # other phrasings, most frequent first


def group_similar(items: list[tuple[str, int]], vectors: np.ndarray, threshold: float) -> list[Group]:
    """`items` (text, count) with their unit-length `vectors` (one row each), most frequent group first."""
    order = sorted(range(len(items)), key=lambda i: (-items[i][1], items[i][0]))
    groups: list[Group] = []
    leaders: list[int] = []
    for i in order:
        text, count = items[i]
        if leaders:
            similarity = vectors[leaders] @ vectors[i]
            best = int(np.argmax(similarity))
            if similarity[best] >= threshold:
                group = groups[best]
                group.count += count
                if len(group.examples) < EXAMPLES:
                    group.examples.append(text)
                continue
        leaders.append(i)
        groups.append(Group(text, count))
    return sorted(groups, key=lambda g: (-g.count, g.text))
