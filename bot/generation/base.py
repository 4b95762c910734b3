"""The generator seam: one protocol every backend implements, and the data that crosses it.

A backend turns chat messages into a stream of text deltas; it knows nothing of guards or the
dialogue. A model backend reads the FAQ passages as text in the prompt; the extractive composer
(extractive.py) reads them as data (`Grounding`, attached to the prompt's last message).
`GenerationService` (service.py) retrieves, builds the prompt, runs the guards and decides what the
customer sees, whichever backend wrote the text.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable


@dataclass(frozen=True)
class Passage:
    """One FAQ entry as the prompt quotes it: `id` is the entry id the answer cites."""

    id: str
    title: str
    text: str
    score: float = 0.0


@dataclass(frozen=True)
class Grounding:
    """The retrieval behind a prompt, as data, for a backend that answers from the passages
    themselves instead of reading the prompt's text (the extractive composer). A model sees the
    same passages, trimmed, as numbered lines of the prompt; neither sees personal data."""

    question: str  # the customer's question, personal data masked
    parts: tuple[str, ...]  # its sub-questions (prompt.question_parts)
    passages: tuple[Passage, ...]  # the prompt's passages in full, in its order: "[1]" is passages[0]
    # every query the service searched -> {entry id: retrieval score} of the entries it found
    scores: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    follow_up: str | None = None  # the query joining a short question to the previous one, if any


@dataclass(frozen=True)
class ChatMessage:
    role: Literal["system", "user", "assistant"]
    content: str
    # Only on the prompt's last user message; backends that send text to a model ignore it.
    grounding: Grounding | None = field(default=None, compare=False, repr=False)


@dataclass
class Answer:
    text: str
    sources: list[Passage] = field(default_factory=list)
    cited: list[str] = field(default_factory=list)
    tokens: int = 0
    ttft_s: float | None = None
    total_s: float = 0.0
    finish: Literal["stop", "length", "cut"] = "stop"


class GenerationError(RuntimeError):
    """The backend failed (HTTP error, model error, malformed stream)."""


class GeneratorUnavailable(GenerationError):
    """No model to answer with: not configured, still loading, or failed to load."""


class GeneratorBusy(GenerationError):
    """The bounded queue is full; the caller degrades at once instead of waiting."""


GeneratorState = Literal["loading", "ready", "failed"]


@runtime_checkable
class Generator(Protocol):
    name: str

    @property
    def state(self) -> GeneratorState: ...

    def stream(self, messages: list[ChatMessage], max_tokens: int,
               temperature: float = 0.0) -> AsyncGenerator[str, None]:
        """Text deltas as the model writes them. Closing the iterator early (aclose) stops the
        model, so a caller that has seen enough, or ran out of time, frees the worker."""
        ...

    async def answer(self, messages: list[ChatMessage], max_tokens: int,
                     temperature: float = 0.0) -> Answer: ...

    async def aclose(self) -> None: ...


async def collect(stream: AsyncIterator[str]) -> Answer:
    """The whole answer of a stream, with time to first token: `Generator.answer` for any backend."""
    started = time.perf_counter()
    parts: list[str] = []
    ttft = None
    async for delta in stream:
        if ttft is None:
            ttft = time.perf_counter() - started
        parts.append(delta)
    return Answer(text="".join(parts).strip(), tokens=len(parts), ttft_s=ttft,
                  total_s=time.perf_counter() - started)
