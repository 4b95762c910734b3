"""A customer's photo in a conversation: cleaned, kept, put in the history, and answered.

The photo is something for a person to look at, so the bot hands the conversation off (reason
`attachment`) unless it is handed off already; while it waits for an agent the customer is told the
photo was added, and once an agent has it the bot stays silent and the console hears of it live.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Protocol

from bot.config import AttachmentSettings
from bot.dialogue.domain import Domain
from bot.handoff.service import HandoffService
from bot.images import clean_image
from bot.observability import Metrics
from bot.sessions.store import SessionStore
from bot.storage.attachments import AttachmentRecords
from bot.types import Attachment, Event, Reply, Session

log = logging.getLogger(__name__)
REASON = "attachment"
# Images decoded at once: a 40-megapixel photo is over 100 MB of pixels while it is cleaned.
CLEANING_AT_ONCE = 2


class HandoffLog(Protocol):
    """Where a hand-off without a turn is written down (TranscriptStore)."""

    def set_handoff(self, conversation_id: str, reason: str, channel: str = "web") -> None: ...


@dataclass(frozen=True)
class Received:
    attachment: Attachment
    replies: list[Reply]


class AttachmentService:
    def __init__(self, store: SessionStore, handoff: HandoffService, domain: Domain,
                 records: AttachmentRecords, settings: AttachmentSettings,
                 metrics: Metrics | None = None, transcripts: HandoffLog | None = None) -> None:
        self.store = store
        self.handoff = handoff
        self.domain = domain
        self.records = records
        self.settings = settings
        self.metrics = metrics
        self.transcripts = transcripts
        self._cleaning = asyncio.Semaphore(CLEANING_AT_ONCE)

    async def receive(self, conversation_id: str, data: bytes, channel: str = "web",
                      message_id: str | None = None) -> Received:
        """Clean and keep the image (ImageRejected when it is not one we take), then the turn it
        makes, under the conversation's lock; the bot's replies (none once an agent has it). A
        `message_id` seen before (a retried upload) gets the first upload's answer and keeps
        nothing new."""
        key = f"{channel}:attachment:{message_id}" if message_id else None
        if key is not None:
            earlier = await self._earlier(conversation_id, key, message_id)
            if earlier is not None:
                return earlier
        s = self.settings
        async with self._cleaning:
            image = await asyncio.to_thread(clean_image, data, s.max_pixels, s.max_side)
        stored = await asyncio.to_thread(self.records.add, conversation_id, image.data, image.content_type,
                                         image.width, image.height)
        attachment = Attachment(id=stored.id, content_type=stored.content_type, width=stored.width,
                                height=stored.height)
        try:
            async with self.store.lock(conversation_id):
                earlier = await self._earlier(conversation_id, key, message_id) if key else None
                if earlier is None:
                    session = await self.store.get(conversation_id) or Session(
                        conversation_id=conversation_id, channel=channel)
                    handed_now = not session.handoff
                    replies = await self._answer(session)
                    self._append(session, attachment, replies, message_id)
                    await self.store.save(session, key, replies)
        except BaseException:  # the conversation never got it: nothing may name the bytes
            await asyncio.shield(asyncio.to_thread(self.records.remove, attachment.id))
            raise
        if earlier is not None:  # the same upload raced itself: the first one stays
            await asyncio.to_thread(self.records.remove, attachment.id)
            return earlier
        if handed_now and self.transcripts is not None:  # analytics count the photo's hand-off
            await asyncio.to_thread(self.transcripts.set_handoff, conversation_id, REASON, session.channel)
        await self._announce(conversation_id, attachment)
        return Received(attachment, replies)

    async def _earlier(self, conversation_id: str, key: str, message_id: str | None) -> Received | None:
        """What an upload with this message id got the first time, if there was one."""
        replies = await self.store.seen(conversation_id, key)
        if replies is None:
            return None
        session = await self.store.get(conversation_id)
        event = next((e for e in reversed(session.history) if e.attachment and e.message_id == message_id),
                     None) if session is not None else None
        if event is None or event.attachment is None:  # the history no longer has it: treat as new
            return None
        if self.metrics is not None:
            self.metrics.duplicates.labels("web").inc()
        return Received(event.attachment, replies)

    async def _announce(self, conversation_id: str, attachment: Attachment) -> None:
        """Live to every console (the one showing the conversation reloads it). The photo is
        saved already: a failure here costs the live update, not the upload."""
        try:
            await self.handoff.queue.announce({"type": "attachment", "conversation_id": conversation_id,
                                               "attachment": attachment.model_dump()})
        except Exception:
            if self.metrics is not None:
                self.metrics.degraded.labels("pubsub").inc()
            log.warning("announcing an attachment failed", exc_info=True)

    async def _answer(self, session: Session) -> list[Reply]:
        """What the bot says, as the conversation stands; a hand-off is applied as the policy and
        the pipeline apply one (flags on the session, then the queue)."""
        language = session.language
        if not session.handoff:
            session.handoff = True
            session.handoff_reason = REASON
            session.active_form = session.requested_slot = None
            session.failures = 0
            received = self.domain.render("utter_attachment_received", language=language)
            if self.metrics is not None:
                self.metrics.handoffs.labels(REASON).inc()
            return [received, *await self.handoff.on_handoff(session, REASON)]
        if await self.handoff.bot_may_answer(session):
            return [self.domain.render("utter_attachment_queued", language=language)]
        return []

    @staticmethod
    def _append(session: Session, attachment: Attachment, replies: list[Reply],
                message_id: str | None = None) -> None:
        now = time.time()
        session.history.append(Event(role="user", text="", at=now, attachment=attachment,
                                     language=session.language, message_id=message_id))
        for reply in replies:
            session.history.append(Event(role="bot", text=reply.text, at=now, action="handoff",
                                         buttons=reply.buttons))
        session.updated_at = now
