"""Does the retrieved FAQ entry address what the question is about?

A question the FAQ cannot answer ("is there a teachers' discount") retrieves a neighbouring entry
(discount codes) with a cosine as high as a true paraphrase's, so a score threshold alone cannot
tell them apart. What tells them apart is a word the question asks about and the entry never
addresses. `CoverageCheck` looks at the content words of the question's ask (its last
question-like clause: "my aunt gave me a gift card, how long is it valid" asks about validity),
leaves out those the entry mentions (a typo or inflection counts) and those common across the
whole FAQ (the shop's own vocabulary: orders, delivery, pans), and aligns each remaining word's
contextual vector with the entry's words (BERTScore-style, the encoder's last layer): "sweden"
finds the shipping entry's "countries" (cosine 0.42), "teachers" nothing in the discount-code
entry (0.16). A word is unaddressed when its best alignment plus a share of the question's cosine
with the entry stays under a margin: the weaker the match, the less a loose alignment is
forgiven. benchmarks/coverage.py calibrates the margin and measures sentence-vector occlusion
beside it (far fewer catches at the same false-flag rate). One encoder pass per check, none when
no word is a candidate (an entry's vectors are cached); English/Latin-script text only.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from bot.knowledge.embedder import TokenVectors
from bot.knowledge.loader import FaqEntry
from bot.knowledge.words import content_words, stem

MARGIN = 0.58  # alignment + SCORE_WEIGHT * cosine under which a word is unaddressed (benchmarks/coverage.py)
SCORE_WEIGHT = 0.75
DOMAIN_ENTRIES = 3  # a word that this many entries mention is the shop's vocabulary, not a new topic
MIN_WORDS = 3  # shorter messages ("gift card", "hello there") are left to the retrieval threshold

_WORD = re.compile(r"[A-Za-z][A-Za-z']*(?:-[A-Za-z]+)*")
_CLITIC = re.compile(r"n't$|'(?:s|re|m|ll|d|ve|t)$")
_CLAUSE_END = re.compile(r"[,;:.!?]+\s*|\s+-\s+|\s+but\s+|\n", re.IGNORECASE)
_ASKING = re.compile(r"^\s*(how|what|whats|what's|when|where|which|who|whom|whose|why|can|could|do|does"
                     r"|did|is|are|was|were|will|would|should|shall|may|might|have|has|any|anyone)\b",
                     re.IGNORECASE)
_LETTER = re.compile(r"[^\W\d_]")
_LATIN = re.compile(r"[A-Za-z\u00C0-\u024F]")


@dataclass(frozen=True)
class Gap:
    """A word of the question's ask that the entry does not mention, and how close the entry's
    words come to it in context (cosine of contextual vectors)."""

    word: str
    alignment: float


@dataclass(frozen=True)
class Assessment:
    """What `uncovered` decides on: the candidate words and the question's cosine with the entry's
    best phrasing (the retrieval score)."""

    gaps: list[Gap]
    score: float

    def unaddressed(self, margin: float = MARGIN, score_weight: float = SCORE_WEIGHT) -> list[str]:
        limit = margin - score_weight * self.score
        return [g.word for g in sorted(self.gaps, key=lambda g: g.alignment) if g.alignment < limit]


def bare(token: str) -> str:
    """'customer's' -> 'customer', "don't" -> 'do', 'pre-order' -> 'preorder'."""
    return _CLITIC.sub("", token.lower()).replace("-", "")


