"""Optional bridge to Chatwoot through its Agent Bot webhook and API.

Chatwoot keeps a conversation `pending` while a bot owns it and `open` once humans do, so supportbot
answers incoming messages on pending conversations only, opens the conversation (with a private note
saying why) when the pipeline hands off, and takes the conversation back when an agent sets it to
pending again. Chatwoot gives a webhook 5 seconds, so the webhook only acknowledges and the work runs in
a background task. The route itself is the web layer's (`bot.web.webhooks.chatwoot_router`);
`ChatwootBridge.webhook` is what it answers, framework-free.
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from bot.background import TaskSet
from bot.handoff.service import HandoffError
from bot.outbound import Backoff, RetryPolicy
from bot.payloads import keyed_conversation_id, load_json, platform_id
from bot.textsafety import safe_message
from bot.types import Message, Reply, Session

log = logging.getLogger(__name__)

SENT_TTL_S = 24 * 3600  # far longer than Chatwoot keeps redelivering one event
HANDED_OFF_TTL_S = 30 * 24 * 3600  # cleared on hand-back; the TTL only bounds forgotten conversations
ID_RE = re.compile(r"^[0-9]{1,20}$")  # Chatwoot's account and conversation ids: integers


class Pipeline(Protocol):
    async def handle(self, msg: Message) -> list[Reply]: ...


class SessionReader(Protocol):
    async def get(self, conversation_id: str) -> Session | None: ...


class OnceClaims(Protocol):
    """Claims that make a post happen once (bot/sessions/store.py keeps them in Redis)."""

    async def claim_once(self, name: str, ttl_s: int) -> bool: ...
    async def release_once(self, name: str) -> None: ...


class HandBack(Protocol):
    async def hand_back(self, cid: str, agent: str | None = None, close: bool = False) -> Any: ...


@dataclass
class ChatwootConfig:
    base_url: str  # e.g. https://app.chatwoot.com
    api_token: str  # agent bot access token, from the environment
    webhook_token: str | None = None  # agent bots don't sign webhooks: a shared secret in the URL instead


def _id(value: Any) -> str | None:
    """An account or conversation id as the API paths want it: digits only (they go into URLs that
    carry our API token, so `../` or anything else is refused), else None."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    text = str(value)
    return text if ID_RE.match(text) else None


def _ids(event: dict[str, Any]) -> tuple[str, str] | None:
    """(account id, conversation display id) of a message or conversation event, as the API paths want."""
    conv = event.get("conversation") if str(event.get("event")).startswith("message_") else event
    if not isinstance(conv, dict):
        return None
    account_obj = event.get("account")
    account = (account_obj.get("id") if isinstance(account_obj, dict) else None) or conv.get("account_id")
    messages = conv.get("messages")
    if account is None and isinstance(messages, list):
        account = next((m.get("account_id") for m in messages if isinstance(m, dict)), None)
    account_id, cid = _id(account), _id(conv.get("display_id") or conv.get("id"))
    return (account_id, cid) if account_id is not None and cid is not None else None


def parse_event(body: bytes) -> dict[str, Any]:
    """The webhook's JSON object; ValueError for anything else."""
    event = load_json(body)
    if not isinstance(event, dict):
        raise ValueError("expected a JSON object")
    return event


def conversation_id(account: str, conv: str, key: bytes = b"") -> str:
    return keyed_conversation_id(key, "chatwoot", f"{account}-{conv}")


def inbound_message(event: dict[str, Any], account: str, conv: str, key: bytes = b"") -> Message:
    """The customer message of a wanted `message_created` event; ValueError/KeyError when malformed."""
    sender = event.get("sender")
    sender_id = sender.get("id") if isinstance(sender, dict) else None
    return Message(channel="chatwoot", conversation_id=conversation_id(account, conv, key),
                   message_id=platform_id(event["id"], "id"), text=event["content"],
                   sender_id=None if sender_id is None else platform_id(sender_id, "sender.id"),
                   metadata={"chatwoot_account": account, "chatwoot_conversation": conv})


def wanted(event: dict[str, Any]) -> bool:
    """Whether an event is one supportbot acts on; everything else is acknowledged and dropped."""
    kind = event.get("event")
    if kind == "message_created":
        conv = event.get("conversation") or {}
        return (event.get("message_type") == "incoming" and not event.get("private")
                and isinstance(conv, dict) and conv.get("status") == "pending"
                and isinstance(event.get("content"), str) and bool(event["content"].strip())
                and _ids(event) is not None)
    if kind == "conversation_status_changed" and event.get("status") == "pending":
        if _ids(event) is None:
            log.warning("chatwoot status event without account or conversation id; ignored")
            return False
        return True
    return False


def render(reply: Reply) -> str:
    """Buttons become a numbered list: the basic message API carries text only."""
    lines = [reply.text] if reply.text else []
    if reply.buttons:
        lines.append("\n".join(f"{i}. {b.title}" for i, b in enumerate(reply.buttons, 1)))
    return "\n\n".join(lines)


