"""The FAQ coverage check: a question's salient word that the retrieved entry never addresses comes
back; paraphrases, typos, a customer's story and text it cannot judge give []."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.knowledge.coverage import CoverageCheck, ask_clause, same_word
from bot.knowledge.embedder import Embedder, TokenVectors
from bot.knowledge.loader import FaqEntry, load_entries

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


@pytest.fixture(scope="module")
def entries() -> dict[str, FaqEntry]:
    return {e.id: e for e in load_entries(ROOT / "knowledge_base")}


@pytest.fixture(scope="module")
def check(embedder: Embedder, entries: dict[str, FaqEntry]) -> CoverageCheck:
    return CoverageCheck(embedder.encode_tokens, list(entries.values()))


@pytest.mark.parametrize(("question", "entry", "word"), [
    ("is there a military discount", "payments-discount-code", "military"),
    ("do teachers get a discount", "payments-discount-code", "teachers"),
    ("are you on instagram", "company-about", "instagram"),
])
def test_an_unanswerable_question_gets_its_salient_word(check: CoverageCheck, entries: dict[str, FaqEntry],
                                                        question: str, entry: str, word: str) -> None:
    assert check.uncovered(question, entries[entry]) == [word]


@pytest.mark.parametrize(("question", "entry"), [
    ("how do i seson my skilet", "care-season-cast-iron"),  # typos of the entry's own words
    ("how long does standrd delivry take", "shipping-standard-time"),
    ("is sweden one of the countries you deliver to", "shipping-countries"),  # addressed by "EU countries"
    ("my aunt gave me one of your gift cards, how long is it valid", "gift-cards-validity"),  # a story first
    ("I'm in Manchester, how long does delivery take", "shipping-standard-time"),
    ("how long is a gift card valid? my aunt gave me one", "gift-cards-validity"),  # or after
])
def test_paraphrases_typos_and_stories_are_covered(check: CoverageCheck, entries: dict[str, FaqEntry],
                                                   question: str, entry: str) -> None:
    assert check.uncovered(question, entries[entry]) == []


@pytest.mark.parametrize("question", ["我的礼品卡有效期多久？", "military discount", "instagram?", ""])
def test_text_it_cannot_judge_gives_nothing(check: CoverageCheck, entries: dict[str, FaqEntry],
                                            question: str) -> None:
    assert check.uncovered(question, entries["payments-discount-code"]) == []


def test_one_encoder_call_per_check_and_the_entry_is_encoded_once(embedder: Embedder,
                                                                  entries: dict[str, FaqEntry]) -> None:
    calls: list[list[str]] = []

    def encode_tokens(texts: list[str]) -> list[TokenVectors]:
        calls.append(texts)
        return embedder.encode_tokens(texts)

    check = CoverageCheck(encode_tokens, list(entries.values()))
    entry = entries["payments-discount-code"]
    assert check.uncovered("is there a military discount", entry) == ["military"]
    assert check.uncovered("do nurses get a discount", entry) == ["nurses"]
    assert [len(texts) for texts in calls] == [2 + len(entry.alternatives) + 1, 1]
    assert check.uncovered("how do I use a discount code", entry) == []  # nothing to ask the encoder
    assert len(calls) == 2


def test_a_stricter_margin_flags_less(embedder: Embedder, entries: dict[str, FaqEntry]) -> None:
    strict = CoverageCheck(embedder.encode_tokens, list(entries.values()), margin=0.1)
    assert strict.uncovered("do teachers get a discount", entries["payments-discount-code"]) == []
    assessment = strict.assess("do teachers get a discount", entries["payments-discount-code"])
    assert [g.word for g in assessment.gaps] == ["teachers"] and 0.3 < assessment.score < 0.7


def test_the_ask_is_the_last_question_like_clause() -> None:
    text = "I'm in Leeds, how long does delivery take"
    assert text[slice(*ask_clause(text))] == "how long does delivery take"
    text = "Is there a discount for nurses? I work at the hospital"
    assert text[slice(*ask_clause(text))] == "Is there a discount for nurses"
    assert ask_clause("hello") == (0, 5)


@pytest.mark.parametrize(("word", "known", "same"), [
    ("skilet", "skillet", True), ("delivry", "delivery", True), ("warrenty", "warranty", True),
    ("recycled", "recycling", True), ("deliver", "delivery", True), ("mugs", "mug", True),
    ("military", "mileage", False), ("teachers", "tea", False), ("lead", "load", False),
])
def test_typos_and_inflections_count_as_the_same_word(word: str, known: str, same: bool) -> None:
    assert same_word(word, known) is same
