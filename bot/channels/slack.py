"""Slack Events API + interactivity channel.

Every request is signed: `X-Slack-Signature` is "v0=" + hex HMAC-SHA256(signing secret,
"v0:{X-Slack-Request-Timestamp}:{raw body}"), and a timestamp more than five minutes off is a replay.
Events arrive as JSON (`url_verification`, `event_callback`); button clicks arrive at the same URL as a
form-encoded `payload=<json>` (`block_actions`), signed over the raw form body. Slack redelivers an
event it did not see acknowledged within 3 s with `X-Slack-Retry-Num`. A retry is parsed like the
first delivery: it carries the same message id, so the pipeline's reply cache and the hub's send-once
key make it a no-op when the first delivery got through, and the only copy when it did not (our
server was down): nothing is answered twice and nothing is dropped.

A conversation is a thread: (channel, thread_ts or ts), and replies go into that thread. Web API
errors come back as HTTP 200 with `{"ok": false, "error": ...}`, so the body is checked too.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import httpx

from bot.channels.base import (
    UNSUPPORTED,
    Answer,
    ChannelError,
    Conversation,
    Handshake,
    InboundRequest,
    RateLimiter,
    buttons_as_text,
    load_json,
    split_text,
)
from bot.config import Settings, reveal
from bot.outbound import Again, Backoff, RetryPolicy, retry_after, status_hint
from bot.types import Button, Message, Reply

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "x-slack-signature"
TIMESTAMP_HEADER = "x-slack-request-timestamp"
VERSION = "v0"
REPLAY_WINDOW_S = 5 * 60
TEXT_LIMIT = 3000  # a section block's text: at most 3000 characters
BUTTON_TEXT_LIMIT = 75  # button `text` (plain_text)
BUTTON_VALUE_LIMIT = 2000  # button `value`
ACTIONS_LIMIT = 25  # elements in one actions block
RATE_PER_S = 1.0  # chat.postMessage: about one message per second per channel
RATELIMITED_ATTEMPTS = 4
RATELIMITED_WAIT_S = 1.0  # when a `ratelimited` answer has no Retry-After
MAX_LIMITERS = 1024  # per-channel limiters kept (least recently used dropped first)
CONVERSATION_ID_LIMIT = 64
# Message subtypes that are a person writing; every other subtype (bot_message, message_changed,
# message_deleted, channel_join...) is an echo or a service message.
USER_SUBTYPES = (None, "file_share", "thread_broadcast")
# <@U123>, <@U123|name>, <#C123|general>, <!here>, <https://x|label>, <mailto:a@b.c|a@b.c>
TOKEN_RE = re.compile(r"<([^<>|]*)(?:\|([^<>]*))?>")
SAFE_ID_RE = re.compile(r"^[A-Za-z0-9_-]+$")
TIMESTAMP_RE = re.compile(r"^[0-9]{1,12}$")  # Unix seconds


class SlackApiError(RuntimeError):
    """The Web API said `ok: false` (other than `ratelimited`, which is retried)."""

    def __init__(self, method: str, error: str) -> None:
        super().__init__(f"Slack {method} failed: {error}")
        self.method, self.error = method, error


class SlackChannel:
    name = "slack"

    def __init__(self, bot_token: str, signing_secret: str, http: httpx.AsyncClient, *,
                 api_url: str = "https://slack.com/api", bot_user_id: str | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.bot_token = bot_token
        self.signing_secret = signing_secret.encode()
        self.api_url = api_url.rstrip("/")
        self.http = http
        self.bot_user_ids = {bot_user_id} if bot_user_id else set()
        self.clock = clock
        self._limiters: OrderedDict[str, RateLimiter] = OrderedDict()
        self.retry = RetryPolicy.of(ratelimited, log, ratelimited=Backoff(RATELIMITED_ATTEMPTS))

    # inbound

    async def parse(self, request: InboundRequest) -> list[Message]:
        signature = request.headers.get(SIGNATURE_HEADER)
        timestamp = request.headers.get(TIMESTAMP_HEADER)
        if not signature or not timestamp:
            raise ChannelError(401, "bad_signature", f"missing {SIGNATURE_HEADER} or {TIMESTAMP_HEADER}")
        if not TIMESTAMP_RE.match(timestamp):  # int() would take "١٧١٢", " 1_712 " or 400 digits
            raise ChannelError(401, "bad_signature", "request timestamp is not an integer")
        sent_at = int(timestamp)
        if abs(self.clock() - sent_at) > REPLAY_WINDOW_S:
            raise ChannelError(401, "stale_timestamp", "request timestamp is outside the 5 minute window")
        body = request.body
        if not self._signed(timestamp, body, signature):
            raise ChannelError(403, "bad_signature", "signature does not match")
        data = self._decode(request, body)
        kind = data.get("type")
        if kind == "url_verification":
            challenge = data.get("challenge")
            if not isinstance(challenge, str):
                raise ChannelError(400, "invalid_payload", "url_verification without a challenge")
            raise Handshake(Answer({"challenge": challenge}))
        try:
            if kind == "event_callback":
                msg = self._event(data)
            elif kind == "block_actions":
                msg = self._action(data)
            else:  # app_rate_limited, view_submission, shortcuts...: nothing to answer
                return []
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ChannelError(400, "invalid_payload", f"malformed {kind}: {exc!r}") from exc
        return [msg] if msg is not None else []

    def _signed(self, timestamp: str, body: bytes, signature: str) -> bool:
        base = f"{VERSION}:{timestamp}:".encode() + body
        expected = f"{VERSION}=" + hmac.new(self.signing_secret, base, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected.encode(), signature.encode("utf-8", "surrogateescape"))

    @staticmethod
    def _decode(request: InboundRequest, body: bytes) -> dict[str, Any]:
        """Events are JSON; interactivity is a form whose single `payload` field is JSON."""
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        try:
            if content_type == "application/x-www-form-urlencoded":
                form = parse_qs(body.decode(), keep_blank_values=True, strict_parsing=True)
                payloads = form.get("payload", [])
                if len(payloads) != 1:
                    raise ChannelError(400, "invalid_payload", "form body without a single payload field")
                data = load_json(payloads[0])
            else:
                data = load_json(body)
        except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError is a ValueError
            raise ChannelError(400, "invalid_payload", "body is not JSON (or a form with a JSON payload)") \
                from exc
        if not isinstance(data, dict) or not isinstance(data.get("type"), str):
            raise ChannelError(400, "invalid_payload", "not a Slack event or interaction payload")
        return data

    def _event(self, data: dict[str, Any]) -> Message | None:
        event = data["event"]
        if not isinstance(event, dict):
            raise TypeError("event is not an object")
        own = self.bot_user_ids | {str(a["user_id"]) for a in data.get("authorizations") or []
                                   if isinstance(a, dict) and a.get("is_bot") and a.get("user_id")}
        kind = event.get("type")
        if kind not in ("message", "app_mention") or event.get("subtype") not in USER_SUBTYPES:
            return None
        user = event.get("user")
        if event.get("bot_id") or not user or user in own:
            return None  # our own replies and other bots' messages come back as events too
        channel, ts = str(event["channel"]), str(event["ts"])
        thread_ts = str(event.get("thread_ts") or ts)
        metadata: dict[str, Any] = {"channel": channel, "thread_ts": thread_ts, "ts": ts}
        text = plain_text(str(event.get("text") or ""), own)
        if not text:
            files = event.get("files")
            if not files:
                return None  # e.g. a bare @mention
            text, metadata[UNSUPPORTED] = "", file_kind(files)
        message_id = str(event.get("client_msg_id") or data["event_id"])
        return Message(channel=self.name, conversation_id=conversation_id(channel, thread_ts),
                       message_id=message_id, text=text, sender_id=str(user), metadata=metadata)

    def _action(self, data: dict[str, Any]) -> Message | None:
        container = data.get("container") or {}
        actions = data.get("actions") or []
        if container.get("type") != "message" or not actions:
            return None  # a button in a modal or App Home: no thread to answer in
        action = actions[0]
        value = action.get("value")
        if action.get("type") != "button" or not isinstance(value, str) or not value:
            return None
        message = data.get("message") or {}
        channel = str(container.get("channel_id") or data["channel"]["id"])
        message_ts = str(container.get("message_ts") or message["ts"])
        thread_ts = str(container.get("thread_ts") or message.get("thread_ts") or message_ts)
        message_id = str(data.get("trigger_id") or f"{message_ts}-{action['action_ts']}")
        return Message(channel=self.name, conversation_id=conversation_id(channel, thread_ts),
                       message_id=message_id, payload=value, sender_id=str(data["user"]["id"]),
                       metadata={"channel": channel, "thread_ts": thread_ts})

    def conversation(self, message: Message) -> Conversation:
        md = message.metadata
        return Conversation(message.conversation_id, {"channel": md["channel"], "thread_ts": md["thread_ts"]})

    # outbound

    async def send(self, conversation: Conversation, replies: list[Reply]) -> None:
        channel, thread_ts = conversation.address["channel"], conversation.address["thread_ts"]
        for reply in replies:
            native = native_buttons(reply.buttons)
            text = reply.text if native or not reply.buttons else buttons_as_text(reply)
            parts = split_text(escape(text), TEXT_LIMIT)
            for i, part in enumerate(parts):
                body: dict[str, Any] = {"channel": channel, "thread_ts": thread_ts, "text": part}
                if native and i == len(parts) - 1:
                    body["blocks"] = [section(part), actions_block(reply.buttons)]
                await self._post(channel, body)
            if native and not parts:  # buttons alone: the titles are the notification's fallback
                fallback = escape(", ".join(b.title for b in reply.buttons))[:TEXT_LIMIT]
                await self._post(channel, {"channel": channel, "thread_ts": thread_ts, "text": fallback,
                                           "blocks": [actions_block(reply.buttons)]})

    async def _post(self, channel: str, body: dict[str, Any]) -> dict[str, Any]:
        resp = await self.retry.request(self.http, "POST", f"{self.api_url}/chat.postMessage",
                                        limiter=self._limiter(channel), json=body,
                                        headers={"Authorization": f"Bearer {self.bot_token}"})
        answer = web_api_answer(resp)
        if not isinstance(answer, dict):
            raise SlackApiError("chat.postMessage", "invalid_response")
        if answer.get("ok") is not True:  # `ratelimited` too, once its retries are spent
            raise SlackApiError("chat.postMessage", str(answer.get("error") or "unknown_error"))
        return answer

    def _limiter(self, channel: str) -> RateLimiter:
        limiter = self._limiters.pop(channel, None) or RateLimiter(RATE_PER_S)
        self._limiters[channel] = limiter
        while len(self._limiters) > MAX_LIMITERS:
            self._limiters.popitem(last=False)
        return limiter


def web_api_answer(resp: httpx.Response) -> Any:
    """The Web API's JSON answer, None when it is not JSON."""
    try:
        return resp.json()
    except ValueError:
        return None


