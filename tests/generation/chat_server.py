"""A small OpenAI-compatible chat-completions server for tests: real HTTP on 127.0.0.1, real SSE.

It runs aiohttp in a thread of its own (so sync browser tests and async tests can both use it),
records every request, and answers with `reply(messages)`, streamed word by word as
`data: {"choices": [{"delta": {"content": ...}}]}` chunks and `data: [DONE]`. Switches make it
fail the way servers do: HTTP errors for the first N calls, a malformed chunk, a stall.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web


def passages_and_question(messages: list[dict]) -> tuple[list[str], str]:
    """The numbered passages and the question of the last user message of a supportbot prompt."""
    text = messages[-1]["content"]
    passages = re.findall(r"^\[(\d+)\] (.+)$", text.split("\n\nQuestion:")[0], flags=re.M)
    question = text.rsplit("Question:", 1)[-1].strip()
    return [p for _, p in passages], question


def extractive(messages: list[dict]) -> str:
    """Answer like a well-behaved model: the first sentence of the first two passages, cited."""
    passages, _ = passages_and_question(messages)
    sentences = []
    for i, p in enumerate(passages[:2], 1):
        first = re.split(r"(?<=[.!?])\s+", p)[0].rstrip(".")
        sentences.append(f"{first} [{i}].")
    return " ".join(sentences)


@dataclass
class ChatServer:
    reply: Callable[[list[dict]], str] = extractive
    delay_s: float = 0.0
    fail_first: int = 0
    fail_status: int = 500
    malformed: bool = False
    stall_s: float = 0.0
    api_key: str | None = None
    requests: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> ChatServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def __enter__(self) -> ChatServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        try:
            return await self._answer(request)
        except ConnectionResetError:  # the client hung up mid-stream (timeouts, early close)
            return web.Response(status=499)

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append({"headers": dict(request.headers), "body": body})
        if self.api_key and request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return web.json_response({"error": {"message": "bad key"}}, status=401)
        if len(self.requests) <= self.fail_first:
            return web.json_response({"error": {"message": "overloaded"}}, status=self.fail_status)
        text = self.reply(body["messages"])
        if not body.get("stream"):
            return web.json_response({"choices": [{"message": {"role": "assistant", "content": text},
                                                   "finish_reason": "stop"}]})
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b": keep-alive\n\n")
        first = {"choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]}
        await response.write(f"data: {json.dumps(first)}\n\n".encode())
        words = re.findall(r"\S+\s*", text)
        for i, word in enumerate(words):
            if self.malformed and i == 1:
                await response.write(b"data: {not json\n\n")
                return response
            if self.stall_s and i == 1:
                await asyncio.sleep(self.stall_s)
            chunk = {"choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}]}
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
        last = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        await response.write(f"data: {json.dumps(last)}\n\ndata: [DONE]\n\n".encode())
        return response
