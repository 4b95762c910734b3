"""The parts of a customer's question: a compound question ("Is delivery free and how long does it
take?") asks several things. Below both the dialogue policy (a compound question is composed from
several FAQ entries) and the generator (each part is searched and answered on its own)."""

from __future__ import annotations

import re

# Where a clause of a compound question starts: "... free and how long ...", "... gift, can I ...".
_CLAUSE = re.compile(
    r"\s*(?:,\s*|;\s*)?\b(?:and also|and then|and|also|plus|but|or)\b\s+"
    r"(?=(?:can|could|do|does|did|is|are|was|how|what|what's|when|where|which|why|who|will|would|should"
    r"|shall|may|i|i'm|my|if|there)\b)"
    r"|\s*[;,]\s+(?=(?:can|could|do|does|is|are|how|what|when|where|which|why|will|would|should)\b)",
    re.IGNORECASE)


def question_parts(text: str) -> list[str]:
    """The sub-questions of a compound question ("Is delivery free and how long does it take?" ->
    2); a simple question is one part."""
    parts: list[str] = []
    for segment in re.split(r"[?]+|\n+", text):
        for clause in _CLAUSE.split(segment):
            clause = clause.strip(" .,;!")
            if len(clause.split()) >= 2:
                parts.append(clause)
    return parts or [text.strip()]
