"""Hand-off flow: put a conversation in the agents' queue, let an agent take over and reply, hand it
back to the bot or close it. The customer's side hears about each step on the conversation channel."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from bot.dialogue.domain import Domain
from bot.handoff.hours import BusinessHours
from bot.handoff.queue import HandoffQueue
from bot.sessions.store import RedisSessionStore
from bot.types import Event, Reply, Session


class HandoffError(RuntimeError):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code


class HandoffService:
    def __init__(self, store: RedisSessionStore, queue: HandoffQueue, domain: Domain,
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
        session.offline_notified = True
        return [self.domain.render("utter_handoff_offline", language=session.language)]

    async def while_waiting(self, session: Session) -> list[Reply]:
        """A customer message during hand-off: the bot stays silent, except to say once that nobody
        is available (never while an agent is typing)."""
        if session.agent or session.offline_notified:
            return []
        if await self.agents_available() or await self.queue.agent_typing(session.conversation_id):
            return []
        session.offline_notified = True
        return [self.domain.render("utter_handoff_offline", language=session.language)]

    async def claim(self, cid: str, agent: str, agent_name: str) -> Session:
        async with self.store.lock(cid):
            session = await self._session(cid)
            if not session.handoff or not await self.queue.claim(cid, agent):
                raise HandoffError("already_claimed", "another agent has this conversation")
            session.agent = agent
            text = self.domain.render("utter_agent_joined", {"agent": agent_name},
                                      language=session.language).text
            session.history.append(Event(role="system", text=text, agent=agent_name))
            await self.store.save(session)
        await self.queue.to_customer(cid, {"type": "agent_joined", "agent": agent_name, "text": text})
        return session

    async def agent_message(self, cid: str, agent: str, agent_name: str, text: str) -> Event:
        async with self.store.lock(cid):
            session = await self._session(cid)
            if session.agent != agent:
                raise HandoffError("not_your_conversation", "claim the conversation first")
            event = Event(role="agent", text=text, agent=agent_name)
            session.history.append(event)
            session.updated_at = time.time()
            await self.store.save(session)
        await self.queue.to_customer(cid, {"type": "agent_message", "agent": agent_name, "text": text,
                                           "at": event.at})
        await self.queue.announce({"type": "agent_message", "conversation_id": cid, "agent": agent_name})
        return event

    async def hand_back(self, cid: str, agent: str | None = None, close: bool = False) -> Session:
        """Back to the bot (or closed: a later message from the customer goes to the bot again)."""
        async with self.store.lock(cid):
            session = await self._session(cid)
            if agent is not None and session.agent not in (None, agent):
                raise HandoffError("not_your_conversation", "another agent has this conversation")
            session.handoff = False
            session.agent = None
            session.handoff_reason = None
            session.offline_notified = False
            session.failures = 0
            text = self.domain.render("utter_conversation_closed" if close else "utter_bot_back",
                                      language=session.language).text
            session.history.append(Event(role="bot", text=text, action="handback"))
            await self.store.save(session)
        await self.queue.finish(cid, "closed" if close else "bot")
        await self.queue.to_customer(cid, {"type": "closed" if close else "bot_back", "text": text})
        return session

    async def _session(self, cid: str) -> Session:
        session = await self.store.get(cid)
        if session is None:
            raise HandoffError("unknown_conversation", f"no conversation {cid!r}")
        return session
