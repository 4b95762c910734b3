"""Hand-off flow: put a conversation in the agents' queue, let an agent take over and reply, hand it
back to the bot or close it. The customer's side hears about each step on the conversation channel."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any, Literal

from bot.dialogue.domain import Domain
from bot.handoff.hours import BusinessHours
from bot.handoff.queue import HandoffQueue
from bot.sessions.store import SessionStore
from bot.types import Event, Reply, Session


class HandoffError(RuntimeError):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code


# read: see it in the console; claim: take it from the queue; act: reply, typing, hand back, close.
Access = Literal["read", "claim", "act"]


def authorize(cid: str, session: Session | None, status: str | None, agent: str, admin: bool,
              action: Access) -> Session:
    """Whether console agent `agent` may do `action` to a conversation (`status` is its hand-off
    state in the queue). Admins may do anything; an agent acts only on conversations they own, and
    may also read and claim ones waiting in the queue. Raises `not_your_conversation` for one in
    the queue that is not theirs and `unknown_conversation` (the same answer as for an id that
    does not exist: agents cannot probe for conversations) for everything else; returns the session."""
    unknown = HandoffError("unknown_conversation", f"no conversation {cid!r}")
    if session is None:
        raise unknown
    if admin or (session.agent is not None and session.agent == agent):
        return session
    waiting = session.handoff and status == "waiting" and not session.agent
    if waiting and action in ("read", "claim"):
        return session
    if waiting:
        raise HandoffError("not_your_conversation", "claim the conversation first")
    if session.handoff and status == "assigned":
        raise HandoffError("not_your_conversation", "another agent has this conversation")
    raise unknown


class HandoffService:
    def __init__(self, store: SessionStore, queue: HandoffQueue, domain: Domain,
                 hours: BusinessHours) -> None:
        self.store = store
        self.queue = queue
        self.domain = domain
        self.hours = hours

    async def agents_available(self) -> bool:
        return self.hours.open_at(datetime.now(UTC)) and bool(await self.queue.agents_online())

    async def on_handoff(self, session: Session, reason: str) -> list[Reply]:
        """Called inside the turn that decided to hand off; returns what the customer is told."""
        session.handoff_at = time.time()
        session.agent = None
        priority = 1 if reason in {"complaint", "escalation", "negative_sentiment"} else 0
        await self.queue.enqueue(session.conversation_id, reason, priority, session.channel)
        if await self.agents_available():
            return [self.domain.render("utter_handoff", language=session.language)]
        return [self.domain.render("utter_handoff_offline", language=session.language)]

    async def bot_may_answer(self, session: Session) -> bool:
        """Whether the bot may still reply to a customer waiting for a person: not once an agent
        has the conversation, and never while one is typing to them."""
        return not session.agent and not await self.queue.agent_typing(session.conversation_id)

    async def access(self, cid: str, agent: str, admin: bool, action: Access) -> Session:
        """The conversation, if console agent `agent` may `action` it (else HandoffError). The
        methods below call it inside the conversation's lock; a read needs no lock."""
        state = await self.queue.state(cid)
        return authorize(cid, await self.store.get(cid), state.get("status"), agent, admin, action)

    async def claim(self, cid: str, agent: str, agent_name: str, admin: bool = False) -> Session:
        async with self.store.lock(cid):
            session = await self.access(cid, agent, admin, "claim")
            if not session.handoff or not await self.queue.claim(cid, agent):
                raise HandoffError("already_claimed", "another agent has this conversation")
            session.agent = agent
            text = self.domain.render("utter_agent_joined", {"agent": agent_name},
                                      language=session.language).text
            session.history.append(Event(role="system", text=text, agent=agent_name))
            await self.store.save(session)
        await self.queue.to_customer(cid, {"type": "agent_joined", "agent": agent_name, "text": text})
        return session

    async def agent_message(self, cid: str, agent: str, agent_name: str, text: str,
                            admin: bool = False) -> Event:
        async with self.store.lock(cid):
            session = await self.access(cid, agent, admin, "act")
            event = Event(role="agent", text=text, agent=agent_name)
            session.history.append(event)
            session.updated_at = time.time()
            await self.store.save(session)
        await self.queue.to_customer(cid, {"type": "agent_message", "agent": agent_name, "text": text,
                                           "at": event.at})
        await self.queue.announce({"type": "agent_message", "conversation_id": cid, "agent": agent_name})
        return event

    async def hand_back(self, cid: str, agent: str | None = None, close: bool = False,
                        admin: bool = False) -> Session:
        """Back to the bot (or closed: a later message from the customer goes to the bot again).
        `agent` None: the system (an integration) does it, with no console authorization."""
        async with self.store.lock(cid):
            if agent is None:
                session = await self._session(cid)
            else:
                session = await self.access(cid, agent, admin, "act")
            rate = close and bool(session.agent)  # a person helped: ask the customer how it went
            if rate:
                session.rating_requested = True
                session.rating_agent = _last_agent_name(session)
            session.handoff = False
            session.agent = None
            session.handoff_reason = None
            session.failures = 0
            text = self.domain.render("utter_conversation_closed" if close else "utter_bot_back",
                                      language=session.language).text
            session.history.append(Event(role="bot", text=text, action="handback"))
            await self.store.save(session)
        await self.queue.finish(cid, "closed" if close else "bot")
        event: dict[str, Any] = {"type": "closed" if close else "bot_back", "text": text}
        if rate:
            event["rating"] = {"agent": session.rating_agent}
        await self.queue.to_customer(cid, event)
        return session

    async def _session(self, cid: str) -> Session:
        session = await self.store.get(cid)
        if session is None:
            raise HandoffError("unknown_conversation", f"no conversation {cid!r}")
        return session


def _last_agent_name(session: Session) -> str | None:
    """The name of the agent who last wrote or joined: whom the customer's rating is about."""
    return next((e.agent for e in reversed(session.history) if e.agent and e.role in ("agent", "system")),
                None)