def ratelimited(resp: httpx.Response) -> Again | None:
    """The retry hook: 429 and 5xx as usual, and `ok: false, error: ratelimited` (answered with
    HTTP 200) after its Retry-After, else a second."""
    again = status_hint(resp)
    if again is not None or not resp.is_success:
        return again
    answer = web_api_answer(resp)
    if isinstance(answer, dict) and answer.get("ok") is False and answer.get("error") == "ratelimited":
        wait = retry_after(resp)
        return Again("ratelimited", RATELIMITED_WAIT_S if wait is None else wait, "ratelimited")
    return None


def conversation_id(channel: str, thread_ts: str) -> str:
    """slack-<channel>-<thread ts with _ for .>; ids with other characters or too long are hashed."""
    readable = f"slack-{channel}-{thread_ts.replace('.', '_')}"
    if SAFE_ID_RE.match(readable) and len(readable) <= CONVERSATION_ID_LIMIT:
        return readable
    return "slack-" + hashlib.sha1(f"{channel}:{thread_ts}".encode()).hexdigest()


def plain_text(text: str, own_ids: set[str]) -> str:
    """Slack's markup back to what the person typed: auto-linked e-mails and URLs become their text
    (forms need the bare address), mentions of this bot vanish, and &amp; &lt; &gt; are unescaped."""

    def token(m: re.Match[str]) -> str:
        target, label = m.group(1), m.group(2)
        if target.startswith("@"):
            return "" if target[1:] in own_ids else "@" + (label or target[1:])
        if target.startswith("#"):
            return "#" + (label or target[1:])
        if target.startswith("!"):
            return label or "@" + target[1:].split("^")[0]
        if label:
            return label
        return target.removeprefix("mailto:")

    text = TOKEN_RE.sub(token, text)
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return re.sub(r"[ \t]+", " ", text).strip()


