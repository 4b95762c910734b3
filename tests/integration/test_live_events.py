"""Live events keep flowing after Redis restarts: the subscription comes back, the client is told
to reload what it missed."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from bot.sessions.live import RESYNC, follow
from tests.redis_servers import BIN, Servers

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(BIN is None, reason="needs redis-server (Debian package)")]


async def wait_for(events: list[dict], count: int, timeout_s: float = 15) -> None:
    for _ in range(int(timeout_s / 0.05)):
        if len(events) >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"got {events}, wanted {count} events")


@pytest.mark.parametrize("retries", [3, 0], ids=["redis-py resubscribes", "follow resubscribes"])
async def test_a_subscription_survives_a_redis_restart(tmp_path: Path, retries: int) -> None:
    servers = Servers(tmp_path)
    server = servers.start()
    client = Redis(port=server.port, socket_connect_timeout=1,
                   retry=Retry(ExponentialBackoff(cap=0.5, base=0.2), retries))
    publisher = Redis(port=server.port, retry=Retry(ExponentialBackoff(cap=0.5, base=0.2), 5))
    events: list[dict] = []

    async def collect(event: dict) -> None:
        events.append(event)

    task = asyncio.create_task(follow(client, ["live:c1"], collect, first_delay_s=0.05, max_delay_s=0.2))
    try:
        await asyncio.sleep(0.3)
        await publisher.publish("live:c1", json.dumps({"type": "agent_message", "text": "before"}))
        await wait_for(events, 1)
        server.kill()
        await asyncio.sleep(0.5)  # the subscriber notices, and retries while nothing listens
        await asyncio.to_thread(server.start)
        await wait_for(events, 2)  # subscribed again: the client is told to reload
        await publisher.publish("live:c1", json.dumps({"type": "agent_message", "text": "after"}))
        await wait_for(events, 3)
        assert events == [{"type": "agent_message", "text": "before"}, RESYNC,
                          {"type": "agent_message", "text": "after"}]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await client.aclose()
        await publisher.aclose()
        servers.stop()
