"""Sentence-level grounding: is each answer sentence supported by the passages?

Semantic similarity (max cosine with a passage sentence, MiniLM), lexical support (the sentence's
content words occur in its nearest passage sentences), numbers (every number, price, duration in it
occurs in those sentences) and polarity (no "not" the supporting sentence lacks, or the reverse).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bot.generation.guard.lexical import content_words, negated, numbers
from bot.generation.guard.sentences import split_sentences

_POLAR = re.compile(r"\b(yes|no|not|never|cannot|can't|don't|won't|isn't|aren't|doesn't)\b", re.IGNORECASE)
_PLACEHOLDER = re.compile(r"\[[A-Za-z_ ]{2,30}\]")  # [email], [phone]: masked data, or a template gap


@dataclass
class SentenceCheck:
    text: str
    supported: bool
    reason: str  # ok | no_content | semantic | lexical | number | negation | placeholder | polarity
    score: float = 0.0
    lexical: float = 1.0
    passage_id: str | None = None


class GroundingChecker:
    """Is each answer sentence supported by the passages? `encode` maps texts to unit vectors
    (the FAQ embedder); passage sentence vectors are cached by passage id and text."""

    def __init__(self, encode: Callable[[list[str]], np.ndarray], threshold: float = 0.62,
                 lexical_threshold: float = 0.8, cache_size: int = 2048, support_sentences: int = 3) -> None:
        self.encode = encode
        self.support_sentences = support_sentences
        self.threshold = threshold
        self.lexical_threshold = lexical_threshold
        self._cache: dict[tuple[str, str], tuple[list[str], np.ndarray]] = {}
        self._cache_size = cache_size

    def _passage_sentences(self, passages: list) -> tuple[list[str], list[str], np.ndarray]:
        texts: list[str] = []
        owners: list[str] = []
        vectors: list[np.ndarray] = []
        for p in passages:
            key = (p.id, p.text)
            if key not in self._cache:
                sentences = split_sentences(p.text) or [p.text]
                if len(self._cache) >= self._cache_size:
                    self._cache.pop(next(iter(self._cache)))
                self._cache[key] = (sentences, self.encode(sentences))
            sentences, vecs = self._cache[key]
            texts.extend(sentences)
            owners.extend([p.id] * len(sentences))
            vectors.append(vecs)
        matrix = np.vstack(vectors) if vectors else np.zeros((0, 1), dtype=np.float32)
        return texts, owners, matrix

    def check(self, sentences: list[str], passages: list) -> list[SentenceCheck]:
        if not sentences:
            return []
        texts, owners, matrix = self._passage_sentences(passages)
        results: list[SentenceCheck] = []
        vectors = self.encode(sentences) if len(texts) else None
        for i, sentence in enumerate(sentences):
            own = content_words(sentence)
            if not own and not numbers(sentence):
                # "Sure!" is harmless; "The answer is yes." is a claim with nothing to check it by.
                polar = _POLAR.search(sentence) is not None
                results.append(SentenceCheck(sentence, not polar, "polarity" if polar else "no_content"))
                continue
            if vectors is None:
                results.append(SentenceCheck(sentence, False, "semantic"))
                continue
            sims = matrix @ vectors[i]
            best = int(np.argmax(sims))
            score = float(sims[best])
            # Words and numbers must come from the sentences that support this one (the nearest
            # few), not from anywhere in the passages: "express delivery is free" borrows "free"
            # from a sentence about standard delivery.
            near = " ".join(texts[j] for j in np.argsort(-sims)[: self.support_sentences])
            words, nums = content_words(near), numbers(near)
            lexical = len(own & words) / len(own) if own else 1.0
            check = SentenceCheck(sentence, False, "ok", round(score, 4), round(lexical, 3), owners[best])
            if _PLACEHOLDER.search(sentence):
                check.reason = "placeholder"
            elif not numbers(sentence) <= nums:
                check.reason = "number"
            elif score < self.threshold:
                check.reason = "semantic"
            elif lexical < self.lexical_threshold:
                check.reason = "lexical"
            elif negated(sentence) != negated(texts[best]):
                check.reason = "negation"
            else:
                check.supported = True
            results.append(check)
        return results
