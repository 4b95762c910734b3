"""Prompt leaks: an answer that repeats the instructions rather than the passages."""

from __future__ import annotations

import re

from bot.generation.guard.lexical import content_words


def _ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    words = re.findall(r"[a-z0-9]+", text.lower())
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def leaks_prompt(answer: str, instructions: str, passages_text: str, n: int = 6) -> bool:
    """The answer repeats n words in a row from the instructions that are not in the passages, or
    uses a word that only the instructions have (the worked example's "library")."""
    leaked = _ngrams(answer, n) & _ngrams(instructions, n)
    if leaked - _ngrams(passages_text, n):
        return True
    only_instructions = content_words(instructions) - content_words(passages_text)
    return bool(content_words(answer) & only_instructions)
