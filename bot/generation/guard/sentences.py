"""Sentences and citations of an answer: what the guards check one at a time."""

from __future__ import annotations

import re

SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])|\n+")
_LABEL = r"(?:\d{1,2}|[a-z0-9]+(?:[_-][a-z0-9]+)*-[a-z0-9]+)"  # [1] or an entry id like [shipping-express]
_CITATION = re.compile(rf"\s*\[{_LABEL}(?:\s*,\s*{_LABEL})*\]")


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in SENTENCE_END.split(text.strip()) if s and s.strip()]


def strip_citations(text: str) -> tuple[str, list[str]]:
    """Text without `[1]`/`[shipping-express]` markers, and the labels it cited, in order."""
    labels: list[str] = []
    for m in _CITATION.finditer(text):
        for label in re.findall(r"[a-z0-9_-]+", m.group(0)):
            if label not in labels:
                labels.append(label)
    cleaned = _CITATION.sub("", text)
    cleaned = re.sub(r"\s+([.,!?;:])", r"\1", cleaned)
    return re.sub(r"[ \t]{2,}", " ", cleaned).strip(), labels
