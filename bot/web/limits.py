"""ASGI middleware that refuses oversized bodies and non-JSON posts before any parsing happens.

Every POST/PUT/PATCH is covered, whatever the route: the REST API, the console's JSON calls, the
Rasa REST channel and every platform webhook. WebSocket frames are capped by the server itself
(`ws_max_size`, see `websocket_max_size`) and socket.io packets by python-engineio
(`max_http_buffer_size`), both from the same `Settings.max_body_bytes`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.web.errors import ApiError


def websocket_max_size(max_body_bytes: int) -> int:
    """The transport's hard cap on one WebSocket message. Frames between `max_body_bytes` and this get
    a polite `body_too_large` error frame from the route (the socket stays open); larger ones make the
    server close the socket with 1009 (message too big) before reading them into memory."""
    return 2 * max_body_bytes


async def reply(send: Send, status: int, body: dict[str, object],
                headers: dict[str, str] | None = None) -> None:
    """A JSON error answered straight from ASGI middleware (the app's handlers never see it)."""
    data = json.dumps(body).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": data})


async def _reply(send: Send, status: int, code: str, detail: str) -> None:
    await reply(send, status, {"error": code, "detail": detail})


@dataclass(frozen=True)
class BodyRule:
    """A route whose bodies are not the default's: their own size limit and media types (a
    customer's photo: megabytes of image/jpeg where everything else is a few KB of JSON)."""

    method: str
    path: re.Pattern[str]
    max_bytes: int
    content_types: frozenset[str]
    detail: str  # the 415's detail: what to send instead

    def matches(self, scope: Scope) -> bool:
        return scope["method"] == self.method and self.path.fullmatch(scope["path"]) is not None


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int, json_prefixes: tuple[str, ...] = ("/api/",),
                 rules: tuple[BodyRule, ...] = ()) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.json_prefixes = json_prefixes
        self.rules = rules

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in {"POST", "PUT", "PATCH"}:
            await self.app(scope, receive, send)
            return
        rule = next((r for r in self.rules if r.matches(scope)), None)
        max_bytes = rule.max_bytes if rule is not None else self.max_bytes
        too_large = f"request bodies are limited to {max_bytes} bytes"
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > max_bytes):
            await _reply(send, 413, "body_too_large", too_large)
            return
        ctype = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        has_body = (length is not None and int(length) > 0) or b"transfer-encoding" in headers
        if rule is not None:
            if has_body and ctype.decode("latin-1") not in rule.content_types:
                await _reply(send, 415, "unsupported_media_type", rule.detail)
                return
        elif scope["path"].startswith(self.json_prefixes) and has_body and ctype != b"application/json":
            await _reply(send, 415, "unsupported_media_type", "send the body as application/json")
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    raise BodyTooLarge(max_bytes)
            return message

        try:
            await self.app(scope, limited, send)
        except BodyTooLarge:
            await _reply(send, 413, "body_too_large", too_large)


class BodyTooLarge(ApiError, StarletteHTTPException):  # type: ignore[misc]  # ApiError's fields win
    """A chunked body that grew past the limit while streaming in. It is an HTTPException too, because
    FastAPI turns any other exception raised while it reads a body into a 400 "error parsing the body";
    the ApiError handler (first in the MRO) still answers it as `body_too_large`."""

    def __init__(self, max_bytes: int) -> None:
        ApiError.__init__(self, 413, "body_too_large", f"request bodies are limited to {max_bytes} bytes")
        self.status_code = 413


class HeaderLimit:
    """Refuse a request whose headers together exceed `max_bytes` (431), before any route reads
    them: a megabyte of cookies or a giant header is not a customer."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            size = sum(len(k) + len(v) for k, v in scope.get("headers") or [])
            if size > self.max_bytes:
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1009})
                    return
                await _reply(send, 431, "headers_too_large",
                             f"request headers are limited to {self.max_bytes} bytes in all")
                return
        await self.app(scope, receive, send)
