"""Words and numbers of a sentence, as the grounding check and the extractive composer compare them:
content words (stop words out, a light stemmer), normalised numbers, negation."""

from __future__ import annotations

import re

from bot.knowledge.words import NUMBER_WORDS as _NUMBER_WORDS
from bot.knowledge.words import content_words, stem

__all__ = ["content_words", "negated", "numbers", "stem"]

_NEGATION = re.compile(r"\b(not|no|never|cannot|can't|cant|don't|dont|doesn't|doesnt|isn't|isnt|aren't|arent"
                       r"|won't|wont|wouldn't|shouldn't|didn't|nothing|none|neither|nor|without|n't)\b",
                       re.IGNORECASE)
_LEADING_PARTICLE = re.compile(r"^\s*(yes|no|sure|of course|sorry|unfortunately)\b[,!.]?\s*", re.IGNORECASE)
_NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")
_NUMERIC_CONTEXT = {"once", "twice", "half", "single", "first", "second", "third", "one"}


def numbers(text: str) -> set[str]:
    """Every number in a text, normalised: 4,95 -> 4.95; 2-4 -> {2, 4}; number words -> digits
    (ordinals and 'one', which are mostly not quantities, only when a digit version is there)."""
    found = {n.replace(",", ".").rstrip(".") for n in _NUMBER.findall(text)}
    for word in re.findall(r"[a-z]+", text.lower()):
        if word in _NUMBER_WORDS and word not in _NUMERIC_CONTEXT:
            found.add(_NUMBER_WORDS[word])
    return found


def negated(text: str) -> bool:
    return bool(_NEGATION.search(_LEADING_PARTICLE.sub("", text)))
