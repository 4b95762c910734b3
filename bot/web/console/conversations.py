"""The hand-off queue and the conversations, as agents see and act on them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import UTC
from typing import Annotated, Literal, TypeVar

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from bot.handoff.agents import AgentInfo
from bot.handoff.service import Access, HandoffError
from bot.types import Session
from bot.web.console.auth import acting_agent, current_agent
from bot.web.errors import ApiError
from bot.web.schemas import clean_text, error_responses, valid_conversation_id
from bot.web.state import services_of

T = TypeVar("T")

router = APIRouter(prefix="/console", responses=error_responses(401, 403, 422))


class ReplyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=4000)


def _cid(conversation_id: str) -> str:
    if not valid_conversation_id(conversation_id):
        raise ApiError(422, "invalid_conversation_id", "not a conversation id")
    return conversation_id


# --- queue and conversations ----------------------------------------------------------
class QueueFilters(BaseModel):
    """The queue's search and filters (all optional; combined with AND). `q` looks in the id, the
    customer's e-mail address and the messages; `agent` (a username) finds conversations that agent has."""

    model_config = ConfigDict(extra="forbid")
    q: str = Field("", max_length=200)
    status: Literal["", "waiting", "assigned"] = ""
    channel: str = Field("", max_length=32)
    language: str = Field("", max_length=16)
    reason: str = Field("", max_length=64)
    agent: str = Field("", max_length=64)


@router.get("/api/queue")
async def queue(request: Request, filters: Annotated[QueueFilters, Query()],
                agent: AgentInfo = Depends(current_agent)) -> dict:
    """Waiting conversations and the caller's own, as cards; with filters, only the matching ones
    (and, for admins, the matching conversations other agents have)."""
    services = services_of(request)
    await services.queue.heartbeat(str(agent.id))
    query = clean_text(filters.q).strip().casefold() if filters.q else ""
    owner: str | None = None
    if filters.agent:
        found = await asyncio.to_thread(services.agents.by_username, filters.agent)
        owner = str(found.id) if found is not None else "-"
    waiting = [] if filters.status == "assigned" or owner else await services.queue.waiting()
    mine = [] if filters.status == "waiting" or owner not in (None, str(agent.id)) else \
        await services.queue.assigned_to(str(agent.id))
    others: list[tuple[str, str]] = []
    if agent.role == "admin" and (filters.status == "assigned" or owner) and owner != str(agent.id):
        for a in await asyncio.to_thread(services.agents.all):
            if str(a.id) != str(agent.id) and owner in (None, str(a.id)):
                others += [(cid, a.username) for cid in await services.queue.assigned_to(str(a.id))]
    cards = {cid: await _card(request, cid) for cid in
             {*(w["conversation_id"] for w in waiting), *mine, *(cid for cid, _ in others)}}

    def keep(card: dict) -> bool:
        return ((not filters.channel or card.get("channel") == filters.channel)
                and (not filters.language or card.get("language") == filters.language)
                and (not filters.reason or card.get("reason") == filters.reason)
                and (not query or query in card.pop("_text", "")))
    waiting_cards = [c for c in ({**w, **cards[w["conversation_id"]]} for w in waiting) if keep(c)]
    mine_cards = [c for c in ({"conversation_id": cid, **cards[cid]} for cid in mine) if keep(c)]
    other_cards = [c for c in ({"conversation_id": cid, "agent": name, **cards[cid]} for cid, name in others)
                   if keep(c)]
    seen = await services.queue.seen(str(agent.id), list(cards))
    for c in (*waiting_cards, *mine_cards, *other_cards):
        c.pop("_text", None)
        c["unread"] = max(0, c.get("customer_messages", 0) - seen.get(c["conversation_id"], 0))
    return {"waiting": waiting_cards, "mine": [c["conversation_id"] for c in mine_cards],
            "mine_cards": mine_cards, "others": other_cards,
            "agents_online": len(await services.queue.agents_online())}


async def _card(request: Request, cid: str) -> dict:
    """What a queue card shows beyond the queue entry: who (the e-mail address the customer left),
    the language, the last message and how many customer messages there are (the console counts the
    unread ones from that). `_text` is what the search looks in (dropped before answering)."""
    services = services_of(request)
    session = await services.store.get(cid)
    state = await services.queue.state(cid)
    base = {"reason": state.get("reason") or None}
    if session is None:
        return {**base, "contact": None, "language": None, "last_message": "", "customer_messages": 0,
                "_text": cid.casefold()}
    last = next((e.text for e in reversed(session.history) if e.role == "user"), "")  # the customer's
    text = " ".join([cid, session.contact_email or "", *(e.text for e in session.history)]).casefold()
    return {**base, "contact": session.contact_email, "language": session.language,
            "channel": session.channel, "last_message": last[:160],
            "customer_messages": _customer_messages(session), "_text": text}


def _customer_messages(session: Session) -> int:
    """What a card's unread count is counted in, and what opening the conversation marks as seen."""
    return sum(1 for e in session.history if e.role == "user")


