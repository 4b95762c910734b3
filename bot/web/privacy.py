"""The right to erasure: one conversation removed from everywhere it is kept.

`DELETE /console/api/conversations/{conversation_id}` (admin API: the admin API key or a logged-in
admin, like /console/api/agents) and `supportbot forget` both call `erase_conversation`: the hand-off
queue lets go of it, Redis loses its session, reply cache, send-once and hand-off keys, the review
stream its entries, SQL its turns, form requests, agent messages and conversation row, and the
attachment store the customer's images (bytes and rows). The answer counts what went, so an
operator can show the request was carried out.
"""

from __future__ import annotations

import asyncio
import re

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from bot.handoff.agents import AgentInfo
from bot.handoff.queue import HandoffQueue
from bot.sessions.review import ReviewLog
from bot.sessions.store import SessionStore
from bot.storage.attachments import AttachmentRecords
from bot.storage.db import TranscriptStore
from bot.web.console.auth import admin_caller
from bot.web.errors import ApiError
from bot.web.schemas import error_responses
from bot.web.state import services_of

router = APIRouter(prefix="/console/api", responses=error_responses(401, 403, 422))
# Any channel's ids (a WhatsApp number, a Slack thread, a widget id): printable, as long as SQL keeps.
CONVERSATION_ID = re.compile(r"[^\x00-\x1f\x7f]{1,128}")


class ErasedOut(BaseModel):
    conversation_id: str
    erased: dict[str, int] = Field(description="What was deleted: redis_keys, review_entries, and rows "
                                               "of each SQL table (turns, form_requests, agent_messages, "
                                               "conversations), and attachments (customers' images).")


async def erase_conversation(conversation_id: str, store: SessionStore, review: ReviewLog,
                             transcripts: TranscriptStore, queue: HandoffQueue | None = None,
                             attachments: AttachmentRecords | None = None) -> dict[str, int]:
    """Erase one conversation everywhere; what was deleted, by kind (Redis keys, review entries,
    rows per SQL table)."""
    if queue is not None and await queue.state(conversation_id):
        await queue.finish(conversation_id, "erased")  # out of the waiting list and the agent's list
    counts = {"redis_keys": await store.erase(conversation_id),
              "review_entries": await review.erase(conversation_id)}
    counts.update(await asyncio.to_thread(transcripts.erase, conversation_id))
    if attachments is not None:
        counts["attachments"] = await asyncio.to_thread(attachments.erase, conversation_id)
    return counts


@router.delete("/conversations/{conversation_id}", response_model=ErasedOut,
               description="Erase one conversation everywhere (right to erasure): Redis session, reply "
                           "cache and hand-off state, review entries, and every SQL table. Admin API: "
                           "the admin API key, or a logged-in admin's console session with X-CSRF-Token.")
async def forget_conversation(conversation_id: str, request: Request,
                              _: AgentInfo | None = Depends(admin_caller)) -> ErasedOut:
    if not CONVERSATION_ID.fullmatch(conversation_id):
        raise ApiError(422, "invalid_conversation_id", "not a conversation id")
    services = services_of(request)
    # The services' review log, also where the pipeline runs without one (the stream may still hold
    # entries from before).
    records = services.attachments.records if services.attachments is not None else None
    erased = await erase_conversation(conversation_id, services.store, services.review,
                                      services.transcripts, services.queue, records)
    return ErasedOut(conversation_id=conversation_id, erased=erased)
