"""The FAQ ranker: language centering and the entry head, on vectors built to show each effect."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bot.knowledge.ranker import RANKER_FILE, Ranker, unit


def _topics(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return unit(rng.standard_normal((4, 32))), unit(rng.standard_normal((1, 32)))[0]


def test_centering_removes_what_a_language_shares() -> None:
    topics, chinese = _topics()
    # entry 0 only in English, entry 1 in English and Chinese; the Chinese direction dominates.
    vectors = unit(np.stack([topics[0], topics[1], topics[1] + 2.0 * chinese, topics[2], topics[3]]))
    rows, languages = [0, 1, 1, 2, 3], ["en", "en", "zh", "en", "en"]
    query = unit(topics[0] + 2.0 * chinese)  # a Chinese question about entry 0's topic
    raw_best = rows[int(np.argmax(vectors @ query[0]))]
    assert raw_best == 1  # the wrong entry: it merely shares the language
    ranker, centered = Ranker.fit(vectors, rows, languages, n_entries=4, center=True)
    assert rows[int(np.argmax(centered @ ranker.center(query, "zh")[0]))] == 0


def test_no_centering_for_one_language_or_when_not_asked() -> None:
    topics, _ = _topics()
    ranker, same = Ranker.fit(topics, [0, 1, 2, 3], ["en"] * 4, n_entries=4, center=True)
    assert ranker.means == {} and np.allclose(same, topics)
    q = topics[:1]
    assert np.allclose(ranker.center(q, "zh"), q)


def test_the_head_learns_entries_from_their_phrasings_and_round_trips(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    topics, _ = _topics(1)
    vectors = unit(np.repeat(topics, 5, axis=0) + 0.3 * rng.standard_normal((20, 32)))
    rows = [i // 5 for i in range(20)]
    ranker, _ = Ranker.fit(vectors, rows, ["en"] * 20, n_entries=5, center=False)  # entry 4: no phrasing
    log_p = ranker.log_probs(unit(topics[2])[0])
    assert log_p is not None and int(np.argmax(log_p)) == 2
    assert np.isclose(np.exp(log_p).sum(), 1.0, atol=1e-4) and log_p[4] < -100
    ranker.save(tmp_path)
    loaded = Ranker.load(tmp_path)
    assert np.allclose(loaded.log_probs(unit(topics[2])[0]), log_p)


def test_an_index_without_a_ranker_file_ranks_by_cosine(tmp_path: Path) -> None:
    assert not (tmp_path / RANKER_FILE).exists()
    ranker = Ranker.load(tmp_path)
    assert ranker.means == {} and ranker.log_probs(np.ones(8, dtype=np.float32)) is None


def test_the_unanswered_head_learns_the_questions_the_faq_leaves_open(tmp_path: Path) -> None:
    """Two entries, and beside entry 0 questions it does not answer (their own direction): a message
    in that direction reads as unanswered, a paraphrase of either entry does not; saved and loaded."""
    rng = np.random.default_rng(2)
    topics, _ = _topics(2)
    phrasings = unit(np.repeat(topics[:2], 6, axis=0) + 0.2 * rng.standard_normal((12, 32)))
    rows = [0] * 6 + [1] * 6
    open_question = unit(topics[0] + 1.2 * topics[2])  # entry 0's topic, asking something else
    near = unit(open_question + 0.2 * rng.standard_normal((6, 32)))
    ranker, vectors = Ranker.fit(phrasings, rows, ["en"] * 12, n_entries=2, center=False)
    assert ranker.unanswered_probability(topics[0]) is None  # no unanswered questions yet
    ranker.fit_unanswered(vectors, rows, near, [0] * 6, n_entries=2)
    ranker.save(tmp_path)
    loaded = Ranker.load(tmp_path)
    for r in (ranker, loaded):
        asked = r.unanswered_probability(unit(open_question + 0.2 * rng.standard_normal((1, 32)))[0])
        assert asked is not None and asked > 0.5
        assert all((r.unanswered_probability(t) or 0.0) < 0.2 for t in topics[:2])