async def _handoff(coro: Awaitable[T]) -> T:
    """HandoffError to HTTP: unknown 404, someone else's 403, a state conflict 409."""
    try:
        return await coro
    except HandoffError as exc:
        status = {"unknown_conversation": 404, "not_your_conversation": 403}.get(exc.code, 409)
        raise ApiError(status, exc.code, str(exc)) from exc


async def _access(request: Request, conversation_id: str, agent: AgentInfo, action: Access) -> Session:
    handoff = services_of(request).handoff
    return await _handoff(handoff.access(_cid(conversation_id), str(agent.id), agent.role == "admin", action))


@router.get("/api/conversations/{conversation_id}", responses=error_responses(404))
async def conversation(request: Request, conversation_id: str,
                       agent: AgentInfo = Depends(current_agent)) -> dict:
    services = services_of(request)
    session = await _access(request, conversation_id, agent, "read")
    cid = session.conversation_id
    turns = await asyncio.to_thread(services.transcripts.turns, cid)
    ratings = await asyncio.to_thread(services.transcripts.ratings, cid)
    understood = {t.message_id: {"intent": t.intent, "confidence": t.confidence, "action": t.action_name,
                                 "faq_entry": t.faq_entry, "faq_score": t.faq_score} for t in turns}
    last_user = next((e.text for e in reversed(session.history) if e.role == "user"), "")
    hits = await services.pool.run(services.knowledge.search, last_user, 3) if last_user else []
    state = await services.queue.state(cid)
    # Opening it is reading it: this agent's unread count of it goes to zero.
    await services.queue.mark_seen(str(agent.id), cid, _customer_messages(session))
    return {
        "conversation_id": cid, "channel": session.channel, "handoff": session.handoff,
        "language": session.language, "handoff_reason": session.handoff_reason,
        "contact_email": session.contact_email,
        "assigned_to_me": session.agent == str(agent.id),
        "assigned": bool(session.agent), "status": state.get("status"),
        "history": [{**e.model_dump(include={"role", "text", "at", "agent", "attachment"}),
                     "understood": understood.get(e.message_id or "")} for e in session.history],
        "ratings": [{"score": r.score, "comment": r.comment, "agent": r.agent,
                     "at": r.created_at.replace(tzinfo=r.created_at.tzinfo or UTC).timestamp()}
                    for r in ratings],
        "suggestions": [{"entry_id": h.entry_id, "question": h.question, "answer": h.answer,
                         "score": h.score} for h in hits],
    }


@router.post("/api/conversations/{conversation_id}/claim", responses=error_responses(404, 409))
async def claim(request: Request, conversation_id: str, agent: AgentInfo = Depends(acting_agent)) -> dict:
    services = services_of(request)
    await _handoff(services.handoff.claim(_cid(conversation_id), str(agent.id), agent.display_name,
                                          admin=agent.role == "admin"))
    return {"ok": True}


@router.post("/api/conversations/{conversation_id}/messages", responses=error_responses(404, 409))
async def agent_reply(request: Request, conversation_id: str, body: ReplyIn,
                      agent: AgentInfo = Depends(acting_agent)) -> dict:
    text = clean_text(body.text)
    if not text:
        raise ApiError(422, "empty_message", "write something first")
    services = services_of(request)
    cid = _cid(conversation_id)
    event = await _handoff(services.handoff.agent_message(cid, str(agent.id), agent.display_name, text,
                                                          admin=agent.role == "admin"))
    await asyncio.to_thread(services.transcripts.record_agent_message, cid, agent.display_name, text,
                            event.at)
    return {"ok": True, "at": event.at}


@router.post("/api/conversations/{conversation_id}/typing", responses=error_responses(404))
async def typing(request: Request, conversation_id: str, agent: AgentInfo = Depends(acting_agent)) -> dict:
    services = services_of(request)
    cid = (await _access(request, conversation_id, agent, "act")).conversation_id
    await services.queue.set_typing(cid, str(agent.id))
    await services.queue.to_customer(cid, {"type": "agent_typing", "agent": agent.display_name})
    return {"ok": True}


@router.post("/api/conversations/{conversation_id}/handback", responses=error_responses(404, 409))
async def hand_back(request: Request, conversation_id: str, agent: AgentInfo = Depends(acting_agent)) -> dict:
    handoff = services_of(request).handoff
    await _handoff(handoff.hand_back(_cid(conversation_id), str(agent.id), admin=agent.role == "admin"))
    return {"ok": True}


@router.post("/api/conversations/{conversation_id}/close", responses=error_responses(404, 409))
async def close(request: Request, conversation_id: str, agent: AgentInfo = Depends(acting_agent)) -> dict:
    handoff = services_of(request).handoff
    await _handoff(handoff.hand_back(_cid(conversation_id), str(agent.id), close=True,
                                     admin=agent.role == "admin"))
    return {"ok": True}
