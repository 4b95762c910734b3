"""The Channel seam: a platform's input side (verify, parse) and output side (send), nothing else.

A channel never touches the pipeline or a web framework: it reads an `InboundRequest` (plain data
the web layer builds from the HTTP request) and answers with messages, a `ChannelError` or a
`Handshake`; the web layer's webhook hub does the rest for every channel alike (routing, dedupe of
outbound sends, background handling, error shapes). Outbound calls retry under
`bot.outbound.RetryPolicy`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

from bot.payloads import MAX_JSON_DEPTH as MAX_JSON_DEPTH  # re-exported: the channels' helpers
from bot.payloads import keyed_conversation_id as keyed_conversation_id
from bot.payloads import load_json as load_json
from bot.payloads import platform_id as platform_id
from bot.types import Message, Reply


class Headers(Mapping[str, str]):
    """Request headers, looked up case-insensitively; of a repeated header the first one counts."""

    def __init__(self, items: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        pairs = items.items() if isinstance(items, Mapping) else items
        self._items: dict[str, str] = {}
        for name, value in pairs:
            self._items.setdefault(name.lower(), value)

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Headers({sorted(self._items)})"  # names only: values may be secrets


@dataclass(frozen=True)
class InboundRequest:
    """One HTTP request to a channel, free of any web framework. `path` and `url` are the ones the
    request was received on, `raw_query` the query string as sent (Twilio signs it), `query` its
    parameters (of a repeated one the last counts), `client` the caller's address."""

    method: str = "POST"
    path: str = "/"
    headers: Mapping[str, str] = field(default_factory=Headers)
    query: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    url: str = ""
    raw_query: str = ""
    client: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.headers, Headers):
            object.__setattr__(self, "headers", Headers(self.headers))
        object.__setattr__(self, "query", MappingProxyType(dict(self.query)))


@dataclass(frozen=True)
class Answer:
    """What the platform is answered instead of the usual acknowledgement: a JSON object, or text of
    `media_type` (Meta's echoed challenge, Twilio's empty TwiML)."""

    content: str | dict[str, Any]
    media_type: str = "application/json"


class ChannelError(Exception):
    """A request the channel refuses: becomes `{"error": code, "detail": ...}` with this status (and
    these headers, e.g. WWW-Authenticate)."""

    def __init__(self, status: int, code: str, detail: object,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(str(detail))
        self.status, self.code, self.detail = status, code, detail
        self.headers = dict(headers) if headers else None


class Handshake(Exception):  # noqa: N818 - it is a control-flow signal, not an error
    """The platform is verifying the webhook (Meta's hub.challenge, Slack's url_verification):
    answer with `answer` and handle no message."""

    def __init__(self, answer: Answer) -> None:
        super().__init__("handshake")
        self.answer = answer


@dataclass
class Conversation:
    """Where replies go: our conversation id plus the platform's own addressing (chat id, phone,
    channel and thread...)."""

    conversation_id: str
    address: dict[str, Any] = field(default_factory=dict)


class Channel(Protocol):
    """A platform. It may also have `ack() -> Answer`: what a delivery is answered with instead of
    the hub's JSON acknowledgement (Twilio wants TwiML)."""

    name: str

    async def parse(self, request: InboundRequest) -> list[Message]:
        """Verify the request exactly as the platform documents it, then normalise it. Raises
        ChannelError (401/403 for bad signatures, 400 for malformed bodies) or Handshake."""
        ...

    async def send(self, conversation: Conversation, replies: list[Reply]) -> None:
        """Deliver replies in the platform's own format (buttons natively where it has them)."""
        ...

    def conversation(self, message: Message) -> Conversation:
        """The addressing `send` needs, rebuilt from the inbound message's metadata."""
        ...


UNSUPPORTED = "unsupported"  # Message.metadata key: the media kind we do not understand yet


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
