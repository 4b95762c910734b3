"""A Rasa 3 form, run as Rasa runs it: activate (slots extracted again with the loop active, the
prefilled ones validated), validate what the latest message filled through `validate_<form>` on
the action server (or take it as it is), reject when the requested slot got nothing (so that
rules and stories handle the digression), ask for the next slot, deactivate when all are set."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from bot.rasa.domain import Form, RasaDomain
from bot.rasa.slots import extract_slots
from bot.rasa.tracker import LISTEN, Tracker, action_event, loop_event, slot_event

REQUESTED = "requested_slot"


@dataclass
class Outcome:
    """What running an action produced: the events to log after its `action` event."""

    events: list[dict[str, Any]] = field(default_factory=list)
    rejected: bool = False


# Runs a named action (a response, a custom action) against a tracker, without logging it.
RunAction = Callable[[str, Tracker], Awaitable[Outcome]]


class FormLoop:
    def __init__(self, domain: RasaDomain, run_action: RunAction) -> None:
        self.domain = domain
        self.run_action = run_action

    async def run(self, name: str, tracker: Tracker) -> Outcome:
        form = self.domain.forms[name]
        scratch = Tracker(tracker.sender_id, self.domain, list(tracker.events))
        events: list[dict[str, Any]] = []

        def add(*new: dict[str, Any]) -> None:
            events.extend(new)
            scratch.add(*new)

        if tracker.active_loop != name:
            add(loop_event(name))
            add(*extract_slots(scratch))
            prefilled = [s for s in form.required_slots if scratch.slots.get(s) is not None]
            if prefilled:
                outcome = await self._validate(
                    form, scratch, [slot_event(s, scratch.slots[s]) for s in prefilled]
                )
                add(*outcome.events)
        elif tracker.latest_action == LISTEN:
            candidates = self._candidates(form, scratch)
            requested = scratch.slots.get(REQUESTED)
            custom = any(
                m.type == "custom" for s in form.required_slots for m in self.domain.slots[s].mappings
            )
            if requested and not candidates and not custom:
                return Outcome(rejected=True)
            outcome = await self._validate(form, scratch, candidates)
            if outcome.rejected:
                return outcome
            validated = [
                e for e in outcome.events if e.get("event") == "slot" and e.get("name") in form.required_slots
            ]
            if requested and not candidates and not validated:
                return Outcome(rejected=True)
            add(*outcome.events)
        if any(e.get("event") == "active_loop" and e.get("name") is None for e in events):
            return Outcome(events)  # the validation deactivated the form
        add(*await self._request_next(form, scratch, events))
        return Outcome(events)

    def _candidates(self, form: Form, tracker: Tracker) -> list[dict[str, Any]]:
        return [
            e
            for e in tracker.events_after_latest_user()
            if e.get("event") == "slot" and e.get("name") in form.required_slots
        ]

    async def _validate(self, form: Form, tracker: Tracker, candidates: list[dict[str, Any]]) -> Outcome:
        """`validate_<form>` on the action server when the domain lists it; else the values stand."""
        action = f"validate_{form.name}"
        if action not in self.domain.actions:
            return Outcome(list(candidates))
        # As Rasa's temporary tracker: the form's own `action` event, then only the candidates (rasa-sdk
        # validates the slot events that end the tracker).
        probe = Tracker(
            tracker.sender_id, self.domain, [*tracker.events, action_event(form.name), *candidates]
        )
        return await self.run_action(action, probe)

    async def _request_next(
        self, form: Form, tracker: Tracker, so_far: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        chosen = [e for e in so_far if e.get("event") == "slot" and e.get("name") == REQUESTED]
        if chosen and chosen[-1].get("value") is not None and tracker.slots.get(chosen[-1]["value"]) is None:
            slot: str | None = chosen[-1]["value"]
        else:
            slot = next((s for s in form.required_slots if tracker.slots.get(s) is None), None)
        if slot is None:
            return [slot_event(REQUESTED, None), loop_event(None)]
        events = [slot_event(REQUESTED, slot)]
        asking = Tracker(tracker.sender_id, self.domain, [*tracker.events, *events])
        ask = self._ask_action(form, slot)
        if ask is not None:
            events += (await self.run_action(ask, asking)).events
        return events

    def _ask_action(self, form: Form, slot: str) -> str | None:
        for name in (f"action_ask_{form.name}_{slot}", f"action_ask_{slot}"):
            if name in self.domain.actions:
                return name
        for name in (f"utter_ask_{form.name}_{slot}", f"utter_ask_{slot}"):
            if name in self.domain.responses:
                return name
        return None
