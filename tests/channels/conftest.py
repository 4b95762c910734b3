"""What every channel's tests share: a webhook app that only runs `channel.parse` (no pipeline), and
a `sleeps` fixture that records retry/rate-limit delays instead of waiting them out."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from bot.channels import base
from bot.channels.base import Channel, ChannelError, Handshake


def parse_app(channel: Channel, path: str) -> FastAPI:
    """The channel's parse behind a route, answering with the messages it produced (or its error)."""
    app = FastAPI()

    @app.api_route(path, methods=["GET", "POST"])
    async def hook(request: Request) -> Response:
        try:
            messages = await channel.parse(request)
        except Handshake as hs:
            return hs.response
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
