from __future__ import annotations

from bot.web.schemas import clean_text


def test_control_and_bidi_characters_are_removed() -> None:
    assert clean_text("hi\x00 there\x1b[31m\u202e!") == "hi there[31m!"


def test_whitespace_is_normalised_but_lines_are_kept() -> None:
    assert clean_text("  line one\r\n\n\n\n\tline two  ") == "line one\n\n line two"


def test_unicode_is_normalised_to_nfc() -> None:
    assert clean_text("cafe\u0301") == "caf\u00e9"
