"""The language of each customer message, robust on very short ones.

lingua ships its models in the wheel (no download) and is built for short text, but "ok", "thx" or
an order number carry no language: those keep the conversation's language. Han or kana script is
decided by script alone (one character is enough); everything else needs a few letters and a
clear winner among the candidate languages, else the conversation's language stands.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_KANA = re.compile(r"[\u3040-\u30ff]")
_HANGUL = re.compile(r"[\uac00-\ud7af]")
SCRIPT_LANGUAGES = {"zh", "ja", "ko"}  # told apart by their own scripts, never by lingua
_LETTERS = re.compile(r"[^\W\d_]", re.UNICODE)

# Languages a detector can tell apart; the supported ones are always added. More candidates make
# short messages harder, so this stays the set a European or Chinese shop usually meets.
DEFAULT_CANDIDATES = ("en", "zh", "de", "fr", "es", "nl", "it", "pt", "pl", "sv", "da", "tr", "ru",
                      "ar", "ja", "ko")


@dataclass(frozen=True)
class LanguageGuess:
    language: str  # ISO 639-1, lower case
    confidence: float
    reliable: bool  # False: too short or unclear, the conversation's language was kept


class LanguageDetector:
    def __init__(self, supported: list[str], default: str = "en", candidates: tuple[str, ...] =
                 DEFAULT_CANDIDATES, min_letters: int = 8, min_confidence: float = 0.5) -> None:
        self.supported = [s.lower() for s in supported]
        self.default = default.lower()
        self.candidates = tuple(dict.fromkeys([*self.supported, *candidates]))
        self.min_letters = min_letters
        self.min_confidence = min_confidence

    @cached_property
    def _lingua(self):
        from lingua import IsoCode639_1, LanguageDetectorBuilder

        codes = [getattr(IsoCode639_1, c.upper()) for c in self.candidates
                 if hasattr(IsoCode639_1, c.upper())]
        return LanguageDetectorBuilder.from_iso_codes_639_1(*codes).build()

    def detect(self, text: str, previous: str | None = None) -> LanguageGuess:
        """This message's language; `previous` (the conversation's) wins when the text is unclear."""
        fallback = previous or self.default
        if _KANA.search(text):
            return LanguageGuess("ja", 1.0, True)
        if _HANGUL.search(text):
            return LanguageGuess("ko", 1.0, True)
        if _CJK.search(text):
            return LanguageGuess("zh", 1.0, True)
        letters = _LETTERS.findall(text.lower())
        if len(letters) < self.min_letters or len(set(letters)) < 5:  # "zzzz qqqq" is no language
            return LanguageGuess(fallback, 0.0, False)
        values = self._lingua.compute_language_confidence_values(text)
        best_code = values[0].language.iso_code_639_1.name.lower() if values else self.default
        confidence = round(values[0].value, 3) if values else 0.0
        if fallback in SCRIPT_LANGUAGES:
            # A sentence without Han, kana or Hangul is not Chinese, Japanese or Korean, however
            # unsure lingua is about which other language it is: the conversation has switched.
            return LanguageGuess(self._other_script(values), confidence, True)
        if not values or confidence < self.min_confidence:
            return LanguageGuess(fallback, confidence, False)
        return LanguageGuess(best_code, confidence, True)

    def _other_script(self, values: list[Any]) -> str:
        """The most likely served language outside Han/kana/Hangul (lingua's ranking), else the
        default language (English when the default is one of those)."""
        for value in values:
            code = value.language.iso_code_639_1.name.lower()
            if code in self.supported and code not in SCRIPT_LANGUAGES:
                return str(code)
        return self.default if self.default not in SCRIPT_LANGUAGES else "en"

    def is_supported(self, language: str) -> bool:
        return language.lower() in self.supported
