"""Any OpenAI-compatible chat-completions server: vLLM, TGI, Ollama, llama.cpp server, hosted APIs.

POST {base_url}/chat/completions with `"stream": true` and read the server-sent events
(`data: {...}` lines, `data: [DONE]` at the end). Connection errors, 429 and 5xx answers are
retried (tenacity) only before the first byte of an answer; after that a failure is final, so a
customer never sees an answer twice. Switch to it with settings alone:

    SUPPORTBOT_GENERATION__BACKEND=openai
    SUPPORTBOT_GENERATION__BASE_URL=http://127.0.0.1:8000/v1
    SUPPORTBOT_GENERATION__MODEL=HuggingFaceTB/SmolLM2-1.7B-Instruct
    SUPPORTBOT_GENERATION__API_KEY=...            # when the server wants one
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator

import httpx
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

from bot.config import Settings
from bot.generation.base import Answer, ChatMessage, GenerationError, GeneratorState, collect

RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}


class _Retryable(GenerationError):
    pass


class OpenAICompatGenerator:
    name = "openai"

    def __init__(self, base_url: str, model: str | None = None, api_key: str | None = None,
                 timeout_s: float = 20.0, connect_retries: int = 1,
                 client: httpx.AsyncClient | None = None) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model or "default"
        self._api_key = api_key
        self.connect_retries = connect_retries
        self._own_client = client is None
        self._client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s, connect=min(5.0, timeout_s)))

    @property
    def state(self) -> GeneratorState:
        return "ready"

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "text/event-stream"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

    async def stream(self, messages: list[ChatMessage], max_tokens: int,
                     temperature: float = 0.0) -> AsyncGenerator[str, None]:
        body = {
            "model": self.model, "stream": True, "max_tokens": max_tokens, "temperature": temperature,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
        }
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.connect_retries + 1),
            wait=wait_exponential(multiplier=0.2, max=2.0),
            retry=retry_if_exception(lambda e: isinstance(e, _Retryable | httpx.TransportError)),
            reraise=True,
        )
        response: httpx.Response | None = None
        try:
            async for attempt in retrying:
                with attempt:
                    response = await self._open(body)
        except httpx.TimeoutException as exc:
            raise TimeoutError(f"{self.url}: no answer in time") from exc
        except httpx.TransportError as exc:
            raise GenerationError(f"{self.url}: {type(exc).__name__}: {exc}") from exc
        assert response is not None
        try:
            async for line in response.aiter_lines():
                delta = _parse_event(line)
                if delta is _DONE:
                    return
                if isinstance(delta, str) and delta:
                    yield delta
        except httpx.TimeoutException as exc:
            raise TimeoutError(f"{self.url}: the stream stalled") from exc
        except httpx.TransportError as exc:
            raise GenerationError(f"{self.url}: stream broke: {exc}") from exc
        finally:
            await response.aclose()

    async def _open(self, body: dict) -> httpx.Response:
        request = self._client.build_request("POST", self.url, json=body, headers=self._headers())
        response = await self._client.send(request, stream=True)
        if response.status_code >= 400:
            detail = (await response.aread())[:300].decode("utf-8", "replace")
            await response.aclose()
            error = _Retryable if response.status_code in RETRY_STATUS else GenerationError
            raise error(f"{self.url}: HTTP {response.status_code}: {detail}")
        return response

    async def answer(self, messages: list[ChatMessage], max_tokens: int,
                     temperature: float = 0.0) -> Answer:
        return await collect(self.stream(messages, max_tokens, temperature))

    async def aclose(self) -> None:
        if self._own_client:
            await self._client.aclose()


_DONE = object()


def _parse_event(line: str) -> object:
    """One SSE line -> a text delta, "" for lines without text, _DONE at the end of the stream."""
    line = line.strip()
    if not line.startswith("data:"):
        return ""  # blank separators, `event:`/`id:` fields and `: keep-alive` comments
    data = line[5:].strip()
    if data == "[DONE]":
        return _DONE
    try:
        chunk = json.loads(data)
    except json.JSONDecodeError as exc:
        raise GenerationError(f"malformed stream chunk: {data[:120]!r}") from exc
    if not isinstance(chunk, dict):
        raise GenerationError(f"malformed stream chunk: {data[:120]!r}")
    if "error" in chunk:
        raise GenerationError(f"server error in stream: {str(chunk['error'])[:200]}")
    choices = chunk.get("choices") or []
    if not choices:
        return ""
    choice = choices[0]
    delta = choice.get("delta") or {}
    text = delta.get("content") if isinstance(delta, dict) else None
    if text is None:  # some servers stream completions-style chunks
        text = choice.get("text")
    if choice.get("finish_reason") and not text:
        return ""
    return text if isinstance(text, str) else ""


def from_settings(settings: Settings) -> OpenAICompatGenerator:
    g = settings.generation
    return OpenAICompatGenerator(
        base_url=g.base_url, model=g.model,
        api_key=g.api_key.get_secret_value() if g.api_key else None,
        timeout_s=g.timeout_s, connect_retries=g.connect_retries,
    )
