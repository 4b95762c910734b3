"""Which messages lean on the question before them, and which words a missing answer names."""

from __future__ import annotations

import pytest

from bot.knowledge.words import topic_words
from bot.questions import is_closing, is_follow_up, question_parts


@pytest.mark.parametrize("text", [
    "and if I pay for the faster option?", "how long do I have to spend it then", "what about Norway",
    "and it goes back to my card right", "那退款呢？", "But can I return it?",
])
def test_follow_ups(text: str) -> None:
    assert is_follow_up(text)


@pytest.mark.parametrize("text", [
    "How long does standard delivery take to Germany?", "hello", "KK-123456", "/affirm", "",
    "I bought a saucepan last week and the handle came off while I was cooking dinner for my family",
    "退货期限是多久？",
])
def test_not_follow_ups(text: str) -> None:
    assert not is_follow_up(text)


def test_topic_words_are_the_asked_words_the_faq_never_uses() -> None:
    common = frozenset({"discount", "code", "mug"})
    assert topic_words("is there a student discount?", "do students get a discount", common) == ["student"]
    assert topic_words("Is there a student discount?", "do you sell spare lids", common) == []
    assert topic_words("are your mugs stoneware?", "are the mugs handmade", common) == []


@pytest.mark.parametrize(("text", "closing"), [
    ("ok found it in spam, thanks", True),
    ("tried paypal instead and it worked, thx", True),
    ("the parcel arrived today, thank you so much", True),
    ("great, that helps. cheers!", True),
    ("I need to change my address thanks", False),  # a request that ends politely
    ("cancel my order thanks", False),
    ("it still doesnt work, thanks", False),
    ("can you check again? thanks", False),
    ("no it didnt work thanks", False),
])
def test_thanks_after_something_worked_out_is_a_closing(text: str, closing: bool) -> None:
    assert is_closing(text) is closing


@pytest.mark.parametrize(("text", "parts"), [
    ("how long does delivery take and is it free?",
     ["how long does delivery take", "is it free (long delivery take)"]),
    ("do you ship to Norway and how much is it", ["do you ship to Norway", "how much is it (ship Norway)"]),
    # "long" and "take" are words of its own: nothing carried
    ("Is delivery free and how long does it take?", ["Is delivery free", "how long does it take"]),
    ("can I return it and get a refund?", ["can I return it and get a refund"]),
])
def test_a_part_that_names_its_topic_by_a_pronoun_carries_the_topic(text: str, parts: list[str]) -> None:
    assert question_parts(text) == parts
