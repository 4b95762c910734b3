"""Words and numbers of a sentence, as the grounding check and the extractive composer compare them:
content words (stop words out, a light stemmer), normalised numbers, negation."""

from __future__ import annotations

import re

_STOPWORDS = frozenset([
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
_NEGATION = re.compile(r"\b(not|no|never|cannot|can't|cant|don't|dont|doesn't|doesnt|isn't|isnt|aren't|arent"
                       r"|won't|wont|wouldn't|shouldn't|didn't|nothing|none|neither|nor|without|n't)\b",
                       re.IGNORECASE)
_LEADING_PARTICLE = re.compile(r"^\s*(yes|no|sure|of course|sorry|unfortunately)\b[,!.]?\s*", re.IGNORECASE)
_NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")
_NUMBER_WORDS = {
    "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
    "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12", "fifteen": "15", "twenty": "20",
    "thirty": "30", "hundred": "100", "once": "1", "twice": "2", "half": "0.5", "single": "1", "first": "1",
    "second": "2", "third": "3",
}
_NUMERIC_CONTEXT = {"once", "twice", "half", "single", "first", "second", "third", "one"}


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
    return {stem(w) for w in words if w not in _STOPWORDS and len(w) > 1 and w not in _NUMBER_WORDS}


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
