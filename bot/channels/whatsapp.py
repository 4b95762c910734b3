"""WhatsApp Business Platform (Cloud API) channel.

Webhooks are Meta's (see `bot.channels.meta`): object `whatsapp_business_account`, and customer
messages in `entry[].changes[field=messages].value.messages[]`, delivery `statuses` beside them
(ignored). One WhatsApp Business Account may hold several numbers that share the webhook: messages to
another number than ours are left alone. A conversation is one customer (`from`, their WhatsApp id).

Replies go through `POST /{phone-number-id}/messages`. Buttons are native where WhatsApp allows:
1-3 buttons as reply buttons (title at most 20 characters, body at most 1024: a longer text is sent
first and its closing part becomes the body), 4-10 as a list message (one section; its opening
button's label is `list_button`), more than 10 (or ids too long) as numbered text.
"""

from __future__ import annotations

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

OBJECT = "whatsapp_business_account"
TEXT_LIMIT = 4096  # text.body
BUTTON_BODY_LIMIT = 1024  # interactive reply buttons: body.text
BUTTONS_LIMIT = 3  # reply buttons per message
BUTTON_TITLE_LIMIT = 20
BUTTON_ID_LIMIT = 256
LIST_BODY_LIMIT = 4096  # interactive list: body.text
LIST_ROWS_LIMIT = 10  # rows across all sections
ROW_TITLE_LIMIT = 24
ROW_DESCRIPTION_LIMIT = 72
ROW_ID_LIMIT = 200
LIST_BUTTON_LIMIT = 20  # the label of the button that opens the list
RATE_PER_S = 20.0  # well under a number's default throughput (80 messages per second)
MEDIA_KINDS = {"image": "image", "audio": "audio", "video": "video", "sticker": "sticker",
               "document": "file", "location": "location", "contacts": "contact"}
# Not a customer writing: reactions to a message, number changes, the "start chat" welcome request.
IGNORED_TYPES = ("reaction", "system", "request_welcome")


class WhatsAppChannel:
    name = "whatsapp"

    def __init__(self, token: str, phone_number_id: str, app_secret: str, http: httpx.AsyncClient, *,
                 verify_token: str | None = None, graph_url: str = "https://graph.facebook.com/v21.0",
                 list_button: str = "Options", base_delay: float = 0.5) -> None:
        self.token = token
        self.phone_number_id = phone_number_id
        self.app_secret = app_secret
        self.verify_token = verify_token
        self.url = f"{graph_url.rstrip('/')}/{phone_number_id}/messages"
        self.http = http
        self.list_button = meta.truncate(list_button, LIST_BUTTON_LIMIT)
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
                for change in meta.objects(entry, "changes"):
                    if change.get("field") != "messages":
                        continue  # template status, account updates...
                    value = change.get("value")
                    if not isinstance(value, dict):
                        raise TypeError("change value is not an object")
                    number = (value.get("metadata") or {}).get("phone_number_id")
                    if number is not None and str(number) != self.phone_number_id:
                        log.info("ignoring WhatsApp messages to another number (%s)", number)
                        continue
                    for m in meta.objects(value, "messages"):  # `statuses` are receipts: ignored
                        msg = self._message(m)
                        if msg is not None:
                            messages.append(msg)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ChannelError(400, "invalid_payload", f"malformed WhatsApp notification: {exc!r}") from exc
        return messages

    def _message(self, m: dict[str, Any]) -> Message | None:
        wa_id, message_id, kind = str(m["from"]), str(m["id"]), m.get("type")
        if not wa_id or not message_id:
            raise ValueError("message without from or id")
        text, payload = "", None
        metadata: dict[str, Any] = {"wa_id": wa_id}
        if kind == "text":
            text = str(m["text"]["body"]).strip()
            if not text:
                return None
        elif kind == "interactive":
            interactive = m["interactive"]
            reply = interactive.get(interactive.get("type"))  # button_reply or list_reply
            if interactive.get("type") not in ("button_reply", "list_reply") or not isinstance(reply, dict):
                metadata[UNSUPPORTED] = str(interactive.get("type") or "interactive")  # e.g. a Flow's reply
            else:
                payload, text = str(reply["id"]), str(reply.get("title") or "")
        elif kind == "button":  # a template's quick-reply button
            payload, text = str(m["button"]["payload"]), str(m["button"].get("text") or "")
        elif kind in IGNORED_TYPES:
            return None
        else:
            media = m.get(kind) if isinstance(kind, str) else None
            voice = kind == "audio" and isinstance(media, dict) and media.get("voice") is True
            metadata[UNSUPPORTED] = "voice" if voice else MEDIA_KINDS.get(str(kind), "unknown")
        return Message(channel=self.name, conversation_id=meta.conversation_id(self.name, wa_id),
                       message_id=message_id, text=text, payload=payload, sender_id=wa_id, metadata=metadata)

    def conversation(self, message: Message) -> Conversation:
        return Conversation(message.conversation_id, {"wa_id": message.metadata["wa_id"]})

    # outbound

    async def send(self, conversation: Conversation, replies: list[Reply]) -> None:
        to = conversation.address["wa_id"]
        for reply in replies:
            if reply.buttons and len(reply.buttons) <= BUTTONS_LIMIT and reply_buttons_fit(reply.buttons):
                head, body = closing_part(reply, BUTTON_BODY_LIMIT)
                await self._texts(to, head)
                await self._post(to, "interactive", {"type": "button", "body": {"text": body},
                                                     "action": {"buttons": reply_buttons(reply.buttons)}})
            elif reply.buttons and len(reply.buttons) <= LIST_ROWS_LIMIT and list_rows_fit(reply.buttons):
                head, body = closing_part(reply, LIST_BODY_LIMIT)
                await self._texts(to, head)
                await self._post(to, "interactive", {"type": "list", "body": {"text": body}, "action": {
                    "button": self.list_button, "sections": [{"rows": list_rows(reply.buttons)}]}})
            else:
                await self._texts(to, split_text(buttons_as_text(reply), TEXT_LIMIT))

    async def _texts(self, to: str, parts: list[str]) -> None:
        for part in parts:
            await self._post(to, "text", {"body": part})

    async def _post(self, to: str, kind: str, content: dict[str, Any]) -> None:
        body = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to, "type": kind,
                kind: content}
        await meta.graph_post(self.http, self.url, body, limiter=self.limiter, retry=self.retry,
                              headers={"Authorization": f"Bearer {self.token}"})


