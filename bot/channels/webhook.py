"""One route for every messaging platform: /webhooks/{channel}.

Verify and parse synchronously (so a bad signature is a 401/403 the platform sees), then handle
the messages in the background and answer 200 at once (platforms give a webhook a few seconds and
redeliver on timeouts). A redelivered message gets the pipeline's cached reply, and an outbound
send is claimed once per inbound message id in Redis, so nothing is ever sent twice.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from bot.channels.base import UNSUPPORTED, Channel, ChannelError, Handshake
from bot.types import Message

log = logging.getLogger(__name__)
SENT_TTL_S = 24 * 3600


class ChannelHub:
    def __init__(self, channels: dict[str, Channel], services: Any) -> None:
        self.channels = channels
        self.services = services
        self._tasks: set[asyncio.Task[None]] = set()

    def router(self) -> APIRouter:
        router = APIRouter()

        @router.api_route("/webhooks/{name}", methods=["GET", "POST"], include_in_schema=False)
        async def webhook(name: str, request: Request) -> Response:
            channel = self.channels.get(name)
            if channel is None:
                return JSONResponse({"error": "unknown_channel", "detail": f"no channel {name!r} is enabled"},
                                    status_code=404)
            try:
                messages = await channel.parse(request)
            except Handshake as hs:
                return hs.response
            except ChannelError as exc:
                log.warning("channel %s refused a request: %s", name, exc.code)
                self.services.metrics.errors.labels(f"{name}:{exc.code}").inc()
                return JSONResponse({"error": exc.code, "detail": exc.detail}, status_code=exc.status)
            for msg in messages:
                task = asyncio.get_running_loop().create_task(self.handle(channel, msg))
                self._tasks.add(task)
                task.add_done_callback(self._done)
            ack = getattr(channel, "ack", None)  # e.g. Twilio wants (empty) TwiML, not JSON
            return ack() if ack is not None else JSONResponse({"ok": True, "accepted": len(messages)})

        return router

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("handling a channel message failed", exc_info=task.exception())

    async def handle(self, channel: Channel, msg: Message) -> None:
        services = self.services
        if msg.metadata.get(UNSUPPORTED):
            replies = [services.domain.render("utter_unsupported_media")]
        else:
            replies = await services.pipeline.handle(msg)
        if not replies:
            return
        key = f"{services.settings.key_prefix}:{{{msg.conversation_id}}}:sent:{msg.dedupe_key}"
        if not await services.store.r.set(key, "1", nx=True, ex=SENT_TTL_S):
            return  # this inbound message was answered already (a platform redelivery)
        try:
            await channel.send(channel.conversation(msg), replies)
        except Exception:
            await services.store.r.delete(key)  # let the platform's redelivery try again
            services.metrics.degraded.labels(f"channel:{channel.name}").inc()
            raise

    async def drain(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
