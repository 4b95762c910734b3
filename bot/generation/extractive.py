"""A grounded extractive composer: the answer is the FAQ's own sentences, chosen and joined.

Nothing is written by a model. For each part of the customer's question (`Grounding.parts`,
personal data already masked) the composer picks the passage that answers that part, takes the
sentences of it nearest to the part, and quotes them verbatim, each with its citation (`[1]`, the
prompt's numbering, which the service resolves to FAQ entry ids for the sources line). So the
answer is grounded by construction; the service still checks every sentence as it checks a
model's, and streams them one by one.

How a passage is matched to a part (weights and threshold set mainly on the retrieval paraphrases
of benchmarks/data/faq_paraphrases.yml; the generation evaluation set was looked at too):

    relevance = max cosine of the part with the entry's question or one of its sentences
                (the grounding check's MiniLM embedder)
              + 0.2 x share of the part's content words found in the entry (from two words up)
              + 0.5 x the entry's retrieval score for the part's own query

A part whose best passage is under `min_relevance` is left unanswered; when no part is answered
the composer writes nothing and the service gives the "not sure" offer of a person. Off-topic
questions and injection attempts never get here: the service refuses them first. The result is
deterministic: no sampling, ties go to the earlier passage and sentence.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections import OrderedDict
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bot.config import Settings
from bot.generation.base import (
    Answer,
    ChatMessage,
    GenerationError,
    GeneratorBusy,
    GeneratorState,
    Grounding,
    Passage,
    collect,
)
from bot.generation.guard.lexical import content_words, numbers
from bot.generation.guard.sentences import split_sentences
from bot.inference import Busy

Encode = Callable[[list[str]], np.ndarray]
Run = Callable[..., Awaitable[Any]]

SEMANTIC_WEIGHT = 1.0
LEXICAL_WEIGHT = 0.2
RETRIEVAL_WEIGHT = 0.5
# Cosine of a part with an entry's question above which it asks the same thing: only then may the
# entry's "Yes,"/"No," answer it ("Do you deliver on Sundays?" must not get the "Yes," of "Do you
# offer express delivery?").
SAME_QUESTION = 0.8

# What PiiMasker leaves in a question ([email], [phone], ...): no meaning to match on.
_PLACEHOLDER = re.compile(r"\[[A-Za-z_ ]{2,30}\]")
_POLAR = re.compile(r"^\s*(?:can|could|do|does|did|is|are|was|were|will|would|should|shall|may|might"
                    r"|have|has|am)\b", re.IGNORECASE)
_WH = re.compile(r"^\s*(?:how|what|what's|when|where|which|why|who|whose)\b", re.IGNORECASE)
_PARTICLE = re.compile(r"^(?:yes|no)\b\s*[,!.;:]\s*(?=\S)", re.IGNORECASE)
_END = re.compile(r"[.!?]+[\"')\]]*$")
# Contractions that content_words keeps ("what's" -> "what", "i'm"): no meaning to match on.
_FUNCTION = frozenset({"what", "where", "who", "how", "that", "there", "here", "he", "she", "i'm", "i've",
                       "i'd", "i'll", "you're", "you've", "we're", "we've", "they're", "they've"})


def words_of(text: str) -> set[str]:
    return content_words(text) - _FUNCTION


@dataclass
class Unit:
    """One thing the customer asks: a part of the question, with clauses that only give context
    ("what do I do?") folded in, and the service's queries whose retrieval scores count for it."""

    text: str
    queries: list[str] = field(default_factory=list)
    personal: bool = False  # only hands over personal data ("my email is [email]")

    @property
    def polar(self) -> bool:
        return _POLAR.match(self.text) is not None


@dataclass
class Choice:
    unit: Unit
    passage: int  # index into Grounding.passages
    relevance: float
    sentences: list[int]  # indices into that passage's sentences, best first
    asks_entry: bool = False  # the unit asks the entry's own question (cosine with its title)


