"""Slack channel, beyond the conformance suite: the replay window, signatures over form bodies,
Events API and block_actions parsing (threads, mentions, files, echoes), Block Kit limits, `ok: false`
answers (`ratelimited` retried on its own budget) and the per-channel pace.

Fixtures follow the Events API envelope, the message / app_mention events and the block_actions
interaction payload.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import respx

from bot.channels import slack
from bot.channels.base import UNSUPPORTED, Conversation
from bot.channels.slack import SlackApiError, SlackChannel, conversation_id, from_settings
from bot.config import Settings
from bot.types import Button, Message, Reply
from tests.channels.slack.conformance import API, SECRET, TOKEN

HERE = Path(__file__).parent
POST = f"{API}/chat.postMessage"
DM = Conversation("slack-D0DMCHAN1-1712345678_000200",
                  {"channel": "D0DMCHAN1", "thread_ts": "1712345678.000200"})
OK = {"ok": True, "channel": "D0DMCHAN1", "ts": "1712349999.000100", "message": {}}


def fixture(name: str) -> dict[str, Any]:
    return json.loads((HERE / f"{name}.json").read_text())


def sign(body: bytes, timestamp: str, secret: str = SECRET) -> str:
    base_string = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base_string, hashlib.sha256).hexdigest()


@pytest.fixture
async def channel() -> AsyncIterator[SlackChannel]:
    async with httpx.AsyncClient() as http:
        yield SlackChannel(TOKEN, SECRET, http, api_url=API)


@pytest.fixture
async def client(channel: SlackChannel, webhook_client) -> httpx.AsyncClient:  # type: ignore[no-untyped-def]
    return await webhook_client(channel, "/webhooks/slack")


async def post(client: httpx.AsyncClient, body: Any, *, timestamp: str | None = None,
               signature: str | None = None, signed: bool = True, form: bool = False,
               headers: dict[str, str] | None = None) -> httpx.Response:
    if isinstance(body, bytes):
        content = body
    elif form:
        content = urlencode({"payload": json.dumps(body)}).encode()
    else:
        content = json.dumps(body).encode()
    ts = timestamp if timestamp is not None else str(int(time.time()))
    sent = {"content-type": "application/x-www-form-urlencoded" if form else "application/json",
            **(headers or {})}
    if signed:
        sent["X-Slack-Request-Timestamp"] = ts
        sent["X-Slack-Signature"] = signature if signature is not None else sign(content, ts)
    return await client.post("/webhooks/slack", content=content, headers=sent)


# inbound


async def test_thread_reply_joins_the_thread_and_links_become_text(client: httpx.AsyncClient) -> None:
    [msg] = (await post(client, fixture("message_thread_reply"))).json()
    assert msg["conversation_id"] == "slack-C0SUPPORT-1712345600_000100"
    assert msg["metadata"]["thread_ts"] == "1712345600.000100"
    assert msg["metadata"]["ts"] == "1712345700.000400"
    assert msg["message_id"] == "Ev0MSG0002"  # no client_msg_id: the event id
    assert msg["text"] == "my email is jane@example.com, see https://example.com/orders/1042"


async def test_app_mention_drops_our_own_mention(client: httpx.AsyncClient) -> None:
    [msg] = (await post(client, fixture("app_mention"))).json()
    assert msg["text"] == "can I talk to a human? cc @U0COLLEAGUE"
    assert msg["conversation_id"] == "slack-C0SUPPORT-1712345800_000500"
    assert msg["message_id"] == "9f8e7d6c-1111-4b2a-9c8d-7e6f5a4b3c2d"


async def test_mention_and_message_events_of_one_message_dedupe(client: httpx.AsyncClient) -> None:
    """A mention in a channel arrives as both `app_mention` and `message`: same dedupe key."""
    mention = fixture("app_mention")
    message = fixture("app_mention")
    message["event"]["type"], message["event_id"] = "message", "Ev0OTHER01"
    [a] = (await post(client, mention)).json()
    [b] = (await post(client, message)).json()
    assert Message(**a).dedupe_key == Message(**b).dedupe_key


async def test_bare_mention_is_ignored(client: httpx.AsyncClient) -> None:
    update = fixture("app_mention")
    update["event"]["text"] = "<@U0BOTUSER>"
    assert (await post(client, update)).json() == []


async def test_button_click_form_payload(client: httpx.AsyncClient) -> None:
    resp = await post(client, fixture("block_actions"), form=True)
    assert resp.status_code == 200
    [msg] = resp.json()
    assert msg["payload"] == "/talk_to_human"
    assert msg["text"] == ""
    assert msg["sender_id"] == "U0CUSTOMER"
    # the bot's message sits in the customer's thread: the click belongs to that conversation
    assert msg["conversation_id"] == "slack-D0DMCHAN1-1712345678_000200"
    assert msg["metadata"] == {"channel": "D0DMCHAN1", "thread_ts": "1712345678.000200"}
    assert msg["message_id"] == "1712346500.0000000001.a1b2c3d4e5f60718293a4b5c6d7e8f90"


async def test_non_button_actions_and_modal_actions_are_ignored(client: httpx.AsyncClient) -> None:
    select = fixture("block_actions")
    select["actions"][0] = {"type": "static_select", "action_id": "x", "block_id": "b",
                            "selected_option": {"value": "a"}, "action_ts": "1.2"}
    in_view = fixture("block_actions")
    in_view["container"] = {"type": "view", "view_id": "V0VIEW01"}
    for payload in (select, in_view):
        resp = await post(client, payload, form=True)
        assert resp.status_code == 200
        assert resp.json() == []


@pytest.mark.parametrize(("mimetype", "kind"), [("image/png", "image"), ("audio/webm", "audio"),
                                                ("video/mp4", "video"), ("application/pdf", "file")])
async def test_files_without_text_are_unsupported(client: httpx.AsyncClient, mimetype: str,
                                                  kind: str) -> None:
    update = fixture("file_share")
    update["event"]["files"][0]["mimetype"] = mimetype
    [msg] = (await post(client, update)).json()
    assert msg["text"] == ""
    assert msg["message_id"] == "Ev0FILE0001"
    assert msg["metadata"] == {"channel": "D0DMCHAN1", "thread_ts": "1712345900.000600",
                               "ts": "1712345900.000600", UNSUPPORTED: kind}


async def test_file_with_a_caption_is_a_text_message(client: httpx.AsyncClient) -> None:
    update = fixture("file_share")
    update["event"]["text"] = "here is my receipt"
    [msg] = (await post(client, update)).json()
    assert msg["text"] == "here is my receipt"
    assert UNSUPPORTED not in msg["metadata"]


@pytest.mark.parametrize("name", ["bot_message", "own_reply_echo", "message_changed", "message_deleted",
                                  "reaction_added"])
async def test_other_events_are_ignored(client: httpx.AsyncClient, name: str) -> None:
    resp = await post(client, fixture(name))
    assert resp.status_code == 200
    assert resp.json() == []


async def test_our_own_user_is_ignored_without_bot_id(client: httpx.AsyncClient) -> None:
    update = fixture("own_reply_echo")
    del update["event"]["bot_id"]
    assert (await post(client, update)).json() == []


async def test_other_envelopes_are_ignored(client: httpx.AsyncClient) -> None:
    body = {"token": "XXYYZZ", "team_id": "T0TEAM001", "minute_rate_limited": 1518467820,
            "api_app_id": "A0APP0001", "type": "app_rate_limited"}
    assert (await post(client, body)).json() == []


async def test_form_signature_covers_the_raw_form_body(client: httpx.AsyncClient) -> None:
    ts = str(int(time.time()))
    raw = urlencode({"payload": json.dumps(fixture("block_actions"))}).encode()
    resigned_json = sign(json.dumps(fixture("block_actions")).encode(), ts)
    resp = await post(client, raw, timestamp=ts, signature=resigned_json, form=True)
    assert resp.status_code == 403
    assert (await post(client, raw, timestamp=ts, form=True)).status_code == 200


@pytest.mark.parametrize("age", [310, -310, 3600])
async def test_replay_window(client: httpx.AsyncClient, age: int) -> None:
    # 10 s past the 5-minute window each way: a second or two of a slow test machine between
    # signing and checking must not bring a future timestamp back inside it.
    ts = str(int(time.time()) - age)
    resp = await post(client, fixture("message_im"), timestamp=ts)  # correctly signed, but stale
    assert resp.status_code == 401
    assert resp.json() == {"error": "stale_timestamp"}


async def test_recent_timestamp_within_window_is_accepted(client: httpx.AsyncClient) -> None:
    ts = str(int(time.time()) - 240)
    assert (await post(client, fixture("message_im"), timestamp=ts)).status_code == 200


async def test_non_numeric_timestamp_is_401(client: httpx.AsyncClient) -> None:
    resp = await post(client, fixture("message_im"), timestamp="yesterday")
    assert resp.status_code == 401


async def test_conversation_rebuilds_the_thread(client: httpx.AsyncClient, channel: SlackChannel) -> None:
    msg = Message(**(await post(client, fixture("message_thread_reply"))).json()[0])
    assert channel.conversation(msg) == Conversation(
        "slack-C0SUPPORT-1712345600_000100", {"channel": "C0SUPPORT", "thread_ts": "1712345600.000100"})


def test_conversation_ids_fit() -> None:
    assert conversation_id("C0SUPPORT", "1712345600.000100") == "slack-C0SUPPORT-1712345600_000100"
    long = conversation_id("C" + "X" * 80, "1712345600.000100")
    odd = conversation_id("C0SUP:PORT", "1712345600.000100")
    for cid in (long, odd):
        assert cid.startswith("slack-") and len(cid) <= 64
        assert all(c.isalnum() or c in "_-" for c in cid)
    assert long != conversation_id("C" + "X" * 80, "1712345600.000101")


# outbound


def bodies(route: respx.Route) -> list[dict[str, Any]]:
    return [json.loads(c.request.content) for c in route.calls]


async def test_long_button_titles_are_cut_and_oversized_values_fall_back(channel: SlackChannel,
                                                                         sleeps: list[float]) -> None:
    long_title = Reply(text="Pick", buttons=[Button(title="x" * 100, payload="/a")])
    huge_value = Reply(text="Did you mean:", buttons=[Button(title="Returns", payload="/faq" + "x" * 2000),
                                                      Button(title="Other", payload="/other")])
    with respx.mock() as mock:
        route = mock.post(POST).respond(200, json=OK)
        await channel.send(DM, [long_title, huge_value])
    first, second = bodies(route)
    title = first["blocks"][1]["elements"][0]["text"]["text"]
    assert len(title) == 75 and title.endswith("…")
    assert "blocks" not in second
    assert second["text"] == "Did you mean:\n\n1. Returns\n2. Other"


async def test_buttons_without_text(channel: SlackChannel, sleeps: list[float]) -> None:
    reply = Reply(text="", buttons=[Button(title="Yes", payload="/affirm"),
                                    Button(title="No", payload="/deny")])
    with respx.mock() as mock:
        route = mock.post(POST).respond(200, json=OK)
        await channel.send(DM, [reply])
    [body] = bodies(route)
    assert body["text"] == "Yes, No"
    assert [b["type"] for b in body["blocks"]] == ["actions"]


async def test_long_reply_is_split_with_buttons_on_the_last_part(channel: SlackChannel,
                                                                 sleeps: list[float]) -> None:
    text = ("word " * 700 + "\n\n") * 2  # about 7,000 characters
    reply = Reply(text=text, buttons=[Button(title="Ok", payload="/affirm")])
    with respx.mock() as mock:
        route = mock.post(POST).respond(200, json=OK)
        await channel.send(DM, [reply])
    sent = bodies(route)
    assert len(sent) == 3
    assert all(0 < len(b["text"]) <= 3000 for b in sent)
    assert " ".join(b["text"] for b in sent).split() == text.split()
    assert ["blocks" in b for b in sent] == [False, False, True]
    assert sent[-1]["blocks"][0]["text"]["text"] == sent[-1]["text"]
    assert all(b["thread_ts"] == "1712345678.000200" for b in sent)


async def test_ok_false_ratelimited_is_retried(channel: SlackChannel, sleeps: list[float]) -> None:
    with respx.mock() as mock:
        route = mock.post(POST).mock(side_effect=[
            httpx.Response(200, headers={"Retry-After": "4"}, json={"ok": False, "error": "ratelimited"}),
            httpx.Response(200, json={"ok": False, "error": "ratelimited"}),
            httpx.Response(200, json=OK),
        ])
        await channel.send(DM, [Reply(text="hi")])
    assert route.call_count == 3
    assert 4.0 in sleeps and 1.0 in sleeps


async def test_persistent_ratelimited_raises(channel: SlackChannel, sleeps: list[float]) -> None:
    with respx.mock() as mock:
        route = mock.post(POST).respond(200, json={"ok": False, "error": "ratelimited"})
        with pytest.raises(SlackApiError) as info:
            await channel.send(DM, [Reply(text="hi")])
    assert info.value.error == "ratelimited"
    assert route.call_count == slack.RATELIMITED_ATTEMPTS


@pytest.mark.parametrize("answer", [{"ok": False, "error": "channel_not_found"},
                                    {"ok": False, "error": "not_in_channel"}, {"ok": False}])
async def test_ok_false_is_a_failure(channel: SlackChannel, sleeps: list[float],
                                     answer: dict[str, Any]) -> None:
    with respx.mock() as mock:
        route = mock.post(POST).respond(200, json=answer)
        with pytest.raises(SlackApiError):
            await channel.send(DM, [Reply(text="hi")])
    assert route.call_count == 1


async def test_non_json_answer_is_a_failure(channel: SlackChannel, sleeps: list[float]) -> None:
    with respx.mock() as mock:
        mock.post(POST).respond(200, text="<html>gateway</html>")
        with pytest.raises(SlackApiError):
            await channel.send(DM, [Reply(text="hi")])


async def test_rate_limit_is_one_message_per_second_per_channel(channel: SlackChannel,
                                                                sleeps: list[float]) -> None:
    other = Conversation("slack-C0SUPPORT-1_0", {"channel": "C0SUPPORT", "thread_ts": "1.0"})
    with respx.mock() as mock:
        mock.post(POST).respond(200, json=OK)
        await channel.send(DM, [Reply(text=str(i)) for i in range(3)])
        await channel.send(other, [Reply(text="first in its channel")])
    waits = [s for s in sleeps if s > 0]  # sleeps are faked, so each waits for its slot from t0
    assert len(waits) == 2  # the other channel's first message did not wait
    assert 0.9 < waits[0] <= 1.0 and 1.9 < waits[1] <= 2.0


async def test_from_settings() -> None:
    async with httpx.AsyncClient() as http:
        assert from_settings(Settings(), http) is None
        assert from_settings(Settings(slack={"bot_token": TOKEN}), http) is None  # cannot verify: refused
        assert from_settings(Settings(slack={"signing_secret": SECRET}), http) is None
        ch = from_settings(
            Settings(slack={"bot_token": TOKEN, "signing_secret": SECRET, "api_url": API + "/"}), http
        )
        assert isinstance(ch, SlackChannel)
        assert ch.api_url == API