def escape(text: str) -> str:
    """Slack reads &, < and > in message text as markup: send them escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def file_kind(files: Any) -> str:
    first = files[0] if isinstance(files, list) and files and isinstance(files[0], dict) else {}
    major = str(first.get("mimetype") or "").split("/")[0]
    return major if major in ("image", "audio", "video") else "file"


def native_buttons(buttons: list[Button]) -> bool:
    return bool(buttons) and len(buttons) <= ACTIONS_LIMIT and all(
        0 < len(b.payload) <= BUTTON_VALUE_LIMIT and b.title.strip() for b in buttons)


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def actions_block(buttons: list[Button]) -> dict[str, Any]:
    elements = []
    for i, b in enumerate(buttons):
        title = b.title if len(b.title) <= BUTTON_TEXT_LIMIT else b.title[:BUTTON_TEXT_LIMIT - 1] + "…"
        elements.append({"type": "button", "action_id": f"reply_button_{i}", "value": b.payload,
                         "text": {"type": "plain_text", "text": title, "emoji": True}})
    return {"type": "actions", "elements": elements}


def from_settings(settings: Settings, http: httpx.AsyncClient) -> SlackChannel | None:
    """None when the channel's secrets are not configured."""
    if not settings.slack.bot_token:
        return None
    if not settings.slack.signing_secret:
        log.error("slack_bot_token is set but slack_signing_secret is not: Slack requests could not be "
                  "verified, so the channel stays off")
        return None
    return SlackChannel(
        reveal(settings.slack.bot_token) or "",
        reveal(settings.slack.signing_secret) or "",
        http,
        api_url=settings.slack.api_url,
    )
