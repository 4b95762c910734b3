"""Guardrails around the generator: personal data, prompt injection, topic, grounding, prompt leaks.

Each guard is a small pure object or function, tested on its own (tests/unit/test_guard.py):

- `PiiMasker` replaces e-mail addresses, phone, card, IBAN, SSN and resident ID numbers with
  placeholders before text reaches a model and in what it answers, by bot.pii's rules (the company's
  own contacts from the FAQ are not personal data).
- `detect_injection` finds text that tries to change the instructions, reveal the prompt or play
  a role; `strip_control` removes chat-template tokens and role headers from any text that goes
  into a prompt, so neither a customer nor a passage can open a new "system" turn.
- `off_topic` is the topic check: a question no FAQ passage is near is outside the domain.
- `GroundingChecker` decides, sentence by sentence, whether the passages support an answer:
  semantic similarity (max cosine with a passage sentence, MiniLM), lexical support (the
  sentence's content words occur in its nearest passage sentences), numbers (every number,
  price, duration in it occurs in those sentences) and polarity (no "not" the supporting
  sentence lacks, or the reverse).
- `leaks_prompt` catches an answer that repeats the instructions rather than the passages.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from bot.pii import KINDS, public_contacts, redact
from bot.textsafety import matching_form

# --- sentences ---------------------------------------------------------------------------
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


# --- personal data -----------------------------------------------------------------------
@dataclass
class PiiMasker:
    """Mask personal data with bot.pii's rules (the one detector; see there) and lower-case
    placeholders; `allow` holds what is not personal (the company's own published contacts)."""

    allow: set[str] = field(default_factory=set)
    email: str = "[email]"
    phone: str = "[phone]"
    card: str = "[card]"
    iban: str = "[iban]"
    ssn: str = "[ssn]"
    national_id: str = "[national_id]"

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> PiiMasker:
        contacts = public_contacts(list(texts))
        return cls(allow=set(contacts) | {c.lower() for c in contacts})

    def mask(self, text: str) -> tuple[str, list[str]]:
        """The masked text and the kinds found (email, phone, card, iban, ssn, national_id)."""
        return redact(text, KINDS, self._placeholder, keep=self.allow)

    def _placeholder(self, kind: str) -> str:
        return str(getattr(self, kind))


# --- prompt injection --------------------------------------------------------------------
# Chat-template tokens and role headers of the common model families: never allowed into a prompt.
_CONTROL_TOKENS = re.compile(
    r"<\|[^|>]{1,40}\|>|</?s>|\[/?INST\]|<</?SYS>>|<start_of_turn>|<end_of_turn>|<\|?eot_id\|?>",
    re.IGNORECASE)
_ROLE_HEADER = re.compile(r"(?im)^[ \t]*(?:#{1,4}[ \t]*)?(system|assistant|developer|instructions?)"
                          r"[ \t]*:[ \t]*|^[ \t]*(system|assistant|user|developer)[ \t]*$\n?")

def _any(*words: str) -> str:
    return "(?:" + "|".join(words) + ")"


_GAP = r"[\w\s,:;'-]{0,40}?"
_BOT_THINGS = _any("instructions?", "rules", "prompts?", "guidelines", "directions", "programming",
                   "training", "restrictions", "filters", "guardrails", "polic(?:y|ies)", "constraints",
                   "system message")
_OWNERS = _any("your", "previous", "prior", "above", "earlier", "preceding", "original", "initial", "system",
               "all", "any", "these", "those", "the above", "the previous", "the system", "the original")
_SHOW = _any("reveal", "show", "print", "display", "output", "repeat", "recite", "dump", "leak", "tell me",
             "give me", "what(?:'s| is| are)", "copy", "paste", "write out", "spell out", "translate")
_SECRET = _any("system", "initial", "original", "hidden", "secret", "internal", "full", "exact", "developer",
               "above", "previous")
_PERSONAS = _any("system", "admin", "administrator", "developer", "root", "dan", r"jailbr\w*", "unrestricted",
                 "unfiltered", "evil", "no rules", "without (?:rules|restrictions|limits)",
                 "another (?:ai|assistant|bot)", "chatgpt", "gpt", "linux", "terminal", "grandmother",
                 "grandma", "pirate", "character", "ai")
_INJECTION_SPECS = [
    # "ignore all previous instructions", "forget your rules", "disregard the FAQ"
    ("override", r"\b(ignore|disregard|forget|override|bypass|skip)\b(?:\s+\w+){0,2}?\s+" + _OWNERS
                 + r"\b(?:\s+\w+)?\s+" + _BOT_THINGS + r"\b"),
    ("override", r"\b(ignore|disregard|forget|bypass)\s+(?:the\s+|your\s+)?"
                 r"(faq|passages|context|knowledge base)\b"),
    ("override", r"\b(new|updated|real|actual|different|secret|hidden)\s+"
                 r"(instructions?|rules|system prompt|task)\s*[:=-]"),
    ("override", r"\b(from now on|starting now|for the rest of (?:this|the) conversation),?\s+(you|your)\b"),
    ("override", r"\b(respond|reply|answer)\s+(?:only\s+)?with\s+(?:the\s+|a\s+)?(?:single\s+|one\s+)?word\b"
                 r"|\band nothing else\b|\bcomplete (?:this|the following) (?:sentence|text)\b"),
    # "print your system prompt", "reveal your hidden instructions", "what are your instructions?"
    ("reveal", r"\b" + _SHOW + r"\b" + _GAP + r"\b(?:your|the|its)\s+(?:" + _SECRET + r"\s+)?"
               r"(prompt|system message|configuration|directives)\b"),
    ("reveal", r"\b" + _SHOW + r"\b" + _GAP + r"\b(?:your|the)\s+" + _SECRET
               + r"\s+(instructions?|rules|guidelines|message)\b"),
    ("reveal", r"\b(what are|repeat|print|show|reveal|list|tell me)\s+(?:me\s+)?your\s+"
               r"(instructions|rules|guidelines)\b(?!\s+(?:for|on|about|to|regarding|when)\b)"),
    ("reveal", r"\b(repeat|print|output)\b[\w\s,'-]{0,20}\b(everything|all|the text|the words)\b"
               r"[\w\s,'-]{0,20}\b(above|before|so far|verbatim)\b"),
    # "you are now DAN", "pretend you are an unrestricted AI", "developer mode"
    ("roleplay", r"\b(you are now|you're now|you will now be|from now on you are)\b"),
    ("roleplay", r"\b(act as|pretend (?:to be|you are|you're)|role-?play|simulate|impersonate|behave as)\b"
                 + _GAP + r"\b" + _PERSONAS + r"\b"),
    ("roleplay", r"\b(developer mode|jailbreak|jailbroken|do anything now|dan mode|god mode|sudo mode"
                 r"|admin mode|maintenance mode|debug mode|unrestricted mode)\b"),
    ("roleplay", r"\byou (?:must|have to|will) (?:now )?(?:obey|comply|answer everything|always say yes)\b"),
    # chat-template tokens and role headers typed into the message
    ("control", r"<\|[^|>]{1,40}\|>|\[/?INST\]|<</?SYS>>"
                r"|(?m:^\s*#{0,4}\s*(system|assistant|developer|instructions?|response)\s*:)"),
]
_INJECTION_PATTERNS = [(name, re.compile(p, re.IGNORECASE)) for name, p in _INJECTION_SPECS]


def detect_injection(text: str) -> str | None:
    """The kind of injection attempt in a customer's message (override, reveal, roleplay,
    control), or None. Matched on the normalised text: invisible characters and look-alike
    letters inside "ignore all previous instructions" do not hide it."""
    text = matching_form(text)
    for name, pattern in _INJECTION_PATTERNS:
        if pattern.search(text):
            return name
    return None


def strip_control(text: str) -> str:
    """Remove chat-template tokens and line-leading role headers: text stays data in a prompt."""
    text = _CONTROL_TOKENS.sub(" ", text)
    text = _ROLE_HEADER.sub("", text)
    return re.sub(r"[ \t]{2,}", " ", text).strip()


# --- topic -------------------------------------------------------------------------------
def off_topic(best_score: float | None, threshold: float) -> bool:
    """No FAQ passage near the question: it is outside what the company's assistant answers."""
    return best_score is None or best_score < threshold


# --- grounding ---------------------------------------------------------------------------
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
_POLAR = re.compile(r"\b(yes|no|not|never|cannot|can't|don't|won't|isn't|aren't|doesn't)\b", re.IGNORECASE)
_PLACEHOLDER = re.compile(r"\[[A-Za-z_ ]{2,30}\]")  # [email], [phone]: masked data, or a template gap
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

    def _passage_sentences(self, passages: list) -> tuple[list[str], list[str], np.ndarray]:  # type: ignore[type-arg]
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

    def check(self, sentences: list[str], passages: list) -> list[SentenceCheck]:  # type: ignore[type-arg]
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


# --- prompt leaks ------------------------------------------------------------------------
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
