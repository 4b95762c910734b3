"""A Rasa project's dialogue inside supportbot's turn: the session's Rasa events become a tracker,
the parse becomes Rasa's `user` event, and the bot messages come back as supportbot replies.

The pipeline stays the owner of the turn (dedupe, lock, transcripts, hand-off); this object only
decides what the bot says, as `Policy.decide` does for supportbot's own domain.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bot.rasa.agent import RasaAgent, TurnResult
from bot.rasa.tracker import Tracker, action_event, loop_event, slot_event, user_event
from bot.types import Action, Button, Message, Parse, Reply, Session

MAX_EVENTS = 600  # a longer tracker is compacted: current slots and loop, then the recent turns
KEEP_EVENTS = 200
# supportbot's answer when no rule or story applies (its policy, generation and hand-off).
SupportbotFallback = Callable[[], Awaitable[Action]]


@dataclass
class RasaTurn:
    action: Action
    result: TurnResult


class RasaDialogue:
    def __init__(self, agent: RasaAgent) -> None:
        self.agent = agent
        self.domain = agent.domain

    def tracker(self, session: Session) -> Tracker:
        return Tracker(session.sender_id or session.conversation_id, self.domain, list(session.rasa_events))

    def tracker_for(self, sender: str) -> Tracker:
        """A conversation that has not started: what Rasa answers for an unknown sender."""
        return Tracker(sender, self.domain)

    def handles(self, parse: Parse | None) -> bool:
        """The project's own intents (and low-confidence messages, its `nlu_fallback`) go to its
        rules and stories; supportbot's own payloads (a hand-off button it offered) do not."""
        return parse is not None and (
            self.agent.knows(parse.intent) or not parse.intent or self._unsure(parse)
        )

    def _unsure(self, parse: Parse) -> bool:
        threshold = self.agent.nlu_fallback_threshold
        return threshold is not None and parse.confidence < threshold

    async def respond(
        self, session: Session, msg: Message, parse: Parse, fallback: SupportbotFallback
    ) -> Action:
        session.sender_id = session.sender_id or msg.sender_id
        tracker = self.tracker(session)
        user = user_event(
            msg.text or msg.payload or "",
            self.agent.apply_nlu_fallback(parse_data(parse)),
            msg.message_id,
            msg.channel,
        )
        chosen: list[Action] = []

        async def answer() -> list[dict[str, Any]]:
            action = await fallback()
            chosen.append(action)
            return [to_message(r) for r in action.replies]

        result = await self.agent.handle(tracker, user, answer)
        session.rasa_events = compact(tracker)
        if chosen:
            return chosen[0]
        replies = [to_reply(m) for m in result.messages]
        if result.failed:
            return Action(kind="respond", name="action_failed", replies=replies, understood=False)
        return Action(kind="respond", name=",".join(result.actions) or "action_listen", replies=replies)


def parse_data(parse: Parse) -> dict[str, Any]:
    """A Parse in Rasa's parse-data shape (what `/model/parse` answers and trackers store)."""
    entities = list(parse.spans) or [{"entity": k, "value": v} for k, v in parse.entities.items()]
    return {
        "text": parse.text,
        "intent": {"name": parse.intent, "confidence": parse.confidence},
        "entities": entities,
        "intent_ranking": [{"name": s.name, "confidence": s.confidence} for s in parse.ranking],
    }


def to_reply(message: dict[str, Any]) -> Reply:
    buttons = [
        Button(title=str(b.get("title", "")), payload=str(b.get("payload", "")))
        for b in message.get("buttons") or []
        if isinstance(b, dict)
    ]
    custom = message.get("custom") or message.get("attachment")
    return Reply(
        text=str(message.get("text") or ""),
        buttons=buttons,
        image=message.get("image"),
        custom=custom if isinstance(custom, dict) else ({"data": custom} if custom else None),
        response=message.get("response"),
    )


def to_message(reply: Reply) -> dict[str, Any]:
    message: dict[str, Any] = {"text": reply.text}
    if reply.buttons:
        message["buttons"] = [b.model_dump() for b in reply.buttons]
    if reply.image:
        message["image"] = reply.image
    if reply.custom:
        message["custom"] = reply.custom
    return message


def compact(tracker: Tracker) -> list[dict[str, Any]]:
    """The events to store: all of them up to MAX_EVENTS; beyond, a new session that carries the
    slots and the active loop, followed by the recent turns (from an `action_listen`)."""
    events = tracker.events
    if len(events) <= MAX_EVENTS:
        return events
    tail = events[-KEEP_EVENTS:]
    start = next(
        (i for i, e in enumerate(tail) if e.get("event") == "action" and e.get("name") == "action_listen"), 0
    )
    tail = tail[start:]
    head: list[dict[str, Any]] = [
        action_event("action_session_start"),
        {"event": "session_started", "timestamp": time.time()},
    ]
    # The state at the start of the kept tail, replayed from everything before it.
    before = Tracker(tracker.sender_id, tracker.domain, events[: len(events) - len(tail)])
    head += [slot_event(k, v) for k, v in before.slots.items() if v is not None]
    if before.active_loop:
        head.append(loop_event(before.active_loop))
    return [*head, *tail]
