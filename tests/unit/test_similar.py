"""Grouping phrasings by their vectors: the most frequent leads, close ones join, far ones stay apart."""

from __future__ import annotations

import numpy as np

from bot.similar import group_similar


def unit(*rows: list[float]) -> np.ndarray:
    x = np.array(rows, dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_close_texts_join_the_most_frequent_one() -> None:
    items = [("refund?", 1), ("where is my refund", 5), ("wheres my refund", 2), ("ship to norway", 3)]
    vectors = unit([1, 0.1, 0], [1, 0, 0], [1, 0.2, 0], [0, 1, 0])
    groups = group_similar(items, vectors, threshold=0.9)
    assert [(g.text, g.count) for g in groups] == [("where is my refund", 8), ("ship to norway", 3)]
    assert groups[0].examples == ["wheres my refund", "refund?"]  # most frequent first


def test_a_high_threshold_keeps_everything_apart_and_ties_are_stable() -> None:
    items = [("b", 1), ("a", 1), ("c", 2)]
    vectors = unit([1, 0, 0], [0.9, 0.1, 0], [0.8, 0.2, 0])
    assert [g.text for g in group_similar(items, vectors, threshold=0.9999)] == ["c", "a", "b"]
    assert group_similar([], np.zeros((0, 3), dtype=np.float32), 0.5) == []


def test_examples_are_capped() -> None:
    items = [(f"t{i}", 10 - i) for i in range(8)]
    groups = group_similar(items, unit(*[[1, 0.01 * i, 0] for i in range(8)]), threshold=0.5)
    assert len(groups) == 1 and groups[0].count == sum(n for _, n in items) and len(groups[0].examples) == 3
