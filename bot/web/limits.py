"""ASGI middleware that refuses oversized bodies and non-JSON posts before any parsing happens."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.web.errors import ApiError


async def _reply(send: Send, status: int, code: str, detail: str) -> None:
    body = json.dumps({"error": code, "detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int, json_prefixes: tuple[str, ...] = ("/api/",)) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.json_prefixes = json_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in {"POST", "PUT", "PATCH"}:
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await _reply(send, 413, "body_too_large", f"request bodies are limited to {self.max_bytes} bytes")
            return
        ctype = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        has_body = (length is not None and int(length) > 0) or b"transfer-encoding" in headers
        if scope["path"].startswith(self.json_prefixes) and has_body and ctype != b"application/json":
            await _reply(send, 415, "unsupported_media_type", "send the body as application/json")
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        try:
            await self.app(scope, limited, send)
        except BodyTooLarge:
            await _reply(send, 413, "body_too_large", f"request bodies are limited to {self.max_bytes} bytes")


class BodyTooLarge(ApiError):
    """A chunked body that grew past the limit while streaming in."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, "body_too_large", f"request bodies are limited to {max_bytes} bytes")