def _distance(a: str, b: str, limit: int) -> int:
    """Optimal string alignment distance (a swap of neighbours is one edit), or limit + 1 past it."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    before: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        row = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                row[j] = min(row[j], before[j - 2] + 1)
        if min(row) > limit:
            return limit + 1
        before, prev = prev, row
    return prev[-1]


def same_word(word: str, known: str) -> bool:
    """A typo or inflection of the same word: 'skilet'/'skillet', 'delivry'/'delivery',
    'recycled'/'recycling', 'deliver'/'delivery'."""
    if word == known or stem(word) == stem(known):
        return True
    short, long_ = sorted((word, known), key=len)
    if len(short) >= 5 and long_.startswith(short[:max(5, len(short) - 2)]):
        return True
    budget = 0 if len(word) < 5 else 1 if len(word) < 8 else 2
    return budget > 0 and _distance(word, known, budget) <= budget


class _Vocabulary:
    """Which entries mention a word, typos and inflections included."""

    def __init__(self, texts: Iterable[tuple[int, str]]) -> None:
        self._owners: dict[str, set[int]] = {}
        for owner, text in texts:
            for token in _WORD.findall(text):
                for form in {bare(token), stem(bare(token))}:
                    self._owners.setdefault(form, set()).add(owner)
        self._by_initial: dict[str, list[str]] = {}  # a typo seldom hits the first letter
        for form in self._owners:
            self._by_initial.setdefault(form[0], []).append(form)
        self.mentions = lru_cache(maxsize=4096)(self._mentions)

    def _mentions(self, word: str) -> frozenset[int]:
        exact = self._owners.get(word, set()) | self._owners.get(stem(word), set())
        fuzzy = (self._owners[form] for form in self._by_initial.get(word[:1], []) if same_word(word, form))
        return frozenset(exact.union(*fuzzy))


@dataclass
class _EntryVectors:
    words: np.ndarray  # unit contextual vectors of the entry's content words (question, alternatives, answer)
    phrasings: np.ndarray  # unit sentence vectors of its question and alternatives


class CoverageCheck:
    """`uncovered(question, entry)`: the words the question asks about that the entry does not
    address. `encode_tokens` is the FAQ encoder's (bot.knowledge.embedder.Embedder); `entries`
    are the knowledge base's, for the shop's common vocabulary."""

    def __init__(self, encode_tokens: Callable[[list[str]], list[TokenVectors]], entries: list[FaqEntry],
                 margin: float = MARGIN, score_weight: float = SCORE_WEIGHT,
                 domain_entries: int = DOMAIN_ENTRIES, min_words: int = MIN_WORDS,
                 cache_size: int = 512) -> None:
        self.encode_tokens = encode_tokens
        self.margin, self.score_weight = margin, score_weight
        self.domain_entries, self.min_words = domain_entries, min_words
        self._kb = _Vocabulary((i, t) for i, e in enumerate(entries) for t in _texts(e))
        self._cache: OrderedDict[str, tuple[_Vocabulary, _EntryVectors | None]] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()  # the inference pool's workers share one check

    def uncovered(self, question: str, entry: FaqEntry) -> list[str]:
        """Words of the question's ask the entry never addresses, least addressed first; [] when
        it addresses them all or the text cannot be judged (not Latin script, under 3 words)."""
        return self.assess(question, entry).unaddressed(self.margin, self.score_weight)

    def assess(self, question: str, entry: FaqEntry) -> Assessment:
        """The candidate words with their alignment, and the cosine (benchmarks/coverage.py sweeps
        the thresholds over these)."""
        words = [(m.group(), m.start(), m.end()) for m in _WORD.finditer(question)]
        if len(words) < self.min_words or not _latin(question):
            return Assessment([], 0.0)
        key = _entry_key(entry)
        with self._lock:
            cached = self._cache.pop(key, None)
        own, vectors = cached or (_Vocabulary((0, t) for t in _texts(entry)), None)
        start, end = ask_clause(question)
        candidates = [(w, s, e) for w, s, e in words
                      if s >= start and e <= end and self._candidate(bare(w), own)]
        if not candidates:
            self._remember(key, own, vectors)
            return Assessment([], 0.0)
        if vectors is None:
            encoded = self.encode_tokens([question, *_texts(entry)])
            vectors = _entry_vectors(entry, encoded[1:])
        else:
            encoded = self.encode_tokens([question])
        self._remember(key, own, vectors)
        asked = encoded[0]
        score = float((vectors.phrasings @ asked.sentence).max())
        gaps: dict[str, Gap] = {}
        for word, s, e in candidates:
            vector = _word_vector(asked, s, e)
            found = vector is not None and len(vectors.words) > 0
            alignment = float((vectors.words @ vector).max()) if found else 0.0
            lower = word.lower()
            if lower not in gaps or alignment < gaps[lower].alignment:
                gaps[lower] = Gap(lower, round(alignment, 4))
        return Assessment(list(gaps.values()), round(score, 4))

    def _candidate(self, word: str, own: _Vocabulary) -> bool:
        """A content word the entry does not mention and that is not the shop's common vocabulary."""
        return (bool(content_words(word)) and not own.mentions(word)
                and len(self._kb.mentions(word)) < self.domain_entries)

    def _remember(self, key: str, own: _Vocabulary, vectors: _EntryVectors | None) -> None:
        with self._lock:
            self._cache[key] = (own, vectors)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)


def ask_clause(text: str) -> tuple[int, int]:
    """Character span of what the message asks: its last clause that reads as a question (a
    question word first, or a question mark after it), else its last clause. A customer's story
    comes first ("I'm in Manchester, how long does delivery take"), or after ("... ? I'm 17")."""
    clauses: list[tuple[int, int, bool]] = []
    start = 0
    for end_mark in [*_CLAUSE_END.finditer(text), None]:
        end = end_mark.start() if end_mark else len(text)
        if _WORD.search(text, start, end):
            asks = bool(_ASKING.match(text[start:end])) or bool(end_mark and "?" in end_mark.group())
            clauses.append((start, end, asks))
        if end_mark:
            start = end_mark.end()
    if not clauses:
        return 0, len(text)
    asking = [c for c in clauses if c[2]]
    start, end, _ = (asking or clauses)[-1]
    return start, end


def _entry_vectors(entry: FaqEntry, encoded: list[TokenVectors]) -> _EntryVectors:
    words = [v for text, tokens in zip(_texts(entry), encoded, strict=True) for m in _WORD.finditer(text)
             if content_words(bare(m.group()))
             and (v := _word_vector(tokens, m.start(), m.end())) is not None]
    dim = encoded[0].sentence.shape[0]
    return _EntryVectors(np.stack(words) if words else np.zeros((0, dim), dtype=np.float32),
                         np.stack([t.sentence for t in encoded[:len(entry.phrasings)]]))


def _word_vector(tokens: TokenVectors, start: int, end: int) -> np.ndarray | None:
    """The unit mean of the word's pieces ('skil', '##et'); None past the encoder's length limit."""
    rows = [i for i, (s, e) in enumerate(tokens.spans) if s < end and e > start]
    if not rows:
        return None
    vector = tokens.vectors[rows].mean(axis=0)
    return vector / (np.linalg.norm(vector) or 1.0)


def _texts(entry: FaqEntry) -> list[str]:
    return [*entry.phrasings, entry.answer]


def _entry_key(entry: FaqEntry) -> str:
    """Id plus text, so an edited entry is not judged by its old words."""
    return "\x1f".join([entry.id, *_texts(entry)])


def _latin(text: str) -> bool:
    """Mostly Latin letters: the words, stemmer and clause rules are English (Chinese has no spaces)."""
    letters = _LETTER.findall(text)
    return bool(letters) and sum(bool(_LATIN.match(c)) for c in letters) >= 0.9 * len(letters)
