"""WhatsApp Cloud API channel, sending (beyond the conformance suite): the Messages API's limits
(long texts, reply buttons, lists, numbered text), Graph throttling and errors, the pace, settings."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import respx

from bot.channels.base import Conversation
from bot.channels.meta import GraphApiError
from bot.channels.whatsapp import WhatsAppChannel, closing_part, from_settings
from bot.config import Settings
from bot.types import Button, Reply
from tests.channels.whatsapp.conformance import (
    GRAPH,
    PHONE_NUMBER_ID,
    SECRET,
    SEND,
    SENT,
    TOKEN,
    VERIFY,
    WA_ID,
)

YES_NO = [Button(title="Yes", payload="/affirm"), Button(title="No", payload="/deny")]
CUSTOMER = Conversation(f"whatsapp-{WA_ID}", {"wa_id": WA_ID})


@pytest.fixture
async def channel() -> AsyncIterator[WhatsAppChannel]:
    async with httpx.AsyncClient() as http:
        yield WhatsAppChannel(TOKEN, PHONE_NUMBER_ID, SECRET, http, verify_token=VERIFY, graph_url=GRAPH)


def bodies(route: respx.Route) -> list[dict[str, Any]]:
    return [json.loads(c.request.content) for c in route.calls]


async def test_long_text_is_split_at_4096(channel: WhatsAppChannel, sleeps: list[float]) -> None:
    text = ("word " * 900 + "\n\n") * 2  # about 9,000 characters
    with respx.mock() as mock:
        route = mock.post(SEND).respond(200, json=SENT)
        await channel.send(CUSTOMER, [Reply(text=text)])
    sent = bodies(route)
    assert len(sent) == 3
    assert all(b["type"] == "text" and 0 < len(b["text"]["body"]) <= 4096 for b in sent)
    assert " ".join(b["text"]["body"] for b in sent).split() == text.split()


async def test_reply_buttons(channel: WhatsAppChannel, sleeps: list[float]) -> None:
    reply = Reply(text="Anything else?", buttons=[
        Button(title="Talk to a person", payload="/talk_to_human"),
        Button(title="No thanks, that was everything", payload="/deny")])
    with respx.mock() as mock:
        route = mock.post(SEND).respond(200, json=SENT)
        await channel.send(CUSTOMER, [reply])
    [body] = bodies(route)
    assert body["type"] == "interactive"
    assert body["to"] == WA_ID
    interactive = body["interactive"]
    assert interactive["type"] == "button"
    assert interactive["body"] == {"text": "Anything else?"}
    buttons = interactive["action"]["buttons"]
    assert [b["type"] for b in buttons] == ["reply", "reply"]
    assert buttons[0]["reply"] == {"id": "/talk_to_human", "title": "Talk to a person"}
    assert buttons[1]["reply"]["id"] == "/deny"
    title = buttons[1]["reply"]["title"]
    assert len(title) <= 20 and title.endswith("…") and title.startswith("No thanks")


async def test_long_text_with_buttons_sends_the_text_first(channel: WhatsAppChannel,
                                                           sleeps: list[float]) -> None:
    text = "\n\n".join(f"Paragraph {i}: " + "lorem ipsum " * 40 for i in range(6))  # ~3,000 characters
    reply = Reply(text=text, buttons=[*YES_NO])
    with respx.mock() as mock:
        route = mock.post(SEND).respond(200, json=SENT)
        await channel.send(CUSTOMER, [reply])
    *texts, last = bodies(route)
    assert texts and all(b["type"] == "text" for b in texts)
    assert last["type"] == "interactive"
    closing = last["interactive"]["body"]["text"]
    assert 0 < len(closing) <= 1024
    assert closing.startswith("Paragraph 4:")  # the last paragraphs that fit, whole
    sent = [b["text"]["body"] for b in texts] + [closing]
    assert " ".join(sent).split() == text.split()  # nothing repeated, nothing lost


def test_closing_part_of_text_without_boundaries_is_cut_hard() -> None:
    yes = [Button(title="Yes", payload="/affirm")]
    assert closing_part(Reply(text="x" * 3000, buttons=yes), 1024) == (["x" * 1976], "x" * 1024)
    lines = "\n".join(f"line {i:03d} " + "y" * 40 for i in range(60))  # ~3,000 characters
    head, body = closing_part(Reply(text=lines, buttons=yes), 1024)
    assert len(body) <= 1024 and body.startswith("line ") and body.endswith("y" * 40)
    assert "\n".join([*head, body]) == lines


async def test_buttons_without_text_get_their_titles_as_body(channel: WhatsAppChannel,
                                                             sleeps: list[float]) -> None:
    reply = Reply(text="", buttons=[*YES_NO])
    with respx.mock() as mock:
        route = mock.post(SEND).respond(200, json=SENT)
        await channel.send(CUSTOMER, [reply])
    [body] = bodies(route)
    assert body["interactive"]["body"] == {"text": "Yes · No"}


async def test_four_to_ten_buttons_are_a_list(channel: WhatsAppChannel, sleeps: list[float]) -> None:
    titles = ["Shipping", "Returns", "Payment", "My account", "Opening hours of our shops"]
    buttons = [Button(title=t, payload=f"/topic{i}") for i, t in enumerate(titles)]
    reply = Reply(text="What is it about?", buttons=buttons)
    with respx.mock() as mock:
        route = mock.post(SEND).respond(200, json=SENT)
        await channel.send(CUSTOMER, [reply])
    [body] = bodies(route)
    interactive = body["interactive"]
    assert interactive["type"] == "list"
    assert interactive["body"] == {"text": "What is it about?"}
    assert interactive["action"]["button"] == "Options"
    [section] = interactive["action"]["sections"]
    rows = section["rows"]
    assert [r["id"] for r in rows] == [f"/topic{i}" for i in range(5)]
    assert rows[0] == {"id": "/topic0", "title": "Shipping"}
    assert len(rows[4]["title"]) <= 24 and rows[4]["title"].endswith("…")
    assert rows[4]["description"] == "Opening hours of our shops"


async def test_duplicate_titles_after_cutting_fall_back_to_a_list(channel: WhatsAppChannel,
                                                                   sleeps: list[float]) -> None:
    reply = Reply(text="Which order?", buttons=[Button(title="Order from 12 March 2024", payload="/a"),
                                                Button(title="Order from 12 March 2025", payload="/b")])
    with respx.mock() as mock:
        route = mock.post(SEND).respond(200, json=SENT)
        await channel.send(CUSTOMER, [reply])
    [body] = bodies(route)
    assert body["interactive"]["type"] == "list"
    assert [r["title"] for r in body["interactive"]["action"]["sections"][0]["rows"]] == [
        "Order from 12 March 2024", "Order from 12 March 2025"]


async def test_too_many_buttons_or_long_ids_are_numbered_text(channel: WhatsAppChannel,
                                                              sleeps: list[float]) -> None:
    many = Reply(text="Pick one", buttons=[Button(title=f"Option {i}", payload=f"/o{i}") for i in range(11)])
    long_id = Reply(text="Did you mean:", buttons=[Button(title="Returns", payload="/faq" + "x" * 300)])
    with respx.mock() as mock:
        route = mock.post(SEND).respond(200, json=SENT)
        await channel.send(CUSTOMER, [many, long_id])
    first, second = bodies(route)
    assert first["type"] == "text" and first["text"]["body"].startswith("Pick one\n\n1. Option 0\n")
    assert second == {"messaging_product": "whatsapp", "recipient_type": "individual", "to": WA_ID,
                      "type": "text", "text": {"body": "Did you mean:\n\n1. Returns"}}


async def test_throttling_answered_as_400_is_retried(channel: WhatsAppChannel, sleeps: list[float]) -> None:
    throttled = {"error": {"message": "(#130429) Rate limit hit", "type": "OAuthException", "code": 130429,
                           "fbtrace_id": "AbCdEf"}}
    with respx.mock() as mock:
        route = mock.post(SEND).mock(side_effect=[httpx.Response(400, json=throttled),
                                                  httpx.Response(200, json=SENT)])
        await channel.send(CUSTOMER, [Reply(text="hi")])
    assert route.call_count == 2
    assert any(s >= 0.5 for s in sleeps)


async def test_other_graph_errors_are_final(channel: WhatsAppChannel, sleeps: list[float]) -> None:
    invalid = {"error": {"message": "(#100) Invalid parameter", "type": "OAuthException", "code": 100}}
    with respx.mock() as mock:
        route = mock.post(SEND).respond(400, json=invalid)
        with pytest.raises(GraphApiError) as info:
            await channel.send(CUSTOMER, [Reply(text="hi")])
    assert route.call_count == 1
    assert (info.value.status, info.value.code) == (400, 100)
    assert TOKEN not in str(info.value)


async def test_rate_limit_is_20_per_second(channel: WhatsAppChannel, sleeps: list[float]) -> None:
    with respx.mock() as mock:
        mock.post(SEND).respond(200, json=SENT)
        await channel.send(CUSTOMER, [Reply(text=str(i)) for i in range(3)])
    waits = [s for s in sleeps if s > 0]
    assert len(waits) == 2
    assert 0.02 < waits[0] <= 0.05 and 0.07 < waits[1] <= 0.1  # 20 per second, from t0


async def test_from_settings() -> None:
    async with httpx.AsyncClient() as http:
        assert from_settings(Settings(), http) is None
        number = PHONE_NUMBER_ID
        assert from_settings(Settings(whatsapp={"token": TOKEN, "phone_number_id": number}), http) is None
        assert from_settings(Settings(whatsapp={"token": TOKEN}, meta={"app_secret": SECRET}), http) is None
        assert (
            from_settings(Settings(meta={"app_secret": SECRET}, whatsapp={"phone_number_id": number}), http)
            is None
        )
        ch = from_settings(
            Settings(
                whatsapp={"token": TOKEN, "phone_number_id": number},
                meta={"app_secret": SECRET, "verify_token": VERIFY, "graph_url": GRAPH + "/"},
            ),
            http,
        )
        assert isinstance(ch, WhatsAppChannel)
        assert ch.url == SEND
        assert ch.verify_token == VERIFY
