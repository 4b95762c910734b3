"""One place that makes customer text safe, used by every entry point before anything reads it.

`safe_text` is the gate: invalid code points (lone surrogates, noncharacters) are refused with
`InvalidText`, the length limit applies to what the customer sent, and `clean` then removes what a
reader must never see (controls, bidi overrides, invisible format characters) while keeping what
emoji need (ZWJ, tag characters, variation selectors). `matching_form` is the text guards match
on: NFKC, every format character gone, common Cyrillic/Greek look-alikes folded to Latin.
"""

from __future__ import annotations

import re
import unicodedata

from bot.types import Message

# Format characters (category Cf) that emoji sequences need: the zero-width joiner of family and
# profession emoji, and the tag characters of subdivision flags (England, Scotland, Wales).
_EMOJI_CF = frozenset({0x200D}) | frozenset(range(0xE0020, 0xE0080))
_BLANK_RUNS = re.compile(r"\n{3,}")
_SPACES = re.compile(r"[ \t]{2,}")
# Cyrillic and Greek letters that render like Latin ones ("іgnоre" with Cyrillic і and о).
_HOMOGLYPHS = str.maketrans({
    "а": "a", "в": "b", "е": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c", "т": "t",
    "у": "y", "х": "x", "і": "i", "ј": "j", "ѕ": "s", "ԁ": "d", "ɡ": "g", "һ": "h", "ո": "n", "ս": "u",
    "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C", "Т": "T",
    "У": "Y", "Х": "X", "І": "I", "Ј": "J", "Ѕ": "S",
    "α": "a", "ο": "o", "ρ": "p", "ν": "v", "ι": "i", "κ": "k", "τ": "t", "υ": "u", "ε": "e",
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N",
    "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X",
})


class InvalidText(ValueError):
    """Text that is not a sequence of valid Unicode scalar values; `code` is the API error code."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code, self.detail = code, detail


def invalid_code_point(text: str) -> int | None:
    """The first lone surrogate or noncharacter in `text`, or None."""
    if text.isascii():
        return None
    for ch in text:
        cp = ord(ch)
        if 0xD800 <= cp <= 0xDFFF or 0xFDD0 <= cp <= 0xFDEF or (cp & 0xFFFE) == 0xFFFE:
            return cp
    return None


def _keep(ch: str) -> bool:
    if ch == "\n":
        return True
    category = unicodedata.category(ch)
    if category == "Cc":
        return False
    return category != "Cf" or ord(ch) in _EMOJI_CF


def clean(text: str) -> str:
    """NFC, no control, bidi or invisible format characters, no runs of blank lines; stripped."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    if not text.isascii():
        text = "".join(ch for ch in unicodedata.normalize("NFC", text) if _keep(ch))
        text = text.replace("\u2028", "\n").replace("\u2029", "\n")
    else:
        text = "".join(ch for ch in text if ch == "\n" or " " <= ch < "\x7f")
    return _BLANK_RUNS.sub("\n\n", text).strip()


def safe_text(text: str, max_chars: int | None = None) -> str:
    """The gate every entry point passes customer text through: refuse, limit, then clean."""
    bad = invalid_code_point(text)
    if bad is not None:
        raise InvalidText("invalid_text", f"the text holds an invalid code point U+{bad:04X} "
                                          "(a lone surrogate or a noncharacter)")
    if max_chars is not None and len(text) > max_chars:
        raise InvalidText("message_too_long", f"messages are limited to {max_chars} characters")
    return clean(text)


def matching_form(text: str) -> str:
    """What guards match on: NFKC, every format character removed, look-alike letters folded."""
    if text.isascii():
        return text
    text = unicodedata.normalize("NFKC", text)
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    return _SPACES.sub(" ", text.translate(_HOMOGLYPHS))


def safe_message(msg: Message) -> Message:
    """The pipeline's own pass through the gate (no length limit: the entry point applied it), so
    a channel that forgot the gate still cannot put an invalid code point into a session."""
    text = safe_text(msg.text)
    payload = safe_text(msg.payload) or None if msg.payload is not None else None
    if text == msg.text and payload == msg.payload:
        return msg
    return msg.model_copy(update={"text": text, "payload": payload})
