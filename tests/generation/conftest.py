"""A deterministic generator for tests about how the pipeline *handles* generation (streaming,
guards, degradation). The generators themselves are tested for real: test_openai_compat.py
against an OpenAI-compatible server on 127.0.0.1, test_local.py with SmolLM2."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable

import pytest

from bot.config import GenerationSettings
from bot.generation.base import Answer, ChatMessage, collect
from bot.generation.guard import GroundingChecker, PiiMasker
from bot.generation.service import GenerationService
from bot.observability import Metrics
from tests.generation.chat_server import extractive


class ScriptedGenerator:
    """Streams `text` (or `text(messages)`) word by word; records every prompt it was given."""

    name = "scripted"

    def __init__(self, text: str | Callable[[list[dict]], str] = extractive, delay_s: float = 0.0,
                 first_delay_s: float = 0.0, error: Exception | None = None, state: str = "ready") -> None:
        self.text = text
        self.delay_s = delay_s
        self.first_delay_s = first_delay_s
        self.error = error
        self._state = state
        self.calls: list[list[ChatMessage]] = []
        self.closed = 0

    @property
    def state(self) -> str:
        return self._state

    async def stream(self, messages: list[ChatMessage], max_tokens: int,
                     temperature: float = 0.0) -> AsyncIterator[str]:
        self.calls.append(messages)
        if self.error is not None:
            raise self.error
        await asyncio.sleep(self.first_delay_s)
        as_dicts = [{"role": m.role, "content": m.content} for m in messages]
        text = self.text(as_dicts) if callable(self.text) else self.text
        try:
            for word in re.findall(r"\S+\s*", text):
                yield word
                await asyncio.sleep(self.delay_s)
        finally:
            self.closed += 1

    async def answer(self, messages: list[ChatMessage], max_tokens: int, temperature: float = 0.0) -> Answer:
        return await collect(self.stream(messages, max_tokens, temperature))

    async def aclose(self) -> None:
        pass


def make_service(knowledge, generator, **settings: object) -> GenerationService:  # type: ignore[no-untyped-def]
    g = GenerationSettings(**settings)
    checker = GroundingChecker(knowledge.embedder.encode, g.grounding_threshold, g.lexical_threshold)
    masker = PiiMasker.from_texts(e.answer for e in knowledge.entries)
    return GenerationService(generator, knowledge, checker, masker, g, "Kettle & Kin",
                             "Be friendly and brief.", "Kiki", Metrics())


@pytest.fixture
def knowledge(demo_models: tuple):  # type: ignore[no-untyped-def]
    return demo_models[1]
