"""Language per message: script decides CJK at once; short or unclear text keeps the
conversation's language; a clear message in another language is detected as such."""

from __future__ import annotations

import pytest

from bot.nlu.language import LanguageDetector


@pytest.fixture(scope="module")
def detector() -> LanguageDetector:
    return LanguageDetector(["en", "zh"])


@pytest.mark.parametrize(("text", "language"), [
    ("在吗", "zh"), ("refund 到账了吗", "zh"), ("Dutch oven 还有货吗", "zh"),
    ("where is my order, it was supposed to arrive yesterday", "en"),
    ("Wo ist meine Bestellung? Sie sollte gestern ankommen.", "de"),
    ("Je voudrais retourner ma poêle, elle est arrivée cassée", "fr"),
    ("注文した商品がまだ届きません", "ja"),
])
def test_clear_messages(detector: LanguageDetector, text: str, language: str) -> None:
    guess = detector.detect(text)
    assert guess.language == language and guess.reliable


@pytest.mark.parametrize("text", ["ok", "thx", "KK-123456", "👍", "yes pls", "1043 AB", "zzzz qqqq"])
def test_short_messages_keep_the_conversation_language(detector: LanguageDetector, text: str) -> None:
    assert detector.detect(text, previous="zh").language == "zh"
    guess = detector.detect(text)
    assert guess.language == "en" and not guess.reliable  # the deployment's default


@pytest.mark.parametrize("text", ["Can I pay with PayPal?", "I want to talk to a human", "blorp fizzle wug"])
def test_a_sentence_in_latin_letters_leaves_a_chinese_conversation(detector: LanguageDetector,
                                                                   text: str) -> None:
    """lingua is unsure about short English sentences, but without a Han character a sentence
    cannot be Chinese: the conversation switches to the served language lingua ranks first."""
    guess = detector.detect(text, previous="zh")
    assert guess.language == "en" and guess.reliable
    assert detector.detect(text, previous="en").language == "en"


def test_supported_languages(detector: LanguageDetector) -> None:
    assert detector.is_supported("zh") and detector.is_supported("EN")
    assert not detector.is_supported("de")
