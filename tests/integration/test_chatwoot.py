"""The Chatwoot bridge against a real Redis and a real HTTP server speaking Chatwoot's API.

The pipeline, session store and hand-off service are small fakes: the bridge's job is the webhook, the
filtering, the at-most-once posting and the hand-off round trip, not the dialogue.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bot.handoff.chatwoot import ChatwootBridge, ChatwootConfig, conversation_id
from bot.handoff.service import HandoffError
from bot.sessions.store import RedisSessionStore
from bot.types import Button, Message, Reply, Session
from bot.web.webhooks import chatwoot_router

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[1] / "channels" / "chatwoot"
API_TOKEN = "bot-token-123"
CID = conversation_id("1", "10")  # keyed (the harness bridge has the empty key)
MESSAGES = "/api/v1/accounts/1/conversations/10/messages"
TOGGLE = "/api/v1/accounts/1/conversations/10/toggle_status"


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def incoming(text: str = "hi", message_id: int = 118, status: str = "pending") -> dict[str, Any]:
    event = fixture("message_created_pending")
    event["id"], event["content"], event["conversation"]["status"] = message_id, text, status
    return event


# -- a fake Chatwoot -----------------------------------------------------------------------------


class FakeChatwoot:
    """Chatwoot's agent-bot API over real HTTP; records every request, can fail the next ones."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.fail_next: list[int] = []
        self.lock = threading.Lock()
        routes = [
            Route("/api/v1/accounts/{account}/conversations/{conv}/messages", self.message, methods=["POST"]),
            Route("/api/v1/accounts/{account}/conversations/{conv}/toggle_status", self.toggle,
                  methods=["POST"]),
        ]
        self.app = Starlette(routes=routes)

    async def _record(self, request: Request) -> JSONResponse | None:
        body = await request.json()
        with self.lock:
            self.requests.append({"path": request.url.path, "token": request.headers.get("api_access_token"),
                                  "body": body})
            status = self.fail_next.pop(0) if self.fail_next else None
        if request.headers.get("api_access_token") != API_TOKEN:
            return JSONResponse({"errors": ["Invalid Access Token"]}, status_code=401)
        if status is not None:
            return JSONResponse({"error": "try later"}, status_code=status)
        return None

    async def message(self, request: Request) -> JSONResponse:
        if (failed := await self._record(request)) is not None:
            return failed
        body = self.requests[-1]["body"]
        return JSONResponse({"id": len(self.requests) + 1000, "content": body["content"], "message_type": 1,
                             "private": body["private"], "conversation_id": int(request.path_params["conv"])})

    async def toggle(self, request: Request) -> JSONResponse:
        if (failed := await self._record(request)) is not None:
            return failed
        return JSONResponse({"meta": {}, "payload": {"success": True, "current_status": "open",
                                                     "conversation_id": int(request.path_params["conv"])}})

    def posted(self, path: str = MESSAGES) -> list[dict[str, Any]]:
        return [r["body"] for r in self.requests if r["path"] == path]

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.fail_next.clear()


