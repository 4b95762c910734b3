"""Telegram Bot API webhook channel.

Telegram signs nothing: `setWebhook(secret_token=...)` makes it send that secret back in the
`X-Telegram-Bot-Api-Secret-Token` header, and that header is the only proof a request is Telegram's,
so the channel refuses to run without it. Buttons are inline keyboards whose `callback_data` is our
payload; a press arrives as a `callback_query` that must be answered (or the client keeps spinning).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
from typing import Any

import httpx

from bot.channels.base import (
    UNSUPPORTED,
    ChannelError,
    Conversation,
    InboundRequest,
    RateLimiter,
    buttons_as_text,
    load_json,
    platform_id,
    split_text,
)
from bot.config import Settings, reveal
from bot.outbound import Again, Backoff, RetryPolicy, status_hint
from bot.types import Message, Reply

log = logging.getLogger(__name__)

SECRET_HEADER = "x-telegram-bot-api-secret-token"
SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")  # what setWebhook accepts as secret_token
TEXT_LIMIT = 4096  # sendMessage: 1-4096 characters
CALLBACK_DATA_LIMIT = 64  # InlineKeyboardButton.callback_data: 1-64 bytes
RATE_PER_S = 25.0  # the Bot FAQ: about 30 messages per second overall; stay under it
FLOOD_ATTEMPTS = 8  # tries of a message Telegram's flood control keeps refusing, each after its wait
# Message fields that carry content we cannot read yet; other text-less messages (members
# joining, pinned messages...) are service messages and ignored.
MEDIA_KINDS = ("photo", "voice", "sticker", "document", "video", "video_note", "animation", "audio",
               "location", "venue", "contact", "poll", "dice")


class TelegramChannel:
    name = "telegram"

    def __init__(self, token: str, secret_token: str, http: httpx.AsyncClient, *,
                 api_url: str = "https://api.telegram.org") -> None:
        self.secret_token = secret_token
        self.base = f"{api_url.rstrip('/')}/bot{token}"
        self.http = http
        self.limiter = RateLimiter(RATE_PER_S)
        self.retry = RetryPolicy.of(flood_control, log, flood=Backoff(FLOOD_ATTEMPTS))
        self._answer_retry = RetryPolicy.of(logger=log, http=Backoff(attempts=2))
        self._tasks: set[asyncio.Task[None]] = set()

    async def parse(self, request: InboundRequest) -> list[Message]:
        given = request.headers.get(SECRET_HEADER)
        if not given:
            raise ChannelError(401, "bad_signature", f"missing {SECRET_HEADER} header")
        if not hmac.compare_digest(given.encode(), self.secret_token.encode()):
            raise ChannelError(403, "bad_signature", "secret token does not match")
        try:
            update = load_json(request.body)
        except ValueError as exc:  # also bad UTF-8, NaN, too deep
            raise ChannelError(400, "invalid_payload", "body is not JSON") from exc
        if not isinstance(update, dict) or not _is_id(update.get("update_id")):
            raise ChannelError(400, "invalid_payload", "not a Telegram Update (no update_id)")
        message_id = str(update["update_id"])
        try:
            if isinstance(update.get("message"), dict):
                msg = self._message(message_id, update["message"])
            elif isinstance(update.get("callback_query"), dict):
                msg = self._callback(message_id, update["callback_query"])
            else:  # edited_message, channel_post, my_chat_member...: nothing to answer
                return []
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ChannelError(400, "invalid_payload", f"malformed update: {exc!r}") from exc
        return [msg] if msg is not None else []

    def _message(self, message_id: str, m: dict[str, Any]) -> Message | None:
        sender = m.get("from") or {}
        if not isinstance(sender, dict):
            raise TypeError("from is not a User")
        if sender.get("is_bot"):
            return None
        chat_id = chat_id_of(m["chat"]["id"])
        metadata: dict[str, Any] = {"chat_id": chat_id}
        text = m.get("text")
        if not isinstance(text, str) or not text.strip():
            kind = next((k for k in MEDIA_KINDS if k in m), None)
            if kind is None:
                return None
            text, metadata[UNSUPPORTED] = "", kind
        return Message(channel=self.name, conversation_id=conversation_id(chat_id), message_id=message_id,
                       text=text, sender_id=platform_id(sender["id"], "from.id") if "id" in sender else None,
                       metadata=metadata)

    def _callback(self, message_id: str, q: dict[str, Any]) -> Message | None:
        query_id = platform_id(q["id"], "callback_query.id")
        data = q.get("data")
        sender_id = chat_id_of(q["from"]["id"])
        source = q.get("message")  # absent for buttons on inline-mode messages: answer in private
        chat_id = chat_id_of(source["chat"]["id"]) if isinstance(source, dict) else sender_id
        self._answer_later(query_id)
        if not isinstance(data, str) or not data:
            return None  # a game button: nothing of ours
        return Message(channel=self.name, conversation_id=conversation_id(chat_id), message_id=message_id,
                       payload=data, sender_id=str(sender_id),
                       metadata={"chat_id": chat_id, "callback_query_id": query_id})

    def _answer_later(self, query_id: str) -> None:
        """Stop the button's progress indicator without holding up the webhook's answer."""
        task = asyncio.get_running_loop().create_task(self._answer(query_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, query_id: str) -> None:
        try:
            await self._answer_retry.request(self.http, "POST", f"{self.base}/answerCallbackQuery",
                                             json={"callback_query_id": query_id})
        except httpx.HTTPError as exc:  # e.g. a redelivery whose query was answered already
            status = (exc.response.status_code if isinstance(exc, httpx.HTTPStatusError)
                      else type(exc).__name__)
            log.info("answerCallbackQuery failed: %s", status)  # str(exc) names the URL: the bot token

    async def drain(self) -> None:
        """Wait for pending callback answers (shutdown, tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def conversation(self, message: Message) -> Conversation:
        return Conversation(message.conversation_id, {"chat_id": message.metadata["chat_id"]})

    async def send(self, conversation: Conversation, replies: list[Reply]) -> None:
        chat_id = conversation.address["chat_id"]
        for reply in replies:
            native = bool(reply.buttons) and all(
                0 < len(b.payload.encode()) <= CALLBACK_DATA_LIMIT for b in reply.buttons)
            text = reply.text if native or not reply.buttons else buttons_as_text(reply)
            parts = split_text(text, TEXT_LIMIT)
            if not parts and native:  # buttons need some text to hang on
                parts, native = split_text(buttons_as_text(reply), TEXT_LIMIT), False
            for i, part in enumerate(parts):
                body: dict[str, Any] = {"chat_id": chat_id, "text": part}
                if native and i == len(parts) - 1:
                    body["reply_markup"] = {"inline_keyboard": [
                        [{"text": b.title, "callback_data": b.payload}] for b in reply.buttons]}
                await self.retry.request(self.http, "POST", f"{self.base}/sendMessage", limiter=self.limiter,
                                         json=body)


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**63


def chat_id_of(value: Any) -> int:
    """Chat and user ids are integers of at most 52 bits (64-bit safe): nothing else is one."""
    if not _is_id(value):
        raise ValueError("chat id is not an integer")
    return int(value)


def conversation_id(chat_id: int) -> str:
    """Chat ids are integers (negative for groups): always within [A-Za-z0-9_-] and 64 chars."""
    return f"telegram-{chat_id}"


def retry_after(resp: httpx.Response) -> float | None:
    """Flood control's wait: a 429 says it in the body's `parameters.retry_after`, not (always) in a
    Retry-After header."""
    try:
        value = resp.json().get("parameters", {}).get("retry_after")
    except (ValueError, AttributeError):
        return None
    return float(value) if isinstance(value, int | float) and value >= 0 else None


def flood_control(resp: httpx.Response) -> Again | None:
    """The retry hook: a 429 with Telegram's own wait is flood control (its own, longer budget);
    other 429s and 5xx as usual."""
    wait = retry_after(resp) if resp.status_code == 429 else None
    return Again("flood", wait, "flood control") if wait is not None else status_hint(resp)


def from_settings(settings: Settings, http: httpx.AsyncClient) -> TelegramChannel | None:
    """None when the channel's secrets are not configured."""
    if not settings.telegram.token:
        return None
    secret = reveal(settings.telegram.secret_token)
    if not secret or not SECRET_RE.match(secret):
        log.error("telegram_token is set but telegram_secret_token is missing or not 1-256 of "
                  "[A-Za-z0-9_-]: Telegram webhooks could not be verified, so the channel stays off")
        return None
    return TelegramChannel(
        reveal(settings.telegram.token) or "", secret, http, api_url=settings.telegram.api_url
    )
