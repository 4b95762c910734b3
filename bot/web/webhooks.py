"""One route for every messaging platform: /webhooks/{channel} (and Chatwoot's Agent Bot webhook).

Verify and parse synchronously (so a bad signature is a 401/403 the platform sees), then handle
the messages in the background and answer 200 at once (platforms give a webhook a few seconds and
redeliver on timeouts). A redelivered message gets the pipeline's cached reply, and an outbound
send is claimed once per inbound message id in Redis, so nothing is ever sent twice.

Rate limits: the calling address is limited before the body is read (`bot.web.ratelimit`); each
parsed message then counts against its conversation's limit. A message over it is not handled; when
no message of the request was accepted, the answer is 429 with Retry-After, so that the platform
redelivers later (a redelivery of an accepted message is answered from the reply cache).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from bot.background import TaskSet, cancel_and_wait
from bot.channels.base import UNSUPPORTED, Channel, ChannelError, Handshake, keyed_conversation_id
from bot.textsafety import InvalidText, safe_message
from bot.types import Message
from bot.web.inbound import answer_response, read_inbound, refusal
from bot.web.ratelimit import Limiter, RateLimited

if TYPE_CHECKING:
    from bot.handoff.chatwoot import ChatwootBridge

log = logging.getLogger(__name__)
SENT_TTL_S = 24 * 3600


class ChannelHub:
    def __init__(self, channels: dict[str, Channel], services: Any, limiter: Limiter | None = None,
                 id_key: bytes = b"") -> None:
        self.channels = channels
        self.id_key = id_key  # keys conversation ids (`keyed_conversation_id`)
        self.services = services
        self.limiter = limiter  # None: no per-conversation limit
        self._tasks = TaskSet("handling a channel message", log)  # in the background

    def router(self) -> APIRouter:
        router = APIRouter()
        router.add_api_route("/webhooks/{name}", self.webhook, methods=["GET", "POST"],
                             include_in_schema=False)
        return router

    async def webhook(self, name: str, request: Request) -> Response:
        channel = self.channels.get(name)
        if channel is None:
            return JSONResponse({"error": "unknown_channel", "detail": f"no channel {name!r} is enabled"},
                                status_code=404)
        try:
            messages = await channel.parse(await read_inbound(request))
        except Handshake as hs:
            return answer_response(hs.answer)
        except ChannelError as exc:
            log.warning("channel %s refused a request: %s", name, exc.code)
            self.services.metrics.channel_errors.labels(name, exc.code).inc()
            return refusal(exc)
        try:
            messages = [self._identify(name, msg) for msg in messages]
        except InvalidText as exc:
            self.services.metrics.channel_errors.labels(name, exc.code).inc()
            return JSONResponse({"error": exc.code, "detail": exc.detail}, status_code=422)
        accepted, limited = await self._within_limits(name, messages)
        for msg in accepted:
            self._tasks.spawn(self.handle(channel, msg), name=f"webhook-{name}")
        if limited is not None and not accepted:
            return JSONResponse(limited.body(), status_code=limited.status, headers=limited.headers)
        ack = getattr(channel, "ack", None)  # e.g. Twilio wants (empty) TwiML, not JSON
        if ack is not None:
            return answer_response(ack())
        return JSONResponse({"ok": True, "accepted": len(messages)})

    def _identify(self, name: str, msg: Message) -> Message:
        """The message through the text gate, under its keyed conversation id."""
        return safe_message(msg).model_copy(
            update={"conversation_id": keyed_conversation_id(self.id_key, name, msg.conversation_id)})

    async def _within_limits(self, name: str, messages: list[Message]
                             ) -> tuple[list[Message], RateLimited | None]:
        """The messages within their conversation's rate limit, and the last refusal (or None)."""
        if self.limiter is None:
            return messages, None
        accepted: list[Message] = []
        limited: RateLimited | None = None
        for msg in messages:
            try:
                await self.limiter.check("conversation", msg.conversation_id, name)
            except RateLimited as exc:
                log.warning("channel %s: conversation over its rate limit; message not handled", name)
                limited = exc
                continue
            accepted.append(msg)
        return accepted, limited

    async def handle(self, channel: Channel, msg: Message) -> None:
        services = self.services
        if msg.metadata.get(UNSUPPORTED):
            replies = [services.domain.render("utter_unsupported_media")]
        else:
            try:
                replies = await services.pipeline.handle(msg)
            except Exception:
                services.metrics.channel_errors.labels(channel.name, "handle_failed").inc()
                raise
        if not replies:
            return
        if not await services.store.claim_send_once(msg.conversation_id, msg.dedupe_key, SENT_TTL_S):
            return  # this inbound message was answered already (a platform redelivery)
        try:
            await channel.send(channel.conversation(msg), replies)
        except Exception:
            await services.store.release_send_once(msg.conversation_id, msg.dedupe_key)  # redelivery retries
            services.metrics.channel_errors.labels(channel.name, "send_failed").inc()
            raise

    async def drain(self, timeout_s: float | None = None) -> None:
        """Wait for the messages being handled (tests; shutdown through `aclose`)."""
        await self._tasks.drain(timeout_s)

    async def aclose(self, drain_s: float, timeout_s: float = 5.0) -> None:
        """Shutdown: the turns in flight get `drain_s` to finish (and send), then are cancelled;
        so do the channels' own background calls (Telegram's callback answers)."""
        await self._tasks.aclose(drain_s, timeout_s)
        for channel in self.channels.values():
            drain = getattr(channel, "drain", None)
            if drain is None:
                continue
            task = asyncio.get_running_loop().create_task(drain(), name=f"drain-{channel.name}")
            await asyncio.wait({task}, timeout=timeout_s)
            await cancel_and_wait({task}, timeout_s)


def chatwoot_router(bridge: ChatwootBridge) -> APIRouter:
    """Chatwoot's Agent Bot webhook (the bridge checks, parses and queues; see `ChatwootBridge.webhook`)."""
    router = APIRouter()

    @router.post("/integrations/chatwoot/webhook")
    async def chatwoot_webhook(request: Request) -> JSONResponse:
        status, body = await bridge.webhook(request.query_params.get("token"), request.body)
        return JSONResponse(body, status_code=status)

    return router
