"""RedisSessionStore against a real Redis: persistence, TTL, reply cache, lock fairness."""

from __future__ import annotations

import asyncio

import pytest

from bot.sessions.store import LockTimeout, RedisSessionStore
from bot.types import Reply, Session

pytestmark = pytest.mark.integration


async def test_session_round_trip_with_ttl(store: RedisSessionStore) -> None:
    s = Session(conversation_id="c1", slots={"order_number": "KK-123456"}, handoff=True)
    await store.save(s)
    loaded = await store.get("c1")
    assert loaded is not None and loaded.slots == s.slots and loaded.handoff
    ttl = await store.r.ttl(store._key("c1", "session"))
    assert 0 < ttl <= 600
    assert await store.get("nobody") is None


async def test_reply_cache_is_saved_with_the_session(store: RedisSessionStore) -> None:
    assert await store.seen("c2", "web:c2:m1") is None
    await store.save(Session(conversation_id="c2"), "web:c2:m1", [Reply(text="hello")])
    assert await store.seen("c2", "web:c2:m1") == [Reply(text="hello")]


async def test_load_reads_the_reply_cache_and_the_session_together(store: RedisSessionStore) -> None:
    assert await store.load("c4", "web:c4:m1") == (None, None)
    await store.save(Session(conversation_id="c4", slots={"city": "Leeds"}))
    reply, session = await store.load("c4", "web:c4:m1")
    assert reply is None and session is not None and session.slots == {"city": "Leeds"}
    await store.save(Session(conversation_id="c4", turns=1), "web:c4:m1", [Reply(text="hi")])
    reply, session = await store.load("c4", "web:c4:m1")
    assert reply == [Reply(text="hi")] and session is not None and session.turns == 1
    assert await store.load("c4", "web:c4:m2") == (None, session)


async def test_history_is_trimmed_to_the_limit(store: RedisSessionStore) -> None:
    from bot.types import Event

    store.history_limit = 3
    events = [Event(role="user", text=str(i)) for i in range(10)]
    await store.save(Session(conversation_id="c3", history=events))
    loaded = await store.get("c3")
    assert [e.text for e in loaded.history] == ["7", "8", "9"]


async def test_lock_serves_waiters_in_arrival_order(store: RedisSessionStore) -> None:
    order: list[int] = []
    inside = 0
    release_first = asyncio.Event()
    queue = store._key("busy", "lock")

    async def worker(i: int) -> None:
        nonlocal inside
        async with store.lock("busy"):
            inside += 1
            assert inside == 1, "two holders at once"
            if i == 0:
                await release_first.wait()
            await asyncio.sleep(0.002)
            order.append(i)
            inside -= 1

    tasks = []
    for i in range(12):
        tasks.append(asyncio.create_task(worker(i)))
        async with asyncio.timeout(5):  # ticket i is in the queue before ticket i+1 is asked for
            while await store.r.llen(queue) < i + 1:
                await asyncio.sleep(0.002)
    release_first.set()
    await asyncio.gather(*tasks)
    assert order == list(range(12))


async def test_a_dead_holder_is_reaped_after_its_lease(store: RedisSessionStore) -> None:
    queue = store._key("dead", "lock")
    await store.r.rpush(queue, "ghost-token")  # a replica that crashed holding the lock: no lease
    async with asyncio.timeout(3):
        async with store.lock("dead"):
            assert await store.r.lindex(queue, 0) != "ghost-token"


async def test_waiting_too_long_raises_and_leaves_the_queue(store: RedisSessionStore) -> None:
    store.wait_s = 0.2
    async with store.lock("slow"):
        with pytest.raises(LockTimeout):
            async with store.lock("slow"):
                pass
        assert await store.r.llen(store._key("slow", "lock")) == 1
    assert await store.r.llen(store._key("slow", "lock")) == 0


async def test_publish_reaches_subscribers(store: RedisSessionStore) -> None:
    received: list[dict] = []

    async def listen() -> None:
        async for event in store.subscribe():
            received.append(event)
            return

    task = asyncio.create_task(listen())
    for _ in range(50):
        await asyncio.sleep(0.02)
        await store.publish({"type": "turn", "n": 1})
        if received:
            break
    await asyncio.wait_for(task, 2)
    assert received[0]["n"] == 1
