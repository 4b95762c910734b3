"""Slots filled from a user message by the domain's mappings (Rasa 3's `action_extract_slots`)."""

from __future__ import annotations

from typing import Any

from bot.rasa.domain import RasaDomain, Slot, SlotMapping
from bot.rasa.tracker import Tracker, slot_event


def mapped_value(mapping: SlotMapping, slot: Slot, message: dict[str, Any]) -> Any:
    """What one mapping takes from the message (None: nothing); the intent filter is checked here,
    the mapping's conditions by the caller."""
    intent = (message.get("intent") or {}).get("name")
    if not mapping.intent_allows(intent):
        return None
    if mapping.type == "from_entity":
        values = [
            e.get("value")
            for e in message.get("entities") or []
            if e.get("entity") == mapping.entity
            and (mapping.role is None or e.get("role") == mapping.role)
            and (mapping.group is None or e.get("group") == mapping.group)
        ]
        if not values:
            return None
        return values if slot.type == "list" else values[0]
    if mapping.type == "from_text":
        return message.get("text")
    if mapping.type == "from_intent":
        return mapping.value
    return None  # custom: an action fills it


def extract_slots(tracker: Tracker) -> list[dict[str, Any]]:
    """SlotSet events for what the latest message fills, respecting each mapping's conditions and
    the active form's `ignored_intents`. A slot the active form asks for is set even when the value
    is unchanged, so that the form's validation sees it."""
    domain: RasaDomain = tracker.domain
    message = tracker.latest_message
    if not message:
        return []
    intent = tracker.latest_intent
    loop = tracker.active_loop
    requested = tracker.slots.get("requested_slot")
    form = domain.forms.get(loop or "")
    events = []
    for slot in domain.slots.values():
        if form is not None and slot.name in form.required_slots and intent in form.ignored_intents:
            continue
        for mapping in slot.mappings:
            if mapping.type == "custom":
                continue
            if mapping.type == "from_trigger_intent":
                # Rasa: only while a loop is active (one of the conditions' loops, if they name any),
                # whatever slot it asks for; the intent is what started or now addresses the form.
                loops = {c.active_loop for c in mapping.conditions if c.loop_given}
                if loop is None or (loops and loop not in loops) or not mapping.intent_allows(intent):
                    continue
                value = mapping.value
            elif not mapping.conditions_hold(loop, requested):
                continue
            else:
                value = mapped_value(mapping, slot, message)
            if value is None:
                continue
            if tracker.slots.get(slot.name) != value or slot.name == requested:
                events.append(slot_event(slot.name, value))
            break
    return events
