"""A Rasa conversation tracker: the event list in Rasa's JSON shapes, replayed into slots, the
active loop, the latest message and the states the policies read.

Events are stored as Rasa writes them, so `GET /conversations/{id}/tracker` and the action server
see exactly what a Rasa server would have sent.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from bot.rasa.domain import RasaDomain

LISTEN = "action_listen"
KNOWN_EVENTS = {
    "user",
    "bot",
    "action",
    "slot",
    "active_loop",
    "reset_slots",
    "restart",
    "session_started",
    "followup",
    "rewind",
    "undo",
    "action_execution_rejected",
    "pause",
    "resume",
    "entities",
    "user_featurization",
    "loop_interrupted",
    "form",
    "form_validation",
}


@dataclass(frozen=True)
class Snapshot:
    """One state of the conversation (Rasa's `{prev_action, user, slots, active_loop}`)."""

    prev_action: str | None
    intent: str | None
    entities: tuple[str, ...]
    slots: tuple[tuple[str, Any], ...]  # every slot's featurised value (None: unset)
    active_loop: str | None

    def memo_key(self, influencing: frozenset[str]) -> tuple[Any, ...]:
        """The state as memoization stores it: only slots that influence the conversation."""
        slots = tuple((n, v) for n, v in self.slots if n in influencing and v is not None)
        return (self.prev_action, self.intent, self.entities, slots, self.active_loop)


def action_event(name: str, policy: str | None = None, confidence: float | None = 1.0) -> dict[str, Any]:
    return {
        "event": "action",
        "timestamp": time.time(),
        "name": name,
        "policy": policy,
        "confidence": confidence,
    }


def slot_event(name: str, value: Any) -> dict[str, Any]:
    return {"event": "slot", "timestamp": time.time(), "name": name, "value": value}


def loop_event(name: str | None) -> dict[str, Any]:
    return {"event": "active_loop", "timestamp": time.time(), "name": name}


def bot_event(message: dict[str, Any]) -> dict[str, Any]:
    data = {
        k: message.get(k) for k in ("elements", "quick_replies", "buttons", "attachment", "image", "custom")
    }
    return {
        "event": "bot",
        "timestamp": time.time(),
        "text": message.get("text"),
        "data": data,
        "metadata": {"utter_action": message["response"]} if message.get("response") else {},
    }


def user_event(text: str, parse_data: dict[str, Any], message_id: str | None, channel: str) -> dict[str, Any]:
    return {
        "event": "user",
        "timestamp": time.time(),
        "text": text,
        "parse_data": parse_data,
        "message_id": message_id,
        "input_channel": channel,
    }


@dataclass
class Tracker:
    sender_id: str
    domain: RasaDomain
    events: list[dict[str, Any]] = field(default_factory=list)

    # Derived by `replay` (never stored).
    slots: dict[str, Any] = field(default_factory=dict)
    active_loop: str | None = None
    loop_rejected: bool = False
    loop_interrupted: bool = False
    latest_message: dict[str, Any] = field(default_factory=dict)
    latest_action: str | None = None
    latest_input_channel: str | None = None
    followup: str | None = None
    paused: bool = False

    def __post_init__(self) -> None:
        self.replay()

    def applied_events(self) -> list[dict[str, Any]]:
        """Events after the last restart, with reverted ones taken out (Rasa's `applied_events`)."""
        applied: list[dict[str, Any]] = []
        for e in self.events:
            kind = e.get("event")
            if kind in ("restart", "session_started"):
                applied = []
            elif kind == "undo":
                _undo_till(applied, "action")
            elif kind == "rewind":
                _undo_till(applied, "user")
                _undo_till(applied, "action")
            else:
                applied.append(e)
        return applied

    def replay(self) -> None:
        self.slots = self.domain.initial_slots()
        self.active_loop, self.loop_rejected, self.loop_interrupted = None, False, False
        self.latest_message, self.latest_action, self.followup, self.paused = {}, None, None, False
        self.latest_input_channel = None
        for e in self.applied_events():
            self._apply(e)

    def _apply(self, e: dict[str, Any]) -> None:
        kind = e.get("event")
        if kind == "slot":
            slot = self.domain.slots.get(str(e.get("name")))
            self.slots[str(e.get("name"))] = slot.coerce(e.get("value")) if slot else e.get("value")
        elif kind == "reset_slots":
            self.slots = self.domain.initial_slots()
        elif kind in ("active_loop", "form"):
            self.active_loop = e.get("name")
            self.loop_rejected = self.loop_interrupted = False
        elif kind == "action_execution_rejected":
            if e.get("name") == self.active_loop:
                self.loop_rejected = True
        elif kind == "action":
            name = e.get("name")
            self.latest_action = name
            self.followup = None
            if self.active_loop and name == self.active_loop:
                self.loop_rejected = self.loop_interrupted = False
            elif self.active_loop and name != LISTEN:
                self.loop_interrupted = True
        elif kind == "user":
            self.latest_message = {"text": e.get("text"), **(e.get("parse_data") or {})}
            self.latest_input_channel = e.get("input_channel")
        elif kind == "entities":
            ents = list(self.latest_message.get("entities") or []) + list(e.get("entities") or [])
            self.latest_message = {**self.latest_message, "entities": ents}
        elif kind == "followup":
            self.followup = e.get("name")
        elif kind == "pause":
            self.paused = True
        elif kind == "resume":
            self.paused = False
        elif kind == "restart":
            self.slots = self.domain.initial_slots()
            self.active_loop, self.latest_message = None, {}

    def add(self, *events: dict[str, Any]) -> None:
        """Append events and bring the derived state up to date."""
        self.events.extend(events)
        if any(e.get("event") in ("undo", "rewind", "restart", "session_started") for e in events):
            self.replay()
        else:
            for e in events:
                self._apply(e)

    @property
    def latest_intent(self) -> str | None:
        return (self.latest_message.get("intent") or {}).get("name")

    def entity_names(self) -> tuple[str, ...]:
        intent = self.domain.intents.get(self.latest_intent or "")
        names = {e.get("entity") for e in self.latest_message.get("entities") or [] if e.get("entity")}
        return tuple(sorted(str(n) for n in names if intent is None or intent.uses(str(n))))

    def snapshot(self) -> Snapshot:
        """What the policies see before the next action."""
        slots = tuple(
            sorted(
                (name, slot.feature(self.slots.get(name)))
                for name, slot in self.domain.slots.items()
                if name != "requested_slot"
            )
        )
        return Snapshot(
            self.latest_action,
            self.latest_intent if self.latest_message else None,
            self.entity_names() if self.latest_message else (),
            slots,
            self.active_loop,
        )

    def past_states(self) -> list[Snapshot]:
        """One snapshot before each action of the applied events, plus the current one: what the
        memoization and rule policies match against."""
        shadow = Tracker(self.sender_id, self.domain)
        states: list[Snapshot] = []
        for e in self.applied_events():
            if e.get("event") == "action":
                states.append(shadow.snapshot())
            shadow.events.append(e)
            shadow._apply(e)
        states.append(shadow.snapshot())
        return states

    def events_after_latest_user(self) -> list[dict[str, Any]]:
        applied = self.applied_events()
        for i in range(len(applied) - 1, -1, -1):
            if applied[i].get("event") == "user":
                return applied[i + 1 :]
        return applied

    def as_dict(self) -> dict[str, Any]:
        """The tracker in Rasa's JSON (`GET /conversations/{id}/tracker`, the action server's `tracker`)."""
        applied = self.applied_events()
        latest_input = next(
            (e.get("input_channel") for e in reversed(applied) if e.get("event") == "user"), None
        )
        latest_bot = next((e.get("text") for e in reversed(applied) if e.get("event") == "bot"), None)
        return {
            "sender_id": self.sender_id,
            "slots": dict(self.slots),
            "latest_message": self.latest_message or {"intent": {}, "entities": [], "text": None},
            "latest_event_time": self.events[-1].get("timestamp") if self.events else None,
            "followup_action": self.followup,
            "paused": self.paused,
            "events": list(self.events),
            "latest_input_channel": latest_input,
            "latest_action_name": self.latest_action,
            "latest_action": {"action_name": self.latest_action} if self.latest_action else {},
            "latest_bot_utterance": latest_bot,
            "active_loop": (
                {
                    "name": self.active_loop,
                    "validate": True,
                    "rejected": self.loop_rejected,
                    "trigger_message": {},
                }
                if self.active_loop
                else {}
            ),
        }


def _undo_till(events: list[dict[str, Any]], kind: str) -> None:
    while events:
        if events.pop().get("event") == kind:
            return
