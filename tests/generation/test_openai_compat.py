"""The OpenAI-compatible backend against a real chat-completions server on 127.0.0.1 (aiohttp,
streaming SSE): what it sends, what it streams, how it retries and fails."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from bot.config import GenerationSettings, Settings
from bot.generation import create_generator, resolve_backend
from bot.generation.base import ChatMessage, GenerationError
from bot.generation.openai_compat import OpenAICompatGenerator
from tests.generation.chat_server import ChatServer
from tests.generation.conftest import make_service

MESSAGES = [ChatMessage("system", "Be brief."), ChatMessage("user", "Passages:\n[1] Returns are free.\n\n"
                                                                    "Question: Do returns cost anything?")]


@pytest.fixture
def server() -> Iterator[ChatServer]:
    with ChatServer(reply=lambda m: "Returns are free [1]. Download the label.", api_key="sk-test") as s:
        yield s


def backend(server: ChatServer, **kw: object) -> OpenAICompatGenerator:
    return OpenAICompatGenerator(server.base_url, model="smol-test", api_key="sk-test", **kw)  # type: ignore[arg-type]


async def test_streams_the_answer_chunk_by_chunk(server: ChatServer) -> None:
    gen = backend(server)
    deltas = [d async for d in gen.stream(MESSAGES, max_tokens=40)]
    await gen.aclose()
    assert deltas == ["Returns ", "are ", "free ", "[1]. ", "Download ", "the ", "label."]
    (request,) = server.requests
    assert request["headers"]["Authorization"] == "Bearer sk-test"
    body = request["body"]
    assert body["stream"] is True and body["model"] == "smol-test" and body["max_tokens"] == 40
    assert body["messages"] == [{"role": "system", "content": "Be brief."},
                                {"role": "user", "content": MESSAGES[1].content}]


async def test_answer_collects_the_stream_with_time_to_first_token(server: ChatServer) -> None:
    server.delay_s = 0.02
    gen = backend(server)
    answer = await gen.answer(MESSAGES, max_tokens=40)
    await gen.aclose()
    assert answer.text == "Returns are free [1]. Download the label."
    assert 0 < answer.ttft_s < answer.total_s


async def test_overloaded_servers_are_retried_before_the_first_byte() -> None:
    with ChatServer(fail_first=1, fail_status=503) as s:
        gen = OpenAICompatGenerator(s.base_url, connect_retries=1)
        answer = await gen.answer(MESSAGES, 40)
        await gen.aclose()
    assert answer.text.startswith("Returns are free") and len(s.requests) == 2


@pytest.mark.parametrize("status", [400, 401, 404])
async def test_client_errors_fail_at_once(status: int) -> None:
    with ChatServer(fail_first=5, fail_status=status) as s:
        gen = OpenAICompatGenerator(s.base_url, connect_retries=3)
        with pytest.raises(GenerationError, match=f"HTTP {status}"):
            await gen.answer(MESSAGES, 40)
        await gen.aclose()
    assert len(s.requests) == 1


async def test_a_wrong_key_is_an_error(server: ChatServer) -> None:
    gen = OpenAICompatGenerator(server.base_url, api_key="wrong", connect_retries=0)
    with pytest.raises(GenerationError, match="HTTP 401"):
        await gen.answer(MESSAGES, 40)
    await gen.aclose()


async def test_a_malformed_chunk_is_an_error() -> None:
    with ChatServer(malformed=True) as s:
        gen = OpenAICompatGenerator(s.base_url)
        with pytest.raises(GenerationError, match="malformed"):
            await gen.answer(MESSAGES, 40)
        await gen.aclose()


async def test_a_stalled_stream_times_out() -> None:
    with ChatServer(stall_s=3.0) as s:
        gen = OpenAICompatGenerator(s.base_url, timeout_s=0.5)
        started = time.perf_counter()
        with pytest.raises(TimeoutError):
            await gen.answer(MESSAGES, 40)
        assert time.perf_counter() - started < 2.5
        await gen.aclose()


async def test_nobody_listening_is_an_error() -> None:
    gen = OpenAICompatGenerator("http://127.0.0.1:9/v1", connect_retries=0, timeout_s=2)
    with pytest.raises(GenerationError):
        await gen.answer(MESSAGES, 40)
    await gen.aclose()


async def test_closing_the_stream_early_closes_the_response() -> None:
    with ChatServer(delay_s=0.05) as s:
        gen = OpenAICompatGenerator(s.base_url)
        stream = gen.stream(MESSAGES, 40)
        assert await anext(stream) == "Returns "
        await stream.aclose()
        await asyncio.sleep(0.1)
        await gen.aclose()


def test_chosen_by_settings_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUPPORTBOT_GENERATION__BACKEND", "openai")
    monkeypatch.setenv("SUPPORTBOT_GENERATION__BASE_URL", "http://127.0.0.1:8001/v1")
    monkeypatch.setenv("SUPPORTBOT_GENERATION__MODEL", "qwen2.5-7b-instruct")
    monkeypatch.setenv("SUPPORTBOT_GENERATION__API_KEY", "sk-from-env")
    settings = Settings()
    assert resolve_backend(settings) == "openai"
    gen = create_generator(settings)
    assert isinstance(gen, OpenAICompatGenerator)
    assert gen.url == "http://127.0.0.1:8001/v1/chat/completions" and gen.model == "qwen2.5-7b-instruct"
    assert gen._api_key == "sk-from-env" and "sk-from-env" not in repr(settings)
    assert resolve_backend(Settings(generation=GenerationSettings(backend="none"))) == "none"
    assert create_generator(Settings(generation=GenerationSettings(backend="none"))) is None


async def test_the_whole_generative_path_over_http(knowledge) -> None:  # type: ignore[no-untyped-def]
    with ChatServer(delay_s=0.01) as s:  # answers from the passages in the prompt, citing them
        gen = OpenAICompatGenerator(s.base_url, model="any")
        service = make_service(knowledge, gen)
        deltas: list[str] = []

        async def on_delta(text: str) -> None:
            deltas.append(text)

        result = await service.answer("Is delivery free and how long does it take?", [], on_delta)
        await gen.aclose()
    assert result.status == "answered", result.checks
    assert "50 EUR" in result.answer.text and "2-4 working days" in result.answer.text
    assert "".join(deltas) == result.answer.text and len(deltas) == 2
    assert {p.id for p in result.answer.sources} == {"shipping-free-threshold", "shipping-standard-time"}
    assert "Question: Is delivery free and how long does it take?" in s.requests[0]["body"]["messages"][-1][
        "content"]