class ExtractiveComposer:
    """A `Generator` that quotes the passages the service attaches to the prompt (`Grounding`)."""

    name = "extractive"

    def __init__(self, encode: Encode | None = None, embedder: str | None = None, per_part: int = 2,
                 max_words: int = 90, min_relevance: float = 0.8, second_margin: float = 0.2,
                 cache_size: int = 4096) -> None:
        self._encode_fn = encode
        self._embedder_path = embedder
        self._run: Run | None = None
        self.per_part = per_part
        self.max_words = max_words
        self.min_relevance = min_relevance
        self.second_margin = second_margin
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    @property
    def state(self) -> GeneratorState:
        return "ready"

    def use_encoder(self, encode: Encode, run: Run | None = None) -> None:
        """Rank with the grounding check's embedder (and run on the service's inference pool):
        called by GenerationService, so composer and check agree on what a sentence means."""
        self._encode_fn = encode
        self._run = run

    # --- the Generator protocol ---------------------------------------------------------------
    async def stream(self, messages: list[ChatMessage], max_tokens: int,
                     temperature: float = 0.0) -> AsyncGenerator[str, None]:
        """The chosen sentences, cited, one delta each. `max_tokens` and `temperature` do not
        apply: the length is capped by `max_words`, and nothing is sampled."""
        grounding = next((m.grounding for m in reversed(messages) if m.grounding is not None), None)
        if grounding is None:
            raise GenerationError("the extractive composer needs the passages (Grounding) on the prompt")
        try:
            if self._run is not None:
                sentences = await self._run(self.compose, grounding)
            else:
                sentences = await asyncio.to_thread(self.compose, grounding)
        except GenerationError:
            raise
        except Busy as exc:  # the inference pool's bounded queue is full
            raise GeneratorBusy(str(exc)) from exc
        except Exception as exc:
            raise GenerationError(f"extractive composer failed: {type(exc).__name__}: {exc}") from exc
        for i, sentence in enumerate(sentences):
            yield sentence if i == len(sentences) - 1 else sentence + " "
            await asyncio.sleep(0)  # one sentence at a time, like a model's stream

    async def answer(self, messages: list[ChatMessage], max_tokens: int,
                     temperature: float = 0.0) -> Answer:
        return await collect(self.stream(messages, max_tokens, temperature))

    async def aclose(self) -> None:
        pass

    # --- composing ----------------------------------------------------------------------------
    def compose(self, grounding: Grounding) -> list[str]:
        """The answer's sentences, each ending with its citation; [] when no part is answered."""
        passages = list(grounding.passages)
        units = question_units(grounding)
        if not passages or not units:
            return []
        choices = self.choose(grounding, units)
        return self._render(choices, passages)

    def choose(self, grounding: Grounding, units: list[Unit]) -> list[Choice]:
        """For each unit its best passage and that passage's sentences, best first; units whose
        best passage is under `min_relevance` are left out."""
        passages = list(grounding.passages)
        sentences = [split_sentences(p.text) or [p.text] for p in passages]
        flat = [s for group in sentences for s in group]
        vectors = self._encode([u.text for u in units] + [p.title for p in passages] + flat)
        unit_vecs = vectors[: len(units)]
        title_vecs = vectors[len(units): len(units) + len(passages)]
        sentence_vecs = vectors[len(units) + len(passages):]
        spans, start = [], 0
        for group in sentences:
            spans.append((start, start + len(group)))
            start += len(group)
        entry_words = [words_of(f"{p.title} {p.text}") for p in passages]
        choices: list[Choice] = []
        for u, vec in zip(units, unit_vecs, strict=True):
            words = words_of(u.text)
            best: Choice | None = None
            for i, p in enumerate(passages):
                lo, hi = spans[i]
                sims = sentence_vecs[lo:hi] @ vec
                title = float(title_vecs[i] @ vec)
                semantic = max(title, float(sims.max()))
                # one content word found or not is all or nothing: it counts from two words up
                lexical = len(words & entry_words[i]) / len(words) if len(words) >= 2 else 0.0
                retrieval = max((grounding.scores.get(q, {}).get(p.id, 0.0) for q in u.queries), default=0.0)
                relevance = (SEMANTIC_WEIGHT * semantic + LEXICAL_WEIGHT * lexical
                             + RETRIEVAL_WEIGHT * retrieval)
                if best is None or relevance > best.relevance:
                    ranked = _rank_sentences(u, sentences[i], sims, self.second_margin)
                    best = Choice(u, i, round(relevance, 4), ranked, title >= SAME_QUESTION)
            if best is not None and best.relevance >= self.min_relevance:
                choices.append(best)
        return choices

    def _render(self, choices: list[Choice], passages: list[Passage]) -> list[str]:
        """Each unit's best sentence first (a two-part question keeps both parts), then more of
        each while under `max_words`; in the answer, units keep the question's order and
        sentences their passage's order."""
        texts = [split_sentences(p.text) or [p.text] for p in passages]
        picked: list[list[int]] = [[] for _ in choices]
        used: set[tuple[int, int]] = set()
        openings: set[str] = set()
        words = 0
        for rank in range(self.per_part):
            for c, chosen in zip(choices, picked, strict=True):
                if rank >= len(c.sentences):
                    continue
                j = c.sentences[rank]
                text = texts[c.passage][j]
                n = len(text.split())
                if rank > 0 and words + n > self.max_words:
                    continue
                key = (c.passage, j)
                opening = " ".join(re.findall(r"[a-z0-9]+", text.lower())[:5])
                if key in used or opening in openings:  # two parts answered by one sentence
                    continue
                used.add(key)
                openings.add(opening)
                chosen.append(j)
                words += n
        out: list[str] = []
        for c, chosen in zip(choices, picked, strict=True):
            for j in sorted(chosen):
                text = _tidy(texts[c.passage][j], keep_particle=c.unit.polar and c.asks_entry)
                out.append(_cite(text, c.passage + 1))
        return out

    def _encode(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            vectors = self._encoder()(missing)
            with self._lock:
                for text, vec in zip(missing, vectors, strict=True):
                    self._cache[text] = vec
                    self._cache.move_to_end(text)
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        with self._lock:
            found = {t: self._cache[t] for t in texts if t in self._cache}
        rest = [t for t in texts if t not in found]
        if rest:  # evicted meanwhile by a concurrent call: encode again
            found.update(zip(rest, self._encoder()(rest), strict=True))
        return np.vstack([found[t] for t in texts])

    def _encoder(self) -> Encode:
        if self._encode_fn is None:  # used on its own: load the FAQ embedder the settings name
            from bot.knowledge.embedder import load_embedder

            self._encode_fn = load_embedder(self._embedder_path).encode
        return self._encode_fn


def question_units(grounding: Grounding) -> list[Unit]:
    """The parts of the question that ask something. A clause with no content words ("what do I
    do", "Hi, I'm [email]") joins its neighbour; a clause that only hands over personal data ("my
    email is [email]") is dropped when another part asks the question."""
    parts = list(grounding.parts) or [grounding.question]
    units: list[Unit] = []
    waiting: list[str] = []
    for part in parts:
        clean = " ".join(_PLACEHOLDER.sub(" ", part).split())
        words = words_of(clean)
        if not words and not numbers(clean):
            if units:
                units[-1].text = f"{units[-1].text}, {clean}".strip(", ")
                units[-1].queries.append(part)
            else:
                waiting.append(part)
            continue
        personal = (bool(_PLACEHOLDER.search(part)) and len(words) <= 2
                    and not _POLAR.match(clean) and not _WH.match(clean))
        text = " ".join([*(" ".join(_PLACEHOLDER.sub(" ", w).split()) for w in waiting), clean]).strip()
        units.append(Unit(text, [*waiting, part], personal))
        waiting = []
    if waiting:  # nothing but context: the question as a whole
        units.append(Unit(" ".join(_PLACEHOLDER.sub(" ", grounding.question).split()), list(waiting)))
    if any(not u.personal for u in units):
        units = [u for u in units if not u.personal]
    if len(units) == 1 or len(parts) == 1:  # one thing asked: the whole question's own search counts
        for u in units:
            u.queries.append(grounding.question)
    if grounding.follow_up and len(units) == 1:
        units[0].queries.append(grounding.follow_up)
    return units


def _rank_sentences(unit: Unit, sentences: Sequence[str], sims: np.ndarray, margin: float) -> list[int]:
    """The passage's sentences for this unit, best first: the best, and the others within
    `margin` of it (cosine + lexical share, as for passages)."""
    words = words_of(unit.text)
    scored = []
    for j, sentence in enumerate(sentences):
        own = words_of(sentence)
        if not own and not numbers(sentence):  # "No." on its own says nothing
            continue
        lexical = len(words & own) / len(words) if words else 0.0
        scored.append((float(sims[j]) + LEXICAL_WEIGHT * lexical, j))
    scored.sort(key=lambda s: (-s[0], s[1]))
    if not scored:
        return []
    top = scored[0][0]
    return [scored[0][1]] + [j for score, j in scored[1:] if score >= top - margin]


def _tidy(sentence: str, keep_particle: bool) -> str:
    """A leading "Yes,"/"No," answers the FAQ's own question; it stays only when the customer's
    part is a yes/no question asking that same thing."""
    sentence = sentence.strip()
    if not keep_particle:
        stripped = _PARTICLE.sub("", sentence)
        if stripped != sentence and stripped:
            sentence = stripped[0].upper() + stripped[1:]
    return sentence


def _cite(sentence: str, label: int) -> str:
    """`Express costs 9.95 EUR [1].`: the citation before the final punctuation."""
    m = _END.search(sentence)
    if m is None:
        return f"{sentence} [{label}]"
    return f"{sentence[: m.start()]} [{label}]{sentence[m.start():]}"


def from_settings(settings: Settings) -> ExtractiveComposer:
    g = settings.generation
    return ExtractiveComposer(embedder=settings.models.embedder, per_part=g.compose_sentences,
                              max_words=g.compose_max_words, min_relevance=g.compose_min_relevance)
