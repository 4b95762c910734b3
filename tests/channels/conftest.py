"""What every channel's tests share: a webhook app that only runs `channel.parse` (no pipeline), the
webhook hub with stand-ins for the pipeline and the send-once claims, and a `sleeps` fixture that
records retry/rate-limit delays instead of waiting them out."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from bot.channels import base
from bot.channels.base import Channel, ChannelError, Handshake
from bot.observability import Metrics
from bot.types import Message, Reply
from bot.web.inbound import answer_response, read_inbound
from bot.web.webhooks import ChannelHub


def parse_app(channel: Channel, path: str) -> FastAPI:
    """The channel's parse behind a route, answering with the messages it produced (or its error)."""
    app = FastAPI()

    @app.api_route(path, methods=["GET", "POST"])
    async def hook(request: Request) -> Response:
        try:
            messages = await channel.parse(await read_inbound(request))
        except Handshake as hs:
            return answer_response(hs.answer)
        except ChannelError as exc:
            return JSONResponse({"error": exc.code}, status_code=exc.status)
        return JSONResponse([m.model_dump() for m in messages])

    return app


WebhookClient = Callable[..., Awaitable[httpx.AsyncClient]]


@pytest.fixture
async def webhook_client() -> AsyncIterator[WebhookClient]:
    """`await webhook_client(channel, path, base_url=...)` -> an httpx client for `parse_app`."""
    async with contextlib.AsyncExitStack() as stack:

        async def make(channel: Channel, path: str, base_url: str = "https://bot.example.com"
                       ) -> httpx.AsyncClient:
            transport = httpx.ASGITransport(app=parse_app(channel, path))
            return await stack.enter_async_context(httpx.AsyncClient(transport=transport, base_url=base_url))

        yield make


class SendOnce:
    """The session store's send-once claims, in memory."""

    def __init__(self) -> None:
        self.claimed: set[tuple[str, str]] = set()

    async def claim_send_once(self, conversation_id: str, message_key: str, ttl_s: int = 0) -> bool:
        if (conversation_id, message_key) in self.claimed:
            return False
        self.claimed.add((conversation_id, message_key))
        return True

    async def release_send_once(self, conversation_id: str, message_key: str) -> None:
        self.claimed.discard((conversation_id, message_key))


class Pipeline:
    """Answers every message with "hi" and remembers what it saw."""

    def __init__(self) -> None:
        self.seen: list[Message] = []

    async def handle(self, msg: Message) -> list[Reply]:
        self.seen.append(msg)
        return [Reply(text="hi")]


HubClient = Callable[..., Awaitable[tuple[httpx.AsyncClient, ChannelHub]]]


@pytest.fixture
async def hub_client() -> AsyncIterator[HubClient]:
    """`await hub_client(channel)` -> an httpx client for the real webhook hub with this channel, and
    the hub (`hub.services.pipeline.seen`: what reached the pipeline)."""
    async with contextlib.AsyncExitStack() as stack:

        async def make(channel: Channel, base_url: str = "https://bot.example.com"
                       ) -> tuple[httpx.AsyncClient, ChannelHub]:
            services = SimpleNamespace(metrics=Metrics(), pipeline=Pipeline(), store=SendOnce())
            hub = ChannelHub({channel.name: channel}, services)
            stack.push_async_callback(hub.aclose, 0.0)
            app = FastAPI()
            app.include_router(hub.router())
            client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url)
            return await stack.enter_async_context(client), hub

        yield make


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the delays that retries and rate limits ask for, without waiting."""
    recorded: list[float] = []
    real_sleep = asyncio.sleep

    async def fake_sleep(delay: float, *args: Any) -> None:
        recorded.append(delay)
        await real_sleep(0)

    monkeypatch.setattr(base.asyncio, "sleep", fake_sleep)
    return recorded
