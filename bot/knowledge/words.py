"""Content words of English text, as the FAQ coverage check (coverage.py) and the generator's
grounding check and extractive composer compare them: stop words and number words out, a light
stemmer. Here, below both, so that knowledge/ need not import generation/."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Protocol

STOPWORDS = frozenset([
    "a", "an", "the", "and", "or", "but", "if", "then", "so", "of", "to", "in", "on", "at", "by", "for",
    "with", "from", "as", "into", "onto", "about", "over", "under", "after", "before", "than", "too",
    "very", "just", "also", "only", "even", "still", "yet", "again", "ever", "each", "every", "any", "all",
    "some", "most", "more", "much", "many", "few", "is", "are", "was", "were", "be", "been", "being", "am",
    "do", "does", "did", "done", "doing", "have", "has", "had", "having", "will", "would", "shall",
    "should", "can", "could", "may", "might", "must", "it", "its", "it's", "this", "that", "these", "those",
    "there", "here", "what", "which", "who", "whom", "whose", "when", "where", "why", "how", "i", "me",
    "my", "mine", "you", "your", "yours", "we", "us", "our", "ours", "they", "them", "their", "theirs",
    "he", "him", "his", "she", "her", "hers", "one", "ones", "yes", "no", "not", "sure", "ok", "okay",
    "please", "thanks", "thank", "hi", "hello", "dear", "great", "happy", "glad", "help", "let", "lets",
    "let's", "like", "get", "got", "make", "made", "use", "used", "able", "via", "per", "up", "out", "off",
    "down", "own", "same", "such", "both", "either", "neither", "nor", "s", "t", "d", "ll", "m", "re", "ve",
    "don", "doesn", "isn", "aren", "won", "wouldn", "shouldn", "didn", "can't", "don't", "won't", "isn't",
    "aren't", "doesn't", "didn't", "kiki", "assistant", "customer", "customers", "need", "needs", "want",
    "wants", "answer", "question", "questions", "passage", "passages"
])
NUMBER_WORDS = {
    "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
    "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12", "fifteen": "15", "twenty": "20",
    "thirty": "30", "hundred": "100", "once": "1", "twice": "2", "half": "0.5", "single": "1", "first": "1",
    "second": "2", "third": "3",
}


def stem(word: str) -> str:
    w = word.lower().strip("'")
    if w.endswith("'s"):
        w = w[:-2]
    for suffix, repl, min_len in (("ies", "y", 5), ("sses", "ss", 5), ("es", "", 5), ("s", "", 4),
                                  ("ing", "", 6), ("ed", "", 5), ("ly", "", 6)):
        if w.endswith(suffix) and len(w) >= min_len and not w.endswith("ss"):
            return w[: -len(suffix)] + repl
    return w


def content_words(text: str) -> set[str]:
    words = re.findall(r"[A-Za-z][A-Za-z']*|\d+(?:[.,]\d+)?", text.lower())
    return {stem(w) for w in words if w not in STOPWORDS and len(w) > 1 and w not in NUMBER_WORDS}


def topic_words(message: str, near: str, common: frozenset[str] = frozenset()) -> list[str]:
    """The message's words (as written, in order) that the near question asks about and the FAQ's
    `common` vocabulary never uses: what "I don't have an answer about ..." names ("student" of
    "is there a student discount?" near "do you have a student discount"; not "mugs")."""
    asked = content_words(near)
    out: list[str] = []
    for word in re.findall(r"[A-Za-z][A-Za-z'-]*", message):
        stemmed = stem(word)
        if stemmed in asked and stemmed not in common and word.lower() not in STOPWORDS and word not in out:
            out.append(word)
    return out


class _Entry(Protocol):
    @property
    def phrasings(self) -> list[str]: ...
    @property
    def answer(self) -> str: ...


def shop_words(entries: Iterable[_Entry]) -> frozenset[str]:
    """Every content word (stem) the FAQ uses in its questions, phrasings and answers: a word the
    customer shares with a question the FAQ leaves unanswered is a topic word only outside it."""
    return frozenset(word for e in entries for text in [*e.phrasings, e.answer]
                     for word in content_words(text))
