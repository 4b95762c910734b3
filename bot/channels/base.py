"""The Channel seam: a platform's input side (verify, parse) and output side (send), nothing else.

A channel never touches the pipeline or the web framework's routing: `bot.channels.webhook` does
that for every channel alike (dedupe of outbound sends, background handling, error shapes).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import math
import random
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
from starlette.requests import Request
from starlette.responses import Response

from bot.observability import redact_url
from bot.types import Message, Reply

log = logging.getLogger(__name__)


class ChannelError(Exception):
    """A request the channel refuses: becomes `{"error": code, "detail": ...}` with this status."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


class Handshake(Exception):  # noqa: N818 - it is a control-flow signal, not an error
    """The platform is verifying the webhook (Meta's hub.challenge, Slack's url_verification):
    answer with this response and handle no message."""

    def __init__(self, response: Response) -> None:
        super().__init__("handshake")
        self.response = response


@dataclass
class Conversation:
    """Where replies go: our conversation id plus the platform's own addressing (chat id, phone,
    channel and thread...)."""

    conversation_id: str
    address: dict[str, Any] = field(default_factory=dict)


class Channel(Protocol):
    name: str

    async def parse(self, request: Request) -> list[Message]:
        """Verify the request exactly as the platform documents it, then normalise it. Raises
        ChannelError (401/403 for bad signatures, 400 for malformed bodies) or Handshake."""
        ...

    async def send(self, conversation: Conversation, replies: list[Reply]) -> None:
        """Deliver replies in the platform's own format (buttons natively where it has them)."""
        ...

    def conversation(self, message: Message) -> Conversation:
        """The addressing `send` needs, rebuilt from the inbound message's metadata."""
        ...


def keyed_conversation_id(key: bytes, channel: str, platform_id: str) -> str:
    """`<channel>-<HMAC of the platform's id>`: stable per sender, yet no phone number or sender id
    appears in a key, a URL or a log, and nobody without the server's secret can compute it."""
    mac = hmac.new(key, f"{channel}\x00{platform_id}".encode("utf-8", "surrogatepass"), hashlib.sha256)
    return f"{channel}-{mac.hexdigest()[:40]}"


UNSUPPORTED = "unsupported"  # Message.metadata key: the media kind we do not understand yet
MAX_JSON_DEPTH = 32  # platform payloads nest about 6 deep


def load_json(body: bytes | str) -> Any:
    """json.loads for a body from the network: ValueError (never RecursionError or OverflowError
    later on) for anything but plain JSON: invalid UTF-8, NaN/Infinity/1e999, integers past
    Python's digit limit, nesting deeper than MAX_JSON_DEPTH."""

    def constant(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    try:
        data = json.loads(body, parse_constant=constant)
    except RecursionError as exc:
        raise ValueError("JSON nested too deeply") from exc
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("number out of range")
        if isinstance(value, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise ValueError("JSON nested too deeply")
            stack.extend((v, depth + 1) for v in (value.values() if isinstance(value, dict) else value))
    return data


def platform_id(value: Any, what: str, max_len: int = 256) -> str:
    """A platform's id (chat, user, message...) as text: a non-empty string or an integer, nothing
    else (no objects, lists, booleans or floats whose str() would be a different id)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"{what} is not an id")
    text = str(value).strip()
    if not text or len(text) > max_len:
        raise ValueError(f"{what} is empty or too long")
    return text


def buttons_as_text(reply: Reply) -> str:
    """Platforms without quick replies get a numbered list (customers answer with the title)."""
    if not reply.buttons:
        return reply.text
    lines = [reply.text, ""] + [f"{i}. {b.title}" for i, b in enumerate(reply.buttons, 1)]
    return "\n".join(lines)


def split_text(text: str, limit: int) -> list[str]:
    """Cut at paragraph, then line, then word boundaries so that each part fits the platform."""
    parts: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        cut = max(rest.rfind("\n\n", 0, limit), rest.rfind("\n", 0, limit), rest.rfind(" ", 0, limit))
        if cut <= limit // 3:
            cut = limit
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        parts.append(rest)
    return parts


class RateLimiter:
    """At most `per_second` calls per second for one channel's outbound API (a token bucket)."""

    def __init__(self, per_second: float) -> None:
        self.interval = 1.0 / per_second
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        async with self._lock:
            loop = asyncio.get_running_loop()
            now = loop.time()
            delay = self._next - now
            self._next = max(now, self._next) + self.interval
        if delay > 0:
            await asyncio.sleep(delay)


async def send_with_retry(client: httpx.AsyncClient, method: str, url: str, *,
                          limiter: RateLimiter | None = None, attempts: int = 4, base_delay: float = 0.5,
                          **kwargs: Any) -> httpx.Response:
    """Retry 429 (honouring Retry-After) and 5xx and connection errors with jittered backoff;
    any other 4xx is final and raised."""
    for attempt in range(attempts):
        if limiter is not None:
            await limiter.wait()
        last = attempt == attempts - 1
        delay = base_delay * 2**attempt * (0.5 + random.random())
        try:
            resp = await client.request(method, url, **kwargs)
        except httpx.TransportError:
            if last:
                raise
            await asyncio.sleep(delay)
            continue
        if resp.status_code == 429 or resp.status_code >= 500:
            if last:
                resp.raise_for_status()
            retry_after = resp.headers.get("retry-after", "")
            if retry_after.isdigit():
                delay = min(float(retry_after), 30.0)
            log.warning("%s %s answered %s; retrying", method, redact_url(url), resp.status_code)
            await asyncio.sleep(delay)
            continue
        resp.raise_for_status()
        return resp
    raise AssertionError("unreachable")