@pytest.fixture(scope="module")
def chatwoot_server() -> Iterator[tuple[FakeChatwoot, str]]:
    fake = FakeChatwoot()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(fake.app, lifespan="off", log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started, "fake Chatwoot did not start"
    yield fake, f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(5)
    sock.close()


@pytest.fixture
def chatwoot(chatwoot_server: tuple[FakeChatwoot, str]) -> FakeChatwoot:
    chatwoot_server[0].reset()
    return chatwoot_server[0]


# -- fakes for supportbot's side -----------------------------------------------------------------


class FakeStore:
    def __init__(self) -> None:
        self.sessions: dict[str, Session] = {}

    async def get(self, conversation_id: str) -> Session | None:
        return self.sessions.get(conversation_id)


class FakePipeline:
    """Canned replies by text; the same message id gets the same replies, like the real dedupe."""

    def __init__(self, store: FakeStore) -> None:
        self.store = store
        self.calls: list[Message] = []
        self.seen: dict[str, list[Reply]] = {}

    async def handle(self, msg: Message) -> list[Reply]:
        self.calls.append(msg)
        if msg.dedupe_key in self.seen:
            return self.seen[msg.dedupe_key]
        cid = msg.conversation_id
        session = self.store.sessions.setdefault(cid, Session(conversation_id=cid, channel="chatwoot"))
        if session.handoff:
            replies: list[Reply] = []  # the bot stays silent while humans have the conversation
        elif "human" in msg.text:
            session.handoff, session.handoff_reason = True, "customer_asked"
            replies = [Reply(text="I'm connecting you with a person.")]
        elif "slow" in msg.text:
            await asyncio.sleep(2)
            replies = [Reply(text="Sorry for the wait.")]
        else:
            replies = [Reply(text="Hello! How can I help?",
                             buttons=[Button(title="Track my order", payload="/track_order"),
                                      Button(title="Talk to a person", payload="/human")]),
                       Reply(text="You can also type your question.")]
        self.seen[msg.dedupe_key] = replies
        return replies


class FakeHandoff:
    def __init__(self, store: FakeStore, fail: bool = False) -> None:
        self.store = store
        self.fail = fail
        self.calls: list[str] = []

    async def hand_back(self, cid: str, agent: str | None = None, close: bool = False) -> Session:
        self.calls.append(cid)
        session = self.store.sessions.get(cid)
        if session is None or self.fail:
            raise HandoffError("unknown_conversation", f"no conversation {cid!r}")
        session.handoff, session.handoff_reason = False, None
        return session


class Harness:
    def __init__(self, bridge: ChatwootBridge, client: httpx.AsyncClient, redis: Redis, prefix: str) -> None:
        self.bridge, self.client, self.redis, self.prefix = bridge, client, redis, prefix
        self.pipeline: FakePipeline = bridge.pipeline  # type: ignore[assignment]
        self.store: FakeStore = bridge.store  # type: ignore[assignment]
        self.handoff: FakeHandoff = bridge.handoff  # type: ignore[assignment]

    async def send(self, event: Any, token: str | None = None, drain: bool = True) -> httpx.Response:
        params = {"token": token} if token is not None else {}
        content = event if isinstance(event, bytes) else json.dumps(event).encode()
        resp = await self.client.post("/integrations/chatwoot/webhook", content=content, params=params,
                                      headers={"content-type": "application/json"})
        if drain:
            await self.bridge.drain()
        return resp


async def make_harness(redis_url: str, prefix: str, base_url: str,
                       webhook_token: str | None = None) -> AsyncIterator[Harness]:
    redis = Redis.from_url(redis_url, decode_responses=True)
    store = FakeStore()
    config = ChatwootConfig(base_url=base_url, api_token=API_TOKEN, webhook_token=webhook_token)
    bridge = ChatwootBridge(config, FakePipeline(store), store, FakeHandoff(store),
                            RedisSessionStore(redis, prefix=prefix))
    bridge.retry_base_s = 0.01
    app = FastAPI()
    app.include_router(chatwoot_router(bridge))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bot") as client:
        yield Harness(bridge, client, redis, prefix)
    await bridge.aclose()
    await redis.aclose()


@pytest.fixture
async def h(redis_url: str, key_prefix: str, chatwoot_server: tuple[FakeChatwoot, str],
            chatwoot: FakeChatwoot) -> AsyncIterator[Harness]:
    async for harness in make_harness(redis_url, key_prefix, chatwoot_server[1]):
        yield harness


# -- tests ---------------------------------------------------------------------------------------


async def test_incoming_message_on_pending_conversation_is_answered(h: Harness,
                                                                    chatwoot: FakeChatwoot) -> None:
    resp = await h.send(incoming("hi"))
    assert resp.status_code == 200 and resp.json() == {"ok": True, "queued": True}

    [msg] = h.pipeline.calls
    assert (msg.channel, msg.conversation_id, msg.message_id, msg.text, msg.sender_id) == \
        ("chatwoot", CID, "118", "hi", "14")
    assert [r["path"] for r in chatwoot.requests] == [MESSAGES, MESSAGES]
    assert all(r["token"] == API_TOKEN for r in chatwoot.requests)
    assert chatwoot.posted() == [
        {"content": "Hello! How can I help?\n\n1. Track my order\n2. Talk to a person",
         "message_type": "outgoing", "private": False},
        {"content": "You can also type your question.", "message_type": "outgoing", "private": False},
    ]
    assert await h.redis.exists(f"{h.prefix}:chatwoot:sent:1:118") == 1
    assert await h.redis.ttl(f"{h.prefix}:chatwoot:sent:1:118") > 0


def _private_note() -> dict[str, Any]:
    event = fixture("message_created_outgoing")
    event["private"] = True
    event["content"] = "customer is a VIP"
    return event


def _incoming_private() -> dict[str, Any]:
    event = incoming("hi")
    event["private"] = True
    return event


def _status(status: str) -> dict[str, Any]:
    event = fixture("conversation_status_changed_pending")
    event["status"] = status
    return event


@pytest.mark.parametrize("event", [
    pytest.param(fixture("message_created_outgoing"), id="outgoing"),
    pytest.param(_private_note(), id="private-note"),
    pytest.param(_incoming_private(), id="incoming-private"),
    pytest.param(incoming("hi", status="open"), id="open-conversation"),
    pytest.param(incoming("hi", status="resolved"), id="resolved-conversation"),
    pytest.param(incoming("", message_id=130), id="attachment-only"),
    pytest.param({**incoming("hi"), "event": "message_updated"}, id="message-updated"),
    pytest.param(fixture("webwidget_triggered"), id="unknown-event"),
    pytest.param(_status("open"), id="status-open"),
    pytest.param({"hello": "world"}, id="no-event"),
])
async def test_other_events_are_acknowledged_and_ignored(h: Harness, chatwoot: FakeChatwoot,
                                                         event: dict[str, Any]) -> None:
    resp = await h.send(copy.deepcopy(event))
    assert resp.status_code == 200 and resp.json() == {"ok": True, "queued": False}
    assert h.pipeline.calls == [] and h.handoff.calls == [] and chatwoot.requests == []


async def test_redelivered_webhook_posts_the_replies_once(h: Harness, chatwoot: FakeChatwoot) -> None:
    # two deliveries racing, then a late one: the pipeline answers each, Chatwoot sees one set of replies
    first = await asyncio.gather(h.send(incoming("hi"), drain=False), h.send(incoming("hi"), drain=False))
    await h.bridge.drain()
    again = await h.send(incoming("hi"))
    assert all(r.status_code == 200 for r in [*first, again])
    assert len(h.pipeline.calls) == 3
    assert len(chatwoot.posted()) == 2

    await h.send(incoming("hi again", message_id=119))  # a new message is answered as usual
    assert len(chatwoot.posted()) == 4


async def test_handoff_opens_the_conversation_with_a_private_note_once(h: Harness,
                                                                     chatwoot: FakeChatwoot) -> None:
    await h.send(incoming("I want to talk to a human", message_id=120))
    assert [r["path"] for r in chatwoot.requests] == [MESSAGES, TOGGLE, MESSAGES]
    assert chatwoot.requests[1]["body"] == {"status": "open"}
    assert chatwoot.posted() == [
        {"content": "I'm connecting you with a person.", "message_type": "outgoing", "private": False},
        {"content": "Handed off by supportbot: customer_asked", "message_type": "outgoing", "private": True},
    ]
    assert await h.redis.exists(f"{h.prefix}:chatwoot:handed_off:1:10") == 1

    # Chatwoot still shows it pending for a moment: more messages, a redelivery, no second hand-off
    await h.send(incoming("hello?", message_id=121))
    await h.send(incoming("I want to talk to a human", message_id=120))
    assert [r["path"] for r in chatwoot.requests] == [MESSAGES, TOGGLE, MESSAGES]


async def test_failed_toggle_is_retried_on_the_next_message(h: Harness, chatwoot: FakeChatwoot,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    await h.send(incoming("hi", message_id=140))
    chatwoot.reset()
    h.store.sessions[CID].handoff, h.store.sessions[CID].handoff_reason = True, "complaint"
    chatwoot.fail_next = [400]  # not retryable: the toggle fails outright
    with caplog.at_level(logging.ERROR, logger="bot.handoff.chatwoot"):
        await h.send(incoming("anyone?", message_id=141))
    assert "chatwoot event failed" in caplog.text
    assert await h.redis.exists(f"{h.prefix}:chatwoot:handed_off:1:10") == 0

    await h.send(incoming("hello??", message_id=142))
    assert [r["path"] for r in chatwoot.requests] == [TOGGLE, TOGGLE, MESSAGES]
    assert chatwoot.posted()[-1]["content"] == "Handed off by supportbot: complaint"


async def test_status_back_to_pending_hands_the_conversation_back(h: Harness, chatwoot: FakeChatwoot) -> None:
    await h.send(incoming("I want to talk to a human", message_id=150))
    assert h.store.sessions[CID].handoff

    resp = await h.send(fixture("conversation_status_changed_pending"))
    assert resp.status_code == 200 and resp.json()["queued"] is True
    assert h.handoff.calls == [CID]
    assert not h.store.sessions[CID].handoff
    assert await h.redis.exists(f"{h.prefix}:chatwoot:handed_off:1:10") == 0

    # the bot answers again, and a second hand-off opens the conversation again
    chatwoot.reset()
    await h.send(incoming("hi", message_id=151))
    await h.send(incoming("human please", message_id=152))
    assert [r["path"] for r in chatwoot.requests] == [MESSAGES, MESSAGES, MESSAGES, TOGGLE, MESSAGES]


async def test_hand_back_of_an_unknown_conversation_is_ignored(h: Harness, chatwoot: FakeChatwoot,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="bot.handoff.chatwoot"):
        await h.send(fixture("conversation_status_changed_pending"))  # supportbot never saw it
        h.store.sessions[CID] = Session(conversation_id=CID, handoff=True)
        h.handoff.fail = True  # the session vanished between the check and the hand-back
        await h.redis.set(f"{h.prefix}:chatwoot:handed_off:1:10", "1")
        await h.send(fixture("conversation_status_changed_pending"))
    assert h.handoff.calls == [CID]
    assert "chatwoot event failed" not in caplog.text
    assert await h.redis.exists(f"{h.prefix}:chatwoot:handed_off:1:10") == 0
    assert chatwoot.requests == []


async def test_webhook_token(redis_url: str, key_prefix: str, chatwoot_server: tuple[FakeChatwoot, str],
                             chatwoot: FakeChatwoot) -> None:
    async for h in make_harness(redis_url, key_prefix, chatwoot_server[1], webhook_token="s3cret"):
        for token in (None, "", "wrong", "s3cret-but-longer"):
            resp = await h.send(incoming("hi"), token=token)
            assert resp.status_code == 401
            assert resp.json()["error"] == "bad_token" and resp.json()["detail"]
        resp = await h.send(incoming("hi"), token="s3cret")
        assert resp.status_code == 200 and resp.json()["queued"] is True
        assert len(h.pipeline.calls) == 1 and len(chatwoot.posted()) == 2


@pytest.mark.parametrize("body", [b"{not json", b"", b"\xff\xfe", b"[1, 2]", b'"hi"'])
async def test_malformed_json_is_a_400(h: Harness, body: bytes) -> None:
    resp = await h.send(body)
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_json"
    assert h.pipeline.calls == []


async def test_429_and_5xx_are_retried(h: Harness, chatwoot: FakeChatwoot) -> None:
    chatwoot.fail_next = [429, 500]
    await h.send(incoming("hi", message_id=160))
    assert [r["path"] for r in chatwoot.requests] == [MESSAGES] * 4  # 429, 500, ok, then the 2nd reply
    assert [p["content"] for p in chatwoot.posted()][2:] == [
        "Hello! How can I help?\n\n1. Track my order\n2. Talk to a person",
        "You can also type your question."]


async def test_giving_up_releases_the_message_for_a_redelivery(h: Harness, chatwoot: FakeChatwoot,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    chatwoot.fail_next = [503, 503, 503]
    with caplog.at_level(logging.ERROR, logger="bot.handoff.chatwoot"):
        await h.send(incoming("hi", message_id=170))
    assert len(chatwoot.requests) == 3 and "chatwoot event failed" in caplog.text
    assert await h.redis.exists(f"{h.prefix}:chatwoot:sent:1:170") == 0

    await h.send(incoming("hi", message_id=170))  # Chatwoot redelivers: now it goes through
    assert len(chatwoot.requests) == 5


async def test_connection_errors_are_retried_then_logged(redis_url: str, key_prefix: str,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    closed = f"http://127.0.0.1:{sock.getsockname()[1]}"  # bound, never listening: connection refused
    try:
        async for h in make_harness(redis_url, key_prefix, closed):
            with caplog.at_level(logging.WARNING, logger="bot.handoff.chatwoot"):
                resp = await h.send(incoming("hi", message_id=180))
            assert resp.status_code == 200
            assert caplog.text.count("retrying") == 2 and "chatwoot event failed" in caplog.text
    finally:
        sock.close()


async def test_webhook_answers_before_a_slow_pipeline(h: Harness, chatwoot: FakeChatwoot) -> None:
    start = time.monotonic()
    resp = await h.send(incoming("slow question", message_id=190), drain=False)
    assert resp.status_code == 200 and time.monotonic() - start < 1.0
    assert chatwoot.requests == [] and len(h.bridge._tasks) == 1
    await h.bridge.drain()
    assert chatwoot.posted() == [
        {"content": "Sorry for the wait.", "message_type": "outgoing", "private": False}]
    assert not h.bridge._tasks
