"""What every channel must do, each platform driven by its recorded payloads (tests/channels/<name>/
conformance.py): a signed delivery parses into the right message; an unsigned, forged or malformed one
is refused with the channel's error (a 4xx through the webhook hub, never a 5xx); a handshake is
answered; a redelivery is one message; text and buttons go out in the platform's shape with its
credentials; 429 and 5xx are retried (after Retry-After) until the budget is spent; other 4xx are final.
The platforms' own behaviours stay in their folders' tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import respx
from pydantic import SecretStr

from bot.channels import rasa
from bot.channels.base import Channel, ChannelError, Conversation, InboundRequest, keyed_conversation_id
from bot.types import Message, Reply
from tests.channels.conformance import BUTTONS, TEXT, Platform, Probe
from tests.channels.messenger.conformance import PLATFORM as MESSENGER
from tests.channels.slack.conformance import PLATFORM as SLACK
from tests.channels.telegram.conformance import PLATFORM as TELEGRAM
from tests.channels.twilio.conformance import PLATFORM as TWILIO
from tests.channels.whatsapp.conformance import PLATFORM as WHATSAPP

PLATFORMS = [TELEGRAM, SLACK, MESSENGER, WHATSAPP, TWILIO]
HANDSHAKES = [p for p in PLATFORMS if p.handshake is not None]


def cases(field: str) -> list[Any]:
    """(platform, case) for every case each platform lists under `field`."""
    return [pytest.param(p, case, id=f"{p.name}-{i}") for p in PLATFORMS
            for i, case in enumerate(getattr(p, field))]


@pytest.fixture(params=PLATFORMS, ids=[p.name for p in PLATFORMS])
def platform(request: pytest.FixtureRequest) -> Platform:
    return request.param


@pytest.fixture
async def channel(platform: Platform) -> AsyncIterator[Channel]:
    async with httpx.AsyncClient() as http:
        yield platform.make(http)


async def parse(channel: Channel, request: InboundRequest) -> list[Message]:
    try:
        return await channel.parse(request)
    finally:
        drain = getattr(channel, "drain", None)
        if drain is not None:
            await drain()


def fields(msg: Message) -> dict[str, object]:
    return msg.model_dump(exclude={"received_at"})


# inbound


async def test_a_signed_delivery_is_its_message(platform: Platform, channel: Channel) -> None:
    [msg] = await parse(channel, platform.delivery.request(platform.path))
    assert fields(msg) == platform.expected


async def test_the_message_rebuilds_its_address(platform: Platform, channel: Channel) -> None:
    [msg] = await parse(channel, platform.delivery.request(platform.path))
    assert channel.conversation(msg) == Conversation(platform.expected["conversation_id"], platform.address)


async def test_the_hub_acknowledges_and_hands_the_message_on(platform: Platform, channel: Channel,
                                                             hub_client) -> None:  # type: ignore[no-untyped-def]
    client, hub = await hub_client(channel)
    with respx.mock() as mock:
        api = mock.post(platform.send_url).mock(side_effect=lambda request: platform.ok())
        resp = await platform.delivery.send(client, platform.path)
        await hub.drain()
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith(platform.ack[0]) and resp.text == platform.ack[1]
    [msg] = hub.services.pipeline.seen
    platform_id = platform.expected["conversation_id"]
    assert msg.conversation_id == keyed_conversation_id(b"", platform.name, platform_id)
    assert api.call_count == 1  # the pipeline's answer went out
    unknown = await platform.delivery.send(client, "/webhooks/nope")
    assert unknown.status_code == 404 and unknown.json()["error"] == "unknown_channel"


async def test_a_redelivery_is_one_message(platform: Platform, channel: Channel,
                                           hub_client) -> None:  # type: ignore[no-untyped-def]
    [first] = await parse(channel, platform.delivery.request(platform.path))
    delivery = platform.delivery
    again = Probe(delivery.body, {**delivery.headers, **platform.redelivery}, delivery.method, delivery.query)
    [second] = await parse(channel, again.request(platform.path))
    assert first.dedupe_key == second.dedupe_key
    assert fields(first) == fields(second)
    client, hub = await hub_client(channel)
    with respx.mock() as mock:
        api = mock.post(platform.send_url).mock(side_effect=lambda request: platform.ok())
        for delivery in (platform.delivery, again):
            assert (await delivery.send(client, platform.path)).status_code == 200
            await hub.drain()
    assert api.call_count == 1  # answered once, whatever the pipeline said the second time


@pytest.mark.parametrize(("platform", "case"), cases("unsigned"))
async def test_an_unsigned_delivery_is_401(platform: Platform, case: Probe,
                                           hub_client) -> None:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient() as http:
        client, hub = await hub_client(platform.make(http))
        resp = await case.send(client, platform.path)
    assert resp.status_code == 401
    assert resp.json()["error"] == "bad_signature" and resp.json()["detail"]
    assert hub.services.pipeline.seen == []


@pytest.mark.parametrize(("platform", "case"), cases("forged"))
async def test_a_forged_delivery_is_refused(platform: Platform, case: tuple[Probe, int],
                                            hub_client) -> None:  # type: ignore[no-untyped-def]
    probe, status = case
    async with httpx.AsyncClient() as http:
        client, hub = await hub_client(platform.make(http))
        resp = await probe.send(client, platform.path)
    assert resp.status_code == status
    assert resp.json()["error"] == "bad_signature"
    assert hub.services.pipeline.seen == []


@pytest.mark.parametrize(("platform", "case"), cases("malformed"))
async def test_a_malformed_body_is_400_not_500(platform: Platform, case: Probe,
                                               hub_client) -> None:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient() as http:
        channel = platform.make(http)
        with pytest.raises(ChannelError) as refused:
            await parse(channel, case.request(platform.path))
        client, _ = await hub_client(channel)
        resp = await case.send(client, platform.path)
    assert (refused.value.status, refused.value.code) == (400, "invalid_payload")
    assert resp.status_code == 400
    assert resp.json() == {"error": "invalid_payload", "detail": refused.value.detail}


@pytest.mark.parametrize("platform", HANDSHAKES, ids=[p.name for p in HANDSHAKES])
async def test_the_handshake_is_answered_and_only_the_platforms(platform: Platform,
                                                                hub_client) -> None:  # type: ignore[no-untyped-def]
    assert platform.handshake is not None and platform.handshake_refused is not None
    probe, answer, content_type = platform.handshake
    async with httpx.AsyncClient() as http:
        client, hub = await hub_client(platform.make(http))
        resp = await probe.send(client, platform.path)
        refused = await platform.handshake_refused[0].send(client, platform.path)
    assert resp.status_code == 200
    assert resp.text == answer and resp.headers["content-type"].startswith(content_type)
    assert (refused.status_code, refused.json()["error"]) == platform.handshake_refused[1:]
    assert hub.services.pipeline.seen == []


# outbound


def conversation(platform: Platform) -> Conversation:
    return Conversation(platform.expected["conversation_id"], dict(platform.address))


@pytest.mark.parametrize(("reply", "shape"), [(TEXT, "sent_text"), (BUTTONS, "sent_buttons")],
                         ids=["text", "buttons"])
async def test_replies_go_out_in_the_platforms_shape_with_the_credentials(
        platform: Platform, channel: Channel, sleeps: list[float], reply: Reply, shape: str) -> None:
    with respx.mock(assert_all_called=True) as mock:
        route = mock.post(platform.send_url).mock(side_effect=lambda request: platform.ok())
        await channel.send(conversation(platform), [reply])
    assert [platform.decode(c.request) for c in route.calls] == getattr(platform, shape)
    platform.check_auth(route.calls.last.request)


async def test_429_and_5xx_are_retried_after_retry_after(platform: Platform, channel: Channel,
                                                         sleeps: list[float]) -> None:
    with respx.mock() as mock:
        route = mock.post(platform.send_url).mock(side_effect=[
            platform.throttled(), httpx.Response(503, text="Service Unavailable"), platform.ok()])
        await channel.send(conversation(platform), [TEXT])
    assert route.call_count == 3
    assert 3.0 in sleeps


async def test_endless_5xx_give_up_after_four_tries(platform: Platform, channel: Channel,
                                                    sleeps: list[float]) -> None:
    with respx.mock() as mock:
        route = mock.post(platform.send_url).respond(503, text="Service Unavailable")
        with pytest.raises(platform.gives_up):
            await channel.send(conversation(platform), [TEXT])
    assert route.call_count == 4
    assert len([s for s in sleeps if s > 0.1]) >= 3  # backing off between the tries


async def test_other_4xx_is_final(platform: Platform, channel: Channel, sleeps: list[float]) -> None:
    with respx.mock() as mock:
        route = mock.post(platform.send_url).mock(side_effect=lambda request: platform.refused())
        with pytest.raises(platform.refused_error):
            await channel.send(conversation(platform), [TEXT])
    assert route.call_count == 1


async def test_network_errors_are_retried(platform: Platform, channel: Channel, sleeps: list[float]) -> None:
    with respx.mock() as mock:
        route = mock.post(platform.send_url).mock(side_effect=[httpx.ConnectError("refused"), platform.ok()])
        await channel.send(conversation(platform), [TEXT])
    assert route.call_count == 2


# Rasa's protocol (the REST and socket.io channels: no signatures, an optional shared token)


def test_rasa_refuses_a_missing_or_wrong_token_with_the_channel_error() -> None:
    expected = SecretStr("rasa-shared-token")
    for presented in (None, "", "nope", "rasa-shared-token-but-longer"):
        with pytest.raises(ChannelError) as refused:
            rasa.check_channel_token(expected, presented)
        assert (refused.value.status, refused.value.code) == (401, "bad_token")
        assert refused.value.headers == {"WWW-Authenticate": "Bearer"} and refused.value.detail
    rasa.check_channel_token(expected, "rasa-shared-token")
    rasa.check_channel_token(None, None)  # no token configured: as in Rasa, the sender id is the identity


def test_rasa_token_comes_from_bearer_then_query_or_connect_auth() -> None:
    both = InboundRequest(headers={"Authorization": "Bearer t1"}, query={"token": "t2"})
    assert rasa.request_token(both) == "t1"
    basic = InboundRequest(headers={"authorization": "Basic x"}, query={"token": "t2"})
    assert rasa.request_token(basic) == "t2"
    assert rasa.request_token(InboundRequest()) is None
    assert rasa.connect_token({"token": "t3"}, {"token": "t4"}) == "t3"
    assert rasa.connect_token(None, {"token": "t4"}) == "t4"
    assert rasa.connect_token({"token": 5}, {"token": "t4"}) is None  # not a string: no token


def test_rasa_senders_are_keyed_and_slash_text_is_a_payload() -> None:
    msg = rasa.message("+447700900123", "/affirm", "rest", key=b"k")
    assert msg.conversation_id == keyed_conversation_id(b"k", "rasa", "+447700900123")
    assert "7700900123" not in msg.conversation_id
    assert (msg.payload, msg.text, msg.sender_id) == ("/affirm", "", "+447700900123")
    assert len(msg.message_id) == 32  # a fresh id
    text = rasa.message("+447700900123", "hi", "socketio", "m-1", key=b"k")
    assert (text.text, text.payload, text.message_id, text.channel) == ("hi", None, "m-1", "socketio")
    assert text.conversation_id == msg.conversation_id  # REST and socket.io share the conversation


def test_rasa_shapes_of_text_and_buttons() -> None:
    buttons = [{"title": "Talk to a person", "payload": "/talk_to_human"},
               {"title": "No thanks", "payload": "/deny"}]
    assert rasa.rest_reply("u1", TEXT) == {"recipient_id": "u1", "text": TEXT.text}
    assert rasa.rest_reply("u1", BUTTONS) == {"recipient_id": "u1", "text": "Anything else?",
                                              "buttons": buttons}
    assert rasa.bot_uttered(TEXT) == {"text": TEXT.text}
    assert rasa.bot_uttered(BUTTONS) == {"text": "Anything else?", "quick_replies": [
        {"content_type": "text", **b} for b in buttons]}
