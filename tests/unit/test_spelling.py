"""Typos corrected before the models read a message (bot/nlu/spelling.py)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.nlu.spelling import SpellingCorrector

SHOP = ["Descale the kettle with citric acid.", "Our warehouse in Harrowgate Vale ships every order.",
        "Leave a review on the product page."]


@pytest.fixture(scope="module")
def speller() -> SpellingCorrector:
    return SpellingCorrector.from_texts(SHOP)


@pytest.mark.parametrize(("written", "read"), [
    ("how do i get the limescale out of my kettel", "how do i get the limescale out of my kettle"),
    ("wher is the ordr number", "where is the order number"),  # an omission before "when"
    ("how do i leave a reveiw?", "how do i leave a review?"),
    ("Recieve it tomorow?", "Receive it tomorrow?"),  # capitalised at the start of a sentence
    ("my card was declind", "my card was declined"),
])
def test_typos_of_known_words_are_corrected(speller: SpellingCorrector, written: str, read: str) -> None:
    assert speller.correct(written) == read


@pytest.mark.parametrize("text", [
    "how do I descale it in Harrowgate",  # the shop's own words, though no English dictionary has them
    "pls cancel KK-204871 thx",  # short words, order numbers
    "write to sam.taylor@example.org",  # an e-mail address
    "Siobhan here, my Kettel broke",  # a name; a capitalised word inside a sentence
    "is there an app for iphone",  # real words the shop never uses stay
    "我的订单到哪了",
    "glorbix trandle blorp",  # made-up words are not guessed into rare ones ("trundle", "bloop")
])
def test_everything_else_stays_as_written(speller: SpellingCorrector, text: str) -> None:
    assert speller.correct(text) == text


def test_only_its_language_is_corrected(speller: SpellingCorrector) -> None:
    assert speller.applies("en") and speller.applies(None)
    assert not speller.applies("de")  # "Bist du ein Bot" is German, not a row of English typos


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_any_text_keeps_its_layout(text: str) -> None:
    """Whitespace, punctuation and every non-word stay where they were: only letters change."""
    corrected = SpellingCorrector.from_texts(SHOP).correct(text)
    assert len(corrected.split()) == len(text.split())
    assert [c for c in corrected if not c.isalpha()] == [c for c in text if not c.isalpha()]
