"""Rasa's client protocol, as Rasa 3 publishes it: how a sender becomes a conversation, the channels'
optional shared token, and the shapes of the REST channel's replies, the socket.io channel's
`bot_uttered` event and `POST /model/parse`'s answer. An existing widget or script points at
supportbot and works unchanged.

The routes that speak it (the REST channel, /model/parse, the socket.io server) are the web layer's;
this module holds no route and no server.
"""

from __future__ import annotations

import hmac
import re
import uuid
from collections.abc import Mapping
from typing import Any

from pydantic import SecretStr

from bot.channels.base import ChannelError, InboundRequest, keyed_conversation_id
from bot.types import Message, Parse, Reply


def conversation_id(sender: str, key: bytes) -> str:
    """Rasa sender ids are free text (often a phone number or a user id): keyed, never shown.
    The REST and socket.io channels share it, as Rasa's tracker would."""
    return keyed_conversation_id(key, "rasa", sender)


def check_channel_token(expected: SecretStr | None, presented: str | None) -> None:
    """The optional shared token of the Rasa channels (`Settings.web.rasa_channel_token`)."""
    if expected is None:
        return
    if not presented or not hmac.compare_digest(presented.encode("utf-8", "surrogateescape"),
                                                expected.get_secret_value().encode()):
        raise ChannelError(401, "bad_token",
                           "this channel needs its token (?token= or Authorization: Bearer)",
                           headers={"WWW-Authenticate": "Bearer"})


def request_token(request: InboundRequest) -> str | None:
    """The token a REST client presents: `Authorization: Bearer <token>`, else `?token=`."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.query.get("token")


def connect_token(auth: Any, query: Mapping[str, str]) -> str | None:
    """The token a socket.io client presents: the connect `auth` {"token"}, else `?token=`."""
    presented = auth.get("token") if isinstance(auth, dict) else None
    if presented is None:
        presented = query.get("token")
    return presented if isinstance(presented, str) else None


def message(sender: str, text: str, channel: str, message_id: str | None = None, key: bytes = b"") -> Message:
    """A user message as Rasa reads it: `/intent` text is a payload (a button), anything else text;
    a message without an id gets a fresh one. `text` has been through the text gate already."""
    payload = text if text.startswith("/") else None
    return Message(channel=channel, conversation_id=conversation_id(sender, key),
                   message_id=message_id or uuid.uuid4().hex, text="" if payload else text,
                   payload=payload, sender_id=sender)


def rest_reply(recipient: str, reply: Reply) -> dict[str, Any]:
    """One element of the REST channel's answer."""
    out: dict[str, Any] = {"recipient_id": recipient}
    if reply.text or not (reply.image or reply.custom):
        out["text"] = reply.text
    if reply.buttons:
        out["buttons"] = [{"title": b.title, "payload": b.payload} for b in reply.buttons]
    if reply.image:
        out["image"] = reply.image
    if reply.custom:
        out["custom"] = reply.custom
    return out


def bot_uttered(reply: Reply) -> dict[str, Any]:
    """The socket.io channel's `bot_uttered` event: buttons as quick replies."""
    out: dict[str, Any] = {"text": reply.text} if reply.text or not (reply.image or reply.custom) else {}
    if reply.buttons:
        out["quick_replies"] = [{"content_type": "text", "title": b.title, "payload": b.payload}
                                for b in reply.buttons]
    if reply.image:
        out["attachment"] = {"type": "image", "payload": {"src": reply.image}}
    if reply.custom:
        out.update(reply.custom)  # Rasa's socket.io channel sends a custom response's keys as they are
    return out


def entities(text: str, patterns: Mapping[str, str]) -> list[dict[str, Any]]:
    """The domain's regex entities in `text`, as Rasa's RegexEntityExtractor reports them."""
    found = []
    for name, pattern in patterns.items():
        for m in re.finditer(pattern, text):
            found.append({"entity": name, "value": m.group(0), "start": m.start(), "end": m.end(),
                          "confidence_entity": 1.0, "extractor": "RegexEntityExtractor"})
    return found


def parse_answer(text: str, parse: Parse, patterns: Mapping[str, str]) -> dict[str, Any]:
    """`POST /model/parse`'s answer."""
    return {
        "text": text,
        "intent": {"name": parse.intent, "confidence": parse.confidence},
        "intent_ranking": [{"name": r.name, "confidence": r.confidence} for r in parse.ranking],
        "entities": parse.spans or entities(text, patterns),
        "out_of_scope": parse.out_of_scope,
    }