class ChatwootBridge:
    retry_base_s = 0.5  # backoff before the 2nd and 3rd attempt: 0.5 s, 1 s
    attempts = 3

    def __init__(self, config: ChatwootConfig, pipeline: Pipeline, store: SessionReader, handoff: HandBack,
                 once: OnceClaims | None = None, http: httpx.AsyncClient | None = None,
                 id_key: bytes = b"") -> None:
        """`once` keeps the send-once and handed-off claims (default: `store`, the session store,
        under its key prefix)."""
        self.config = config
        self.id_key = id_key
        self.pipeline = pipeline
        self.store = store
        self.handoff = handoff
        self.once: OnceClaims = once if once is not None else store  # type: ignore[assignment]
        self._own_http = http is None
        self.http = http or httpx.AsyncClient(timeout=10.0)
        self._tasks = TaskSet("chatwoot event", log)  # handled in the background

    # -- webhook ---------------------------------------------------------------------------------

    async def webhook(self, token: str | None, read_body: Callable[[], Awaitable[bytes]]
                      ) -> tuple[int, dict[str, Any]]:
        """One webhook call: the status and JSON body to answer (the token is checked before the body
        is read); a wanted event is queued for the background."""
        secret = self.config.webhook_token
        if secret and not hmac.compare_digest((token or "").encode(), secret.encode()):
            return 401, {"error": "bad_token", "detail": "missing or wrong ?token="}
        try:
            event = parse_event(await read_body())
        except ValueError:  # bad UTF-8, not JSON, too deep, not an object
            return 400, {"error": "invalid_json", "detail": "the body is not a JSON object"}
        if not wanted(event):
            return 200, {"ok": True, "queued": False}
        ids = _ids(event)
        if event["event"] == "message_created" and ids is not None:
            try:
                inbound_message(event, *ids)  # refuse a malformed message now, not in the background
            except (KeyError, TypeError, ValueError) as exc:
                return 400, {"error": "invalid_payload", "detail": f"malformed message: {exc!r}"}
        self._spawn(event)
        return 200, {"ok": True, "queued": True}

    def _spawn(self, event: dict[str, Any]) -> None:
        self._tasks.spawn(self.handle_event(event), name="chatwoot-event")

    async def drain(self) -> None:
        """Wait for the background work (tests)."""
        await self._tasks.drain()

    async def aclose(self, drain_s: float | None = None, timeout_s: float = 5.0) -> None:
        """Shutdown: the events in flight get `drain_s` (None: as long as they take) to finish,
        then are cancelled."""
        await self._tasks.aclose(drain_s, timeout_s)
        if self._own_http:
            await self.http.aclose()

    # -- the work --------------------------------------------------------------------------------

    async def handle_event(self, event: dict[str, Any]) -> None:
        ids = _ids(event)
        if ids is None or not wanted(event):
            return
        account, conv = ids
        if event["event"] == "message_created":
            await self._answer(event, account, conv)
        else:
            await self._hand_back(account, conv)

    async def _answer(self, event: dict[str, Any], account: str, conv: str) -> None:
        cid = conversation_id(account, conv, self.id_key)
        msg = safe_message(inbound_message(event, account, conv, self.id_key))
        replies = await self.pipeline.handle(msg)
        failed: Exception | None = None
        try:
            await self._post_replies(account, conv, msg.message_id, replies)
        except Exception as exc:  # the hand-off below matters more than the replies
            failed = exc
        session = await self.store.get(cid)
        if session is not None and session.handoff:
            await self._open(account, conv, session.handoff_reason)
        if failed is not None:
            raise failed

    async def _post_replies(self, account: str, conv: str, message_id: str, replies: list[Reply]) -> None:
        """At most once per inbound message: a redelivery gets the same replies from the pipeline's
        dedupe, and this key keeps them from being posted twice."""
        texts = [t for t in map(render, replies) if t]
        if not texts:
            return
        key = f"chatwoot:sent:{account}:{message_id}"
        if not await self.once.claim_once(key, SENT_TTL_S):
            return
        posted = 0
        try:
            for text in texts:
                await self._message(account, conv, text, private=False)
                posted += 1
        except Exception:
            if not posted:  # nothing reached the customer: let a redelivery try again
                await self.once.release_once(key)
            raise

    async def _open(self, account: str, conv: str, reason: str | None) -> None:
        """Give the conversation to Chatwoot's agents, once per hand-off."""
        key = self._handed_off_key(account, conv)
        if not await self.once.claim_once(key, HANDED_OFF_TTL_S):
            return
        try:
            await self._request(f"/conversations/{conv}/toggle_status", account, {"status": "open"})
        except Exception:
            await self.once.release_once(key)  # still pending in Chatwoot: the next message retries
            raise
        await self._message(account, conv, f"Handed off by supportbot: {reason or 'unspecified'}",
                            private=True)

    async def _hand_back(self, account: str, conv: str) -> None:
        """An agent set the conversation back to pending: the bot answers again."""
        cid = conversation_id(account, conv, self.id_key)
        session = await self.store.get(cid)
        if session is not None and session.handoff:
            try:
                await self.handoff.hand_back(cid)
            except HandoffError as exc:
                log.info("chatwoot hand-back of %s ignored: %s", cid, exc)
        await self.once.release_once(self._handed_off_key(account, conv))

    def _handed_off_key(self, account: str, conv: str) -> str:
        return f"chatwoot:handed_off:{account}:{conv}"

    # -- Chatwoot API ----------------------------------------------------------------------------

    async def _message(self, account: str, conv: str, text: str, private: bool) -> None:
        body = {"content": text, "message_type": "outgoing", "private": private}
        await self._request(f"/conversations/{conv}/messages", account, body)

    async def _request(self, path: str, account: str, body: dict[str, Any]) -> httpx.Response:
        """POST under the outbound retry policy: up to `attempts` tries on 429, 5xx and connection
        errors, backing off exponentially from `retry_base_s` (or after Retry-After)."""
        url = f"{self.config.base_url.rstrip('/')}/api/v1/accounts/{account}{path}"
        retry = RetryPolicy.of(logger=log, http=Backoff(self.attempts, self.retry_base_s, jitter=False))
        return await retry.request(self.http, "POST", url, json=body, timeout=10.0, what=f"chatwoot {path}",
                                   headers={"api_access_token": self.config.api_token})
