"""Messages the bot did not understand, kept in Redis until a person labels them.

A Redis stream rather than a list: entries have stable ids, so `export-review` deletes exactly what
it wrote to the labeling file even while new entries arrive, and `MAXLEN ~` bounds memory without a
read-modify-write. Text is scrubbed of personal data before it is stored (bot.pii's Scrubber: e-mail,
phones, card, IBAN, SSN and resident ID numbers, order numbers, names). Each entry names its
conversation, so a customer's right to erasure reaches it (`erase`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis.asyncio as aioredis

from bot.pii import Scrubber
from bot.sessions.errors import raises_unavailable
from bot.types import Turn

REASONS = ("low_confidence", "out_of_scope", "handoff")


@dataclass
class ReviewItem:
    id: str
    text: str
    reason: str
    predicted: str
    confidence: float
    channel: str
    at: float
    conversation_id: str = ""


@raises_unavailable
class ReviewLog:
    def __init__(self, client: aioredis.Redis, prefix: str, low_confidence: float,
                 max_len: int = 50_000, order_pattern: str | None = None) -> None:
        self.client = client
        self.key = f"{prefix}:review"
        self.low_confidence = low_confidence
        self.max_len = max_len
        self.order_pattern = order_pattern

    def reason(self, turn: Turn) -> str | None:
        """Why this turn needs a person's label, or None when the bot understood it."""
        parse = turn.parse
        if parse is None or not turn.text or turn.text.startswith("/"):  # no model call, or a button
            return None
        if turn.action.kind == "handoff" and not turn.action.name.startswith("pending"):
            return "handoff"
        if parse.out_of_scope:
            return "out_of_scope"
        if parse.confidence < self.low_confidence:
            return "low_confidence"
        return None

    async def add(self, turn: Turn) -> str | None:
        reason = self.reason(turn)
        if reason is None or turn.parse is None:
            return None
        scrubber = Scrubber(self.order_pattern) if self.order_pattern else Scrubber()
        fields = {"text": scrubber.scrub(turn.text), "reason": reason, "predicted": turn.parse.intent,
                  "confidence": f"{turn.parse.confidence:.4f}", "channel": turn.channel,
                  "conversation_id": turn.conversation_id, "at": f"{time.time():.3f}"}
        entry = await self.client.xadd(self.key, fields, maxlen=self.max_len, approximate=True)
        return entry.decode() if isinstance(entry, bytes) else entry

    async def items(self, reason: str | None = None, limit: int | None = None) -> list[ReviewItem]:
        raw = await self.client.xrange(self.key, "-", "+")
        out = []
        for entry_id, f in raw:
            d = {_s(k): _s(v) for k, v in f.items()}
            if reason and d.get("reason") != reason:
                continue
            out.append(ReviewItem(_s(entry_id), d.get("text", ""), d.get("reason", ""),
                                  d.get("predicted", ""), float(d.get("confidence", 0) or 0),
                                  d.get("channel", ""), float(d.get("at", 0) or 0),
                                  d.get("conversation_id", "")))
            if limit and len(out) >= limit:
                break
        return out

    async def remove(self, ids: list[str]) -> int:
        removed = 0
        for i in range(0, len(ids), 500):
            removed += await self.client.xdel(self.key, *ids[i : i + 500])
        return removed

    async def erase(self, conversation_id: str, page: int = 1000) -> int:
        """Delete every entry of one conversation (the right to erasure); returns how many. Pages
        through the stream rather than reading all of it at once (up to `max_len` entries)."""
        start, ids = "-", []
        while True:  # "(id": exclusive start (Redis >= 6.2)
            batch = await self.client.xrange(self.key, start, "+", count=page)
            ids += [_s(entry_id) for entry_id, f in batch
                    if {_s(k): _s(v) for k, v in f.items()}.get("conversation_id") == conversation_id]
            if len(batch) < page:
                break
            start = "(" + _s(batch[-1][0])
        return await self.remove(ids)

    async def purge(self, before: float) -> int:
        """Retention: drop the entries added before the Unix time `before` (stream ids are their
        milliseconds, so one XTRIM MINID does it); returns how many."""
        return int(await self.client.xtrim(self.key, minid=f"{int(before * 1000)}-0", approximate=False))

    async def size(self) -> int:
        return int(await self.client.xlen(self.key))


def _s(v: bytes | str) -> str:
    return v.decode() if isinstance(v, bytes) else v
