"""Facebook Messenger Platform channel (one Page).

Webhooks are Meta's (see `bot.channels.meta`): object `page`, events in `entry[].messaging[]`:
`message` (text, a quick reply's payload, attachments), `postback` (buttons, Get Started, persistent
menu) and receipts (`delivery`, `read`), reactions, echoes of the Page's own messages... which are
ignored, as is the handover protocol's `standby` list. A conversation is one person: their
page-scoped id (PSID), or the chat plugin's `user_ref` for guests without one.

Replies go through the Send API (`POST /me/messages?access_token=<page token>`) as RESPONSE
messages: text of at most 2000 characters, buttons as up to 13 quick replies (title cut at 20
characters, payload at most 1000) on the last part; more or longer ones go out as numbered text.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import httpx

from bot.channels import meta
from bot.channels.base import (
    UNSUPPORTED,
    ChannelError,
    Conversation,
    InboundRequest,
    RateLimiter,
    buttons_as_text,
    split_text,
)
from bot.config import Settings, reveal
from bot.types import Button, Message, Reply

log = logging.getLogger(__name__)

OBJECT = "page"
TEXT_LIMIT = 2000  # message.text: UTF-8, at most 2000 characters
QUICK_REPLIES_LIMIT = 13
QUICK_REPLY_TITLE_LIMIT = 20
QUICK_REPLY_PAYLOAD_LIMIT = 1000
RATE_PER_S = 20.0  # a conservative pace for one Page's Send API calls
ATTACHMENT_KINDS = {"image": "image", "audio": "audio", "video": "video", "file": "file",
                    "location": "location", "fallback": "link", "template": "template"}


class MessengerChannel:
    name = "messenger"

    def __init__(self, page_token: str, app_secret: str, http: httpx.AsyncClient, *,
                 verify_token: str | None = None, graph_url: str = "https://graph.facebook.com/v21.0",
                 base_delay: float = 0.5) -> None:
        self.page_token = page_token
        self.app_secret = app_secret
        self.verify_token = verify_token
        self.url = f"{graph_url.rstrip('/')}/me/messages"
        self.http = http
        self.retry = meta.retry_policy(base_delay)
        self.limiter = RateLimiter(RATE_PER_S)

    # inbound

    async def parse(self, request: InboundRequest) -> list[Message]:
        if request.method == "GET":
            meta.check_handshake(request, self.verify_token)
        body = meta.verified_body(request, self.app_secret)
        messages: list[Message] = []
        try:
            for entry in meta.entries(body, OBJECT):
                for event in meta.objects(entry, "messaging"):
                    msg = self._event(event)
                    if msg is not None:
                        messages.append(msg)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ChannelError(400, "invalid_payload", f"malformed Messenger notification: {exc!r}") from exc
        return messages

    def _event(self, event: dict[str, Any]) -> Message | None:
        message, postback = event.get("message"), event.get("postback")
        if isinstance(message, dict):
            if message.get("is_echo"):
                return None  # the Page's own message (ours, or an agent's in the Page inbox)
            message_id, text, payload = str(message["mid"]), message.get("text"), None
            metadata: dict[str, Any] = {}
            quick_reply = message.get("quick_reply")
            if isinstance(quick_reply, dict) and quick_reply.get("payload"):
                payload = str(quick_reply["payload"])
            if not isinstance(text, str) or not text.strip():
                attachments = meta.objects(message, "attachments")
                if payload is None and not attachments:
                    return None
                text = ""
                if attachments:
                    kind = str(attachments[0].get("type"))
                    metadata[UNSUPPORTED] = "sticker" if message.get("sticker_id") else \
                        ATTACHMENT_KINDS.get(kind, "unknown")
        elif isinstance(postback, dict):
            payload = postback.get("payload")
            if not isinstance(payload, str) or not payload:
                return None  # another app's button: only its title reaches us
            text, metadata = str(postback.get("title") or ""), {}
            message_id = str(postback.get("mid") or "") or postback_id(event, payload)
        else:  # delivery, read, reaction, optin, referral...: nothing to answer
            return None
        recipient, raw_id = sender(event)
        metadata["recipient"] = recipient
        return Message(channel=self.name, conversation_id=meta.conversation_id(self.name, raw_id),
                       message_id=message_id, text=text.strip(), payload=payload, sender_id=raw_id,
                       metadata=metadata)

    def conversation(self, message: Message) -> Conversation:
        return Conversation(message.conversation_id, {"recipient": dict(message.metadata["recipient"])})

    # outbound

    async def send(self, conversation: Conversation, replies: list[Reply]) -> None:
        recipient = conversation.address["recipient"]
        for reply in replies:
            native = quick_replies_fit(reply.buttons)
            text = reply.text if native or not reply.buttons else buttons_as_text(reply)
            parts = split_text(text, TEXT_LIMIT)
            if native and not parts:  # quick replies hang on a text: their titles say what they are
                parts = [meta.truncate(" · ".join(b.title for b in reply.buttons), TEXT_LIMIT)]
            for i, part in enumerate(parts):
                message: dict[str, Any] = {"text": part}
                if native and i == len(parts) - 1:
                    message["quick_replies"] = quick_replies(reply.buttons)
                body = {"recipient": recipient, "messaging_type": "RESPONSE", "message": message}
                await meta.graph_post(self.http, self.url, body, limiter=self.limiter, retry=self.retry,
                                      params={"access_token": self.page_token})


def sender(event: dict[str, Any]) -> tuple[dict[str, str], str]:
    """The Send API's recipient for this event's sender, and the id a conversation is named by."""
    who = event["sender"]
    if who.get("id"):
        return {"id": str(who["id"])}, str(who["id"])
    if who.get("user_ref"):  # a chat plugin guest
        return {"user_ref": str(who["user_ref"])}, "ref-" + str(who["user_ref"])
    raise ValueError("sender has neither id nor user_ref")


def postback_id(event: dict[str, Any], payload: str) -> str:
    """Older postbacks carry no mid: sender, time and payload name one press (a redelivery repeats all
    three)."""
    who = event["sender"]
    key = f"{who.get('id') or who.get('user_ref')}:{event.get('timestamp')}:{payload}"
    return "postback-" + hashlib.sha1(key.encode()).hexdigest()


def quick_replies_fit(buttons: list[Button]) -> bool:
    return 0 < len(buttons) <= QUICK_REPLIES_LIMIT and all(
        b.title.strip() and 0 < len(b.payload) <= QUICK_REPLY_PAYLOAD_LIMIT for b in buttons)


def quick_replies(buttons: list[Button]) -> list[dict[str, str]]:
    return [{"content_type": "text", "title": meta.truncate(b.title, QUICK_REPLY_TITLE_LIMIT),
             "payload": b.payload} for b in buttons]


def from_settings(settings: Settings, http: httpx.AsyncClient) -> MessengerChannel | None:
    """None when the channel's secrets are not configured."""
    token, secret = reveal(settings.messenger.page_token), reveal(settings.meta.app_secret)
    if not token:
        return None
    if not secret:
        log.error("messenger_page_token is set but meta_app_secret is not: Messenger webhooks could not "
                  "be verified, so the channel stays off")
        return None
    if not settings.meta.verify_token:
        log.warning("meta_verify_token is not set: Meta cannot subscribe the Messenger webhook URL")
    return MessengerChannel(token, secret, http, verify_token=reveal(settings.meta.verify_token) or "",
                            graph_url=settings.meta.graph_url)