def closing_part(reply: Reply, limit: int) -> tuple[list[str], str]:
    """Text parts to send first, and the closing part (at most `limit`) the buttons hang on: nothing
    is repeated and nothing is lost."""
    parts = split_text(reply.text, TEXT_LIMIT)
    if not parts:  # buttons need a body: their titles say what they are
        return [], meta.truncate(" · ".join(b.title for b in reply.buttons), limit)
    last = parts.pop()
    if len(last) > limit:
        cut = tail_start(last, limit)
        parts.append(last[:cut].rstrip())
        last = last[cut:].lstrip()
    return parts, last


def tail_start(text: str, limit: int) -> int:
    """Where the longest ending of at most `limit` characters begins: at a paragraph, else a line, else
    a word boundary (split_text's preferences, from the other end)."""
    earliest = len(text) - limit
    for sep in ("\n\n", "\n", " "):
        i = text.find(sep, earliest)
        if i != -1 and len(text) - i - len(sep) > limit // 3:
            return i + len(sep)
    return earliest


def unique(values: list[str]) -> bool:
    return len(set(values)) == len(values)


def reply_buttons_fit(buttons: list[Button]) -> bool:
    """WhatsApp refuses empty or duplicate titles and ids, and ids over 256 characters."""
    titles = [meta.truncate(b.title, BUTTON_TITLE_LIMIT) for b in buttons]
    return all(titles) and unique(titles) and unique([b.payload for b in buttons]) and all(
        0 < len(b.payload) <= BUTTON_ID_LIMIT for b in buttons)


def reply_buttons(buttons: list[Button]) -> list[dict[str, Any]]:
    return [{"type": "reply", "reply": {"id": b.payload, "title": meta.truncate(b.title, BUTTON_TITLE_LIMIT)}}
            for b in buttons]


def list_rows_fit(buttons: list[Button]) -> bool:
    return all(b.title.strip() for b in buttons) and unique([b.payload for b in buttons]) and all(
        0 < len(b.payload) <= ROW_ID_LIMIT for b in buttons)


def list_rows(buttons: list[Button]) -> list[dict[str, Any]]:
    """A row title holds 24 characters: a longer one is cut, and the description shows it whole."""
    rows = []
    for b in buttons:
        row = {"id": b.payload, "title": meta.truncate(b.title, ROW_TITLE_LIMIT)}
        if len(b.title.strip()) > ROW_TITLE_LIMIT:
            row["description"] = meta.truncate(b.title, ROW_DESCRIPTION_LIMIT)
        rows.append(row)
    return rows


def from_settings(settings: Settings, http: httpx.AsyncClient) -> WhatsAppChannel | None:
    """None when the channel's secrets are not configured."""
    token, secret, number = (reveal(settings.whatsapp.token), reveal(settings.meta.app_secret),
                             settings.whatsapp.phone_number_id)
    if not token:
        return None
    if not secret or not number:
        missing = " and ".join(n for n, v in (("meta_app_secret", secret),
                                              ("whatsapp_phone_number_id", number)) if not v)
        log.error("whatsapp_token is set but %s is not: WhatsApp webhooks could not be verified or "
                  "answered, so the channel stays off", missing)
        return None
    if not settings.meta.verify_token:
        log.warning("meta_verify_token is not set: Meta cannot subscribe the WhatsApp webhook URL")
    return WhatsAppChannel(token, number, secret, http, verify_token=reveal(settings.meta.verify_token) or "",
                           graph_url=settings.meta.graph_url)
