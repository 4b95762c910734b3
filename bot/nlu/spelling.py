"""Typos corrected before the models read a message: "how 2 get the crusty stuff out of my kettel",
"payment declind", "how do i leave a reveiw". The encoders split an unknown word into pieces that
mean little ("kett", "##el"), so a typo of the one word that names the topic loses the answer.

A word is corrected only when it is in neither symspellpy's English frequency dictionary (it ships
in the wheel) nor the shop's own words (FAQ and training examples: "descale", "Harrowgate"), is
four letters or more, is lower case (or capitalised at the start of a sentence: not a name), and
has a candidate one edit away that starts with the same letter (a typo seldom hits the first)
and is a shop word or a common English one (nonsense stays nonsense: "glorbix trandle").
Among candidates, an omission or a swap ("ordr" -> "order", "kettel" -> "kettle") goes before a
substitution ("wher" -> "where", not "when"), the shop's words before others, then frequency. Only
text in the corrector's language is touched; the stored message stays as the customer wrote it.
"""

from __future__ import annotations

import importlib.resources
import re
import threading
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache

from symspellpy import SymSpell, Verbosity

_TOKEN = re.compile(r"\S+")
_WORD = re.compile(r"^([\"'(\[]*)([A-Za-z]+)([.,!?;:)\]\"']*)$")
_SENTENCE_END = re.compile(r"[.!?]$")
_SHOP_WORD = re.compile(r"[A-Za-z]{4,}")
MIN_LENGTH = 4
# An English word this rare in the dictionary's counts is more likely a wrong guess for a made-up
# word ("trandle" -> "trundle", "blorp" -> "bloop") than the word a customer meant.
MIN_COUNT = 1_000_000


@lru_cache(maxsize=1)
def _english() -> tuple[SymSpell, threading.Lock]:
    """The English dictionary, loaded once per process (about a second): every corrector adds the
    shop's words to its own copy of the counts, not to this index."""
    speller = SymSpell(max_dictionary_edit_distance=1, prefix_length=7)
    path = importlib.resources.files("symspellpy") / "frequency_dictionary_en_82_765.txt"
    speller.load_dictionary(str(path), term_index=0, count_index=1)
    return speller, threading.Lock()


def _omission_or_swap(word: str, candidate: str) -> bool:
    """The candidate has the word's letters in order plus one (an omitted letter), or the same
    letters with two neighbours swapped."""
    if len(candidate) == len(word) + 1:
        return any(candidate[:i] + candidate[i + 1:] == word for i in range(len(candidate)))
    if len(candidate) == len(word):
        diff = [i for i, (a, b) in enumerate(zip(word, candidate, strict=True)) if a != b]
        return len(diff) == 2 and diff[1] == diff[0] + 1 and word[diff[0]] == candidate[diff[1]] \
            and word[diff[1]] == candidate[diff[0]]
    return False


class SpellingCorrector:
    """`correct(text)`: the text with typos of known words corrected, everything else as written."""

    def __init__(self, shop_words: Iterable[str] = (), language: str = "en") -> None:
        self.language = language
        self.shop = Counter(w.lower() for w in shop_words)
        self._speller, self._lock = _english()
        self._shop_index = SymSpell(max_dictionary_edit_distance=1, prefix_length=7)
        for word, count in self.shop.items():
            self._shop_index.create_dictionary_entry(word, count)

    @classmethod
    def from_texts(cls, texts: Iterable[str], language: str = "en") -> SpellingCorrector:
        """The shop's words: those of the texts given (bot.services passes the FAQ's phrasings and
        answers; customers' training messages hold typos of their own)."""
        return cls((w for text in texts for w in _SHOP_WORD.findall(text)), language)

    def applies(self, language: str | None) -> bool:
        return language is None or language == self.language

    def correct(self, text: str) -> str:
        out: list[str] = []
        last = 0
        sentence_start = True
        for m in _TOKEN.finditer(text):
            token = m.group()
            fixed = self._token(token, sentence_start)
            out.append(text[last:m.start()] + fixed)
            last = m.end()
            sentence_start = bool(_SENTENCE_END.search(token))
        out.append(text[last:])
        return "".join(out)

    def _token(self, token: str, sentence_start: bool) -> str:
        m = _WORD.match(token)
        if m is None:
            return token
        before, word, after = m.groups()
        capitalised = word[0].isupper() and word[1:].islower()
        if len(word) < MIN_LENGTH or not (word.islower() or (capitalised and sentence_start)):
            return token
        best = self.suggest(word.lower())
        if best is None:
            return token
        return before + (best.capitalize() if capitalised else best) + after

    def suggest(self, word: str) -> str | None:
        """The correction of one lower-case word, or None when it is known or nothing is near."""
        if word in self.shop or word in self._speller.words:
            return None
        with self._lock:
            found = self._speller.lookup(word, Verbosity.ALL, max_edit_distance=1)
        found += self._shop_index.lookup(word, Verbosity.ALL, max_edit_distance=1)
        candidates = {s.term: s.count for s in found if s.term[0] == word[0] and s.distance == 1
                      and (s.term in self.shop or s.count >= MIN_COUNT)}
        if not candidates:
            return None

        def rank(term: str) -> tuple[bool, bool, int]:  # a shop word outranks any English one
            return _omission_or_swap(word, term), term in self.shop, candidates[term]
        return max(candidates, key=rank)
