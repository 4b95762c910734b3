"""One generative answer: guards -> retrieval -> prompt -> generator -> grounding -> result.

The order matters:

1. Personal data is masked in the question and the history; nothing unmasked reaches the model
   or a log.
2. An injection attempt is refused before any model sees it.
3. Passages: each part of a compound question is searched on its own, so a question that needs
   two FAQ entries gets both; the best score decides whether the question is on topic at all.
4. The model's text is checked sentence by sentence as it streams. A sentence reaches the
   customer (`on_delta`) only once the passages support it; the first unsupported one stops the
   model and the whole answer becomes the safe "not sure" reply, so an unsupported claim is
   never shown, not even for a moment.
5. A missing, slow (past `first_token_timeout_s` / `timeout_s`), busy or failing generator
   degrades: the caller answers from the best FAQ hit or offers a person. Every outcome is
   counted by reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from bot.generation.base import (
    Answer,
    GenerationError,
    Generator,
    GeneratorBusy,
    GeneratorUnavailable,
    Grounding,
    Passage,
)
from bot.generation.guard import (
    GroundingChecker,
    PiiMasker,
    SentenceCheck,
    leaks_prompt,
    off_topic,
    split_sentences,
    strip_citations,
)
from bot.generation.prompt import Prompt, build_prompt
from bot.generation.streaming import SentenceStream
from bot.injection import detect_injection
from bot.questions import question_parts

log = logging.getLogger(__name__)

Status = Literal["answered", "unsure", "refused", "degraded"]
OnDelta = Callable[[str], Awaitable[None]]

_PREAMBLE = re.compile(r"^\s*(?:here is |here's )?(?:the |my )?answer(?: to (?:the|your) question)?"
                       r"(?: is)?\s*:\s*", re.IGNORECASE)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")


@dataclass
class GenerationResult:
    status: Status
    reason: str
    answer: Answer | None = None
    passages: list[Passage] = field(default_factory=list)
    checks: list[SentenceCheck] = field(default_factory=list)
    prompt: Prompt | None = None
    raw_text: str = ""
    streamed: str = ""
    best_score: float | None = None
    pii: list[str] = field(default_factory=list)
    ttft_s: float | None = None
    total_s: float = 0.0


@dataclass
class _Turn:
    """One answer in progress: what its sentences are checked against, and what the customer saw."""

    result: GenerationResult
    grounding: list[Passage]  # the passages in full
    instructions: str  # the prompt's own text (leak check)
    corpus: str  # the passages' text (leak check)
    on_delta: OnDelta | None
    shown: list[str] = field(default_factory=list)
    cited: list[str] = field(default_factory=list)


class GenerationService:
    def __init__(self, generator: Generator | None, knowledge: Any, checker: GroundingChecker,
                 masker: PiiMasker, settings: Any, company: str, tone: str = "",
                 assistant: str = "the assistant", metrics: Any = None,
                 run: Callable[..., Awaitable[Any]] | None = None) -> None:
        self.generator = generator
        self.knowledge = knowledge
        self.checker = checker
        self.masker = masker
        self.s = settings
        self.company = company
        self.tone = tone
        self.assistant = assistant
        self.metrics = metrics
        self._run = run or _to_thread
        use_encoder = getattr(generator, "use_encoder", None)
        if callable(use_encoder):  # the composer ranks sentences with the grounding check's embedder
            use_encoder(checker.encode, self._run)

    @property
    def state(self) -> str:
        return "none" if self.generator is None else self.generator.state

    # --- the turn ----------------------------------------------------------------------------
    async def answer(self, question: str, history: Sequence[tuple[str, str]] = (),
                     on_delta: OnDelta | None = None, conversation_id: str | None = None) -> GenerationResult:
        started = time.perf_counter()
        result = await self._answer(question, history, on_delta)
        result.total_s = round(time.perf_counter() - started, 4)
        self._count(result)
        log.info("generative answer", extra={"conversation_id": conversation_id,
                                              "action": f"{result.status}:{result.reason}"})
        return result

    async def _answer(self, question: str, history: Sequence[tuple[str, str]],
                      on_delta: OnDelta | None) -> GenerationResult:
        masked, pii = self.masker.mask(question)
        turns = [(role, self.masker.mask(text)[0]) for role, text in history][-self.s.history_turns:]
        if self.s.history_turns == 0:
            turns = []
        for kind in pii:
            self._guard(f"pii_{kind}")
        if detect_injection(masked) is not None:
            self._guard("injection")
            return GenerationResult("refused", "injection", pii=pii)
        if _CJK.search(masked):  # the local model and the grounding embedder are English-only
            return GenerationResult("degraded", "language", pii=pii)
        passages, grounding, best, retrieval = await self._retrieve(masked, turns)
        if off_topic(best, self.s.topic_threshold):
            self._guard("off_topic")
            return GenerationResult("refused", "off_topic", passages=passages, best_score=best, pii=pii)
        if self.generator is None:
            return GenerationResult("degraded", "unavailable", passages=passages, best_score=best, pii=pii)
        prompt = build_prompt(masked, passages, turns, self.company, self.tone, self.assistant,
                              retrieval)
        result = GenerationResult("answered", "ok", passages=passages, prompt=prompt, best_score=best,
                                  pii=pii)
        try:
            await self._generate(prompt, grounding, result, on_delta)
        except GeneratorUnavailable:
            result.status, result.reason = "degraded", "unavailable"
        except GeneratorBusy:
            result.status, result.reason = "degraded", "busy"
        except TimeoutError:
            result.status, result.reason = "degraded", "timeout"
        except GenerationError as exc:
            result.status, result.reason = "degraded", "error"
            log.warning("generator failed: %s", exc)
        except Exception:  # a bug in a backend degrades the turn; it never reaches the customer
            result.status, result.reason = "degraded", "error"
            log.exception("generator crashed")
        if result.status != "answered":
            result.answer = None
        return result

    # --- retrieval ---------------------------------------------------------------------------
    async def _retrieve(self, question: str, history: Sequence[tuple[str, str]]
                        ) -> tuple[list[Passage], list[Passage], float | None, Grounding | None]:
        """(prompt passages, trimmed to their most relevant sentences; the same entries in full
        for the grounding check; the best retrieval score; all of it as data for a backend that
        reads passages rather than the prompt)."""
        parts = question_parts(question)
        queries = [question, *parts] if len(parts) > 1 else [question]
        previous = next((text for role, text in reversed(history) if role == "user"), None)
        follow_up = None
        if previous and len(question.split()) <= 5:  # "and to Norway?" leans on the last question
            follow_up = f"{previous} {question}"
            queries.append(follow_up)
        k = self.s.passages
        results = await self._run(_search_all, self.knowledge, queries, k)
        best: dict[str, Any] = {}
        firsts: list[str] = []
        for q, hits in zip(queries, results, strict=True):
            for rank, hit in enumerate(hits):
                if hit.entry_id not in best or best[hit.entry_id].score < hit.score:
                    best[hit.entry_id] = hit
                if rank == 0 and q in parts and hit.entry_id not in firsts:
                    firsts.append(hit.entry_id)
        if not best:
            return [], [], None, None
        ranked = firsts + sorted((e for e in best if e not in firsts), key=lambda e: -best[e].score)
        chosen = [best[e] for e in ranked[: max(k, min(len(firsts), k + 2))]]
        top = max(h.score for h in best.values())
        full = [Passage(h.entry_id, h.question, h.answer, h.score) for h in chosen]
        trimmed = await self._run(self._trim, full, parts)
        scores = {q: {h.entry_id: h.score for h in hits} for q, hits in zip(queries, results, strict=True)}
        return trimmed, full, top, Grounding(question, tuple(parts), tuple(full), scores, follow_up)

    def _trim(self, passages: list[Passage], parts: list[str]) -> list[Passage]:
        """Keep each passage's `passage_sentences` sentences nearest to any part of the question."""
        keep = self.s.passage_sentences
        if all(len(split_sentences(p.text)) <= keep for p in passages):
            return passages
        queries = self.checker.encode(parts)
        out = []
        for p in passages:
            sentences = split_sentences(p.text)
            if len(sentences) <= keep:
                out.append(p)
                continue
            sims = (self.checker.encode(sentences) @ queries.T).max(axis=1)
            idx = sorted(np.argsort(-sims)[:keep].tolist())
            out.append(Passage(p.id, p.title, " ".join(sentences[i] for i in idx), p.score))
        return out

    # --- generation with sentence-level grounding --------------------------------------------
    async def _generate(self, prompt: Prompt, grounding: list[Passage], result: GenerationResult,
                        on_delta: OnDelta | None) -> None:
        assert self.generator is not None
        started = time.perf_counter()
        turn = _Turn(result, grounding, prompt.instructions, " ".join(p.text for p in grounding), on_delta)
        sentences = SentenceStream()
        if not await self._stream(prompt, turn, sentences, started):
            return
        if not sentences.cut and sentences.buffer.strip():
            tail = sentences.buffer.strip()
            if not re.search(r"[.!?)\"']$", tail) and sentences.deltas >= 0.8 * self.s.max_tokens:
                sentences.finish = "length"  # cut off mid-sentence by max_tokens: drop the fragment
            elif not await self._accept(turn, [tail]):
                return
        if not any(c.reason == "ok" for c in result.checks):  # pleasantries only: no answer
            result.status, result.reason = "unsure", "empty"
            return
        text = " ".join(turn.shown)
        text, leaked = self.masker.mask(text)  # nothing personal leaves, even by accident
        if leaked:
            self._guard("pii_output")
        sources = _sources(result.checks, grounding)
        resolved = [p.id for p in (prompt.map.resolve(turn.cited) if turn.cited else [])]
        result.answer = Answer(text=text, sources=sources, cited=resolved, tokens=sentences.deltas,
                               ttft_s=result.ttft_s, total_s=round(time.perf_counter() - started, 4),
                               finish=sentences.finish)

    async def _stream(self, prompt: Prompt, turn: _Turn, sentences: SentenceStream, started: float) -> bool:
        """Run the model within its time budgets and pass each complete sentence through
        `_accept`; False once one was refused (the model is stopped there)."""
        assert self.generator is not None
        result = turn.result
        stream = self.generator.stream(prompt.messages, self.s.max_tokens, self.s.temperature)
        async with contextlib.aclosing(stream) as tokens:
            async with asyncio.timeout(self.s.timeout_s):
                while True:
                    try:
                        if result.ttft_s is None:
                            delta = await asyncio.wait_for(anext(tokens), self.s.first_token_timeout_s)
                            result.ttft_s = round(time.perf_counter() - started, 4)
                        else:
                            delta = await anext(tokens)
                    except StopAsyncIteration:
                        break
                    result.raw_text += delta
                    if not await self._accept(turn, sentences.feed(delta)):
                        return False
                    if sentences.cut:
                        break
        return True

    async def _accept(self, turn: _Turn, sentences: list[str]) -> bool:
        """Check, then show, complete sentences; False once one is unsupported."""
        result, shown = turn.result, turn.shown
        sentences = [s for s in sentences if s.strip()]
        if not sentences:
            return True
        cleaned: list[str] = []
        for s in sentences:
            if not shown and not cleaned:
                s = _PREAMBLE.sub("", s)
            text, labels = strip_citations(s)
            turn.cited.extend(label for label in labels if label not in turn.cited)
            if text:
                cleaned.append(text)
        if not cleaned:
            return True
        for text in cleaned:
            if leaks_prompt(text, turn.instructions, turn.corpus):
                self._guard("prompt_leak")
                result.status, result.reason = "unsure", "prompt_leak"
                return False
        checks = await self._run(self.checker.check, cleaned, turn.grounding)
        for check in checks:
            result.checks.append(check)
            if not check.supported:
                self._guard("ungrounded")
                result.status, result.reason = "unsure", "ungrounded"
                return False
            delta = (" " if shown else "") + check.text
            shown.append(check.text)
            if turn.on_delta is not None:
                with contextlib.suppress(Exception):  # a closed socket must not fail the turn
                    await turn.on_delta(delta)
            result.streamed += delta
        return True

    # --- metrics -----------------------------------------------------------------------------
    def _guard(self, name: str) -> None:
        if self.metrics is not None:
            self.metrics.generation_guards.labels(name).inc()

    def _count(self, result: GenerationResult) -> None:
        if self.metrics is None:
            return
        self.metrics.generation.labels(result.status, result.reason).inc()
        if result.status == "degraded":
            self.metrics.generation_degraded.labels(result.reason).inc()
            self.metrics.degraded.labels("generator").inc()
        if result.ttft_s is not None:
            self.metrics.generation_seconds.labels("first_token").observe(result.ttft_s)
            self.metrics.generation_seconds.labels("total").observe(result.total_s)


def _sources(checks: list[SentenceCheck], passages: list[Passage]) -> list[Passage]:
    """The passages that support the shown sentences, in the order they were used."""
    by_id = {p.id: p for p in passages}
    out: list[Passage] = []
    for check in checks:
        p = by_id.get(check.passage_id or "")
        if p is not None and p not in out:
            out.append(p)
    return out


def _search_all(knowledge: Any, queries: list[str], k: int) -> list[list[Any]]:
    return [knowledge.search(q, k) for q in queries]


async def _to_thread(fn: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.to_thread(fn, *args)
