"""The hand-off queue in Redis: waiting conversations by priority and age, atomic claims, agent
presence and typing. Shared by every app replica; changes are announced on pub/sub.

Redis Cluster: a conversation's hand-off state (`<prefix>:handoff:{<id>}`) and typing flag carry
the conversation's hash tag, so they sit in the slot of its session and lock. The shared indexes
(the waiting queue, agents online, each agent's conversations) are one key each, and no command or
script touches two slots: the conversation's hash is the truth (only a `waiting` one can be claimed,
`waiting()` lists only those), and the indexes are updated after it, each with a command that can be
repeated safely.

Callers depend on `HandoffQueue`, the protocol; `RedisHandoffQueue` is the one class that keeps it in
Redis (and raises `StoreUnavailable` where Redis did not answer)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Protocol

import redis.asyncio as aioredis

from bot.sessions.errors import raises_unavailable
from bot.sessions.store import conversation_tag

# One winner among concurrent claims: only a waiting conversation can be claimed. A claim that is
# sent again (the client retried after a lost connection) finds its own id and still wins.
_CLAIM = """
local status = redis.call('HGET', KEYS[1], 'status')
if status == 'assigned' and redis.call('HGET', KEYS[1], 'claim') == ARGV[3] then return 1 end
if status ~= 'waiting' then return 0 end
redis.call('HSET', KEYS[1], 'status', 'assigned', 'agent', ARGV[1], 'claimed_at', ARGV[2],
           'claim', ARGV[3])
return 1
"""


class HandoffQueue(Protocol):
    """Waiting conversations, claims, agent presence and typing, and the hand-off's live events:
    `announce` on `console_channel` (every console), `to_customer` on `conversation_channel(cid)`."""

    console_channel: str

    def conversation_channel(self, cid: str) -> str: ...
    async def enqueue(self, cid: str, reason: str, priority: int = 0, channel: str = "web") -> None: ...
    async def claim(self, cid: str, agent: str) -> bool: ...
    async def finish(self, cid: str, status: str) -> None: ...
    async def state(self, cid: str) -> dict[str, str]: ...
    async def waiting(self) -> list[dict]: ...
    async def assigned_to(self, agent: str) -> list[str]: ...
    async def heartbeat(self, agent: str) -> None: ...
    async def offline(self, agent: str) -> None: ...
    async def agents_online(self) -> list[str]: ...
    async def set_typing(self, cid: str, agent: str, seconds: int = 6) -> None: ...
    async def agent_typing(self, cid: str) -> bool: ...
    async def mark_seen(self, agent: str, cid: str, count: int) -> None: ...
    async def seen(self, agent: str, cids: list[str]) -> dict[str, int]: ...
    async def announce(self, event: dict) -> None: ...
    async def to_customer(self, cid: str, event: dict) -> None: ...


@raises_unavailable
class RedisHandoffQueue:
    def __init__(self, client: aioredis.Redis, prefix: str = "sb", presence_s: int = 45) -> None:
        self.redis = client
        self.prefix = prefix
        self.presence_s = presence_s
        self.queue_key = f"{prefix}:handoff:queue"
        self.agents_key = f"{prefix}:agents:online"
        self.console_channel = f"{prefix}:console"
        self._claim = client.register_script(_CLAIM)

    def _conv(self, cid: str) -> str:
        return f"{self.prefix}:handoff:{conversation_tag(cid)}"

    def conversation_channel(self, cid: str) -> str:
        return f"{self.prefix}:conv:{conversation_tag(cid)}"

    async def enqueue(self, cid: str, reason: str, priority: int = 0, channel: str = "web") -> None:
        now = time.time()
        # Queue entry first: until the hash says `waiting` it is neither listed nor claimable.
        await self.redis.zadd(self.queue_key, {cid: now - priority * 3600})
        await self.redis.hset(self._conv(cid), mapping={"status": "waiting", "reason": reason, "agent": "",
                                                    "priority": priority, "enqueued_at": now,
                                                    "channel": channel})
        await self.announce({"type": "queue_changed", "conversation_id": cid})

    async def claim(self, cid: str, agent: str) -> bool:
        won = await self._claim(keys=[self._conv(cid)], args=[agent, time.time(), uuid.uuid4().hex])
        if won:
            await self.redis.zrem(self.queue_key, cid)
            await self.redis.sadd(self._mine(agent), cid)
            await self.announce({"type": "queue_changed", "conversation_id": cid, "agent": agent})
        return bool(won)

    async def finish(self, cid: str, status: str) -> None:
        """Hand back to the bot or close: the conversation leaves the queue either way."""
        agent = await self.redis.hget(self._conv(cid), "agent")
        async with self.redis.pipeline(transaction=True) as pipe:  # one key: one slot
            pipe.hset(self._conv(cid), mapping={"status": status, "agent": ""})
            pipe.expire(self._conv(cid), 7 * 86400)
            await pipe.execute()
        await self.redis.zrem(self.queue_key, cid)
        if agent:
            await self.redis.srem(self._mine(agent), cid)
        await self.announce({"type": "queue_changed", "conversation_id": cid})

    async def state(self, cid: str) -> dict[str, str]:
        return await self.redis.hgetall(self._conv(cid))

    async def waiting(self) -> list[dict]:
        ids = await self.redis.zrange(self.queue_key, 0, 199)
        now = time.time()
        items = []
        for cid in ids:
            st = await self.state(cid)
            if st.get("status") == "waiting":
                items.append({"conversation_id": cid, "reason": st.get("reason"),
                              "priority": int(st.get("priority", 0)),
                              "channel": st.get("channel"),
                              "waiting_s": round(now - float(st.get("enqueued_at", now)))})
        return items

    def _mine(self, agent: str) -> str:
        return f"{self.prefix}:agent:{agent}:conversations"

    async def assigned_to(self, agent: str) -> list[str]:
        return sorted(await self.redis.smembers(self._mine(agent)))

    async def heartbeat(self, agent: str) -> None:
        await self.redis.zadd(self.agents_key, {agent: time.time()})

    async def offline(self, agent: str) -> None:
        await self.redis.zrem(self.agents_key, agent)

    async def agents_online(self) -> list[str]:
        return await self.redis.zrangebyscore(self.agents_key, time.time() - self.presence_s, "+inf")

    async def set_typing(self, cid: str, agent: str, seconds: int = 6) -> None:
        await self.redis.set(f"{self.prefix}:typing:{conversation_tag(cid)}", agent, ex=seconds)

    async def agent_typing(self, cid: str) -> bool:
        return bool(await self.redis.exists(f"{self.prefix}:typing:{conversation_tag(cid)}"))

    def _seen(self, agent: str) -> str:
        return f"{self.prefix}:agent:{agent}:seen"

    async def mark_seen(self, agent: str, cid: str, count: int) -> None:
        """How many of the customer's messages agent `agent` has seen in `cid`: the queue's unread
        counts are per agent and follow them to any browser."""
        async with self.redis.pipeline(transaction=True) as pipe:  # one key: one slot
            pipe.hset(self._seen(agent), cid, count)
            pipe.expire(self._seen(agent), 30 * 86400)
            await pipe.execute()

    async def seen(self, agent: str, cids: list[str]) -> dict[str, int]:
        if not cids:
            return {}
        values = await self.redis.hmget(self._seen(agent), cids)
        return {cid: int(v) for cid, v in zip(cids, values, strict=True) if v is not None}

    async def announce(self, event: dict) -> None:
        await self.redis.publish(self.console_channel, json.dumps(event))

    async def to_customer(self, cid: str, event: dict) -> None:
        await self.redis.publish(self.conversation_channel(cid), json.dumps(event))
