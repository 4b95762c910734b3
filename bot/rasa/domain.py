"""A Rasa 3 project's domain as Rasa reads it: intents, entities, typed slots with their mappings,
responses with variations and conditions, forms, actions and the session config.

supportbot's own `bot.dialogue.domain.Domain` keeps serving the widget and the fallbacks; this one
drives the Rasa dialogue (slot filling, forms, response selection, the action server's `domain`).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot import yaml12

DEFAULT_ACTIONS = (
    "action_listen",
    "action_restart",
    "action_session_start",
    "action_default_fallback",
    "action_deactivate_loop",
    "action_revert_fallback_events",
    "action_default_ask_affirmation",
    "action_default_ask_rephrase",
    "action_two_stage_fallback",
    "action_unlikely_intent",
    "action_back",
    "action_extract_slots",
)
SLOT_TYPES = ("text", "bool", "categorical", "float", "list", "any")
_DOMAIN_KEYS = {
    "version",
    "intents",
    "entities",
    "slots",
    "responses",
    "forms",
    "actions",
    "session_config",
    "e2e_actions",
    "config",
}
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][\w-]*)\}")


class RasaDomainError(ValueError):
    """A domain.yml that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class Condition:
    active_loop: str | None
    requested_slot: str | None = None
    loop_given: bool = True  # `active_loop` was written (null: no loop active)


@dataclass(frozen=True)
class SlotMapping:
    type: str  # from_entity | from_text | from_intent | from_trigger_intent | custom
    entity: str | None = None
    role: str | None = None
    group: str | None = None
    intent: tuple[str, ...] = ()
    not_intent: tuple[str, ...] = ()
    value: Any = None
    conditions: tuple[Condition, ...] = ()
    action: str | None = None  # custom mappings: the action that fills the slot

    def intent_allows(self, intent: str | None) -> bool:
        if self.intent and intent not in self.intent:
            return False
        return not (self.not_intent and intent in self.not_intent)

    def conditions_hold(self, active_loop: str | None, requested_slot: str | None) -> bool:
        if not self.conditions:
            return True
        for c in self.conditions:
            if c.loop_given and c.active_loop != active_loop:
                continue
            if c.requested_slot is not None and c.requested_slot != requested_slot:
                continue
            return True
        return False


@dataclass
class Slot:
    name: str
    type: str
    influence_conversation: bool
    initial_value: Any = None
    values: tuple[str, ...] = ()  # categorical
    min_value: float = 0.0
    max_value: float = 1.0
    mappings: tuple[SlotMapping, ...] = ()

    def coerce(self, value: Any) -> Any:
        """A value as the slot holds it: what it is given, as Rasa stores it ("4 days" stays "4"),
        except that a bool slot filled from text ("true", "no") holds the boolean."""
        if value is None:
            return None
        if self.type == "bool" and isinstance(value, str):
            low = value.strip().lower()
            return True if low in ("true", "yes", "1") else False if low in ("false", "no", "0") else value
        return value

    def feature(self, value: Any) -> Any:
        """What a policy sees of the slot (Rasa's featurisation, as a hashable value)."""
        if self.type == "bool":
            return None if value is None else bool(value)
        if self.type == "categorical":
            if value is None:
                return None
            low = str(value).lower()
            return low if low in {v.lower() for v in self.values} else "__other__"
        if self.type == "float":
            try:
                x = float(value)
            except (TypeError, ValueError):
                return None
            span = (self.max_value - self.min_value) or 1.0
            return round(min(1.0, max(0.0, (x - self.min_value) / span)), 2)
        if self.type == "list":
            return bool(value)
        return value is not None


@dataclass(frozen=True)
class Form:
    name: str
    required_slots: tuple[str, ...]
    ignored_intents: tuple[str, ...] = ()


@dataclass(frozen=True)
class Intent:
    name: str
    use_entities: tuple[str, ...] | None = None  # None: all
    ignore_entities: tuple[str, ...] = ()

    def uses(self, entity: str) -> bool:
        if entity in self.ignore_entities:
            return False
        return self.use_entities is None or entity in self.use_entities


@dataclass
class RasaDomain:
    intents: dict[str, Intent]
    entities: list[str]
    slots: dict[str, Slot]
    responses: dict[str, list[dict[str, Any]]]
    forms: dict[str, Form]
    actions: list[str]
    session_expiration_minutes: float = 60.0
    carry_over_slots: bool = True
    raw: dict[str, Any] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, paths: list[Path]) -> RasaDomain:
        """One domain.yml, or a folder of domain files merged as Rasa merges them."""
        files: list[Path] = []
        for p in paths:
            files += sorted([*p.glob("**/*.yml"), *p.glob("**/*.yaml")]) if p.is_dir() else [p]
        merged: dict[str, Any] = {}
        for f in files:
            doc = yaml12.read(f, RasaDomainError) or {}
            if not isinstance(doc, dict):
                raise RasaDomainError(f"{f}: a domain is a mapping")
            for key, value in doc.items():
                if isinstance(value, list):
                    merged[key] = [*merged.get(key, []), *value]
                elif isinstance(value, dict):
                    merged[key] = {**merged.get(key, {}), **value}
                else:
                    merged[key] = value
        return cls.from_dict(merged, source=", ".join(str(f) for f in files))

    @classmethod
    def from_dict(cls, doc: dict[str, Any], source: str = "domain") -> RasaDomain:
        notices = [f"{source}: `{k}` is not used" for k in doc if k not in _DOMAIN_KEYS]
        intents = dict(_intent(item, source) for item in doc.get("intents") or [])
        entities = [e if isinstance(e, str) else next(iter(e)) for e in doc.get("entities") or []]
        slots = {name: _slot(name, spec or {}, source) for name, spec in (doc.get("slots") or {}).items()}
        if "requested_slot" not in slots:
            slots["requested_slot"] = Slot("requested_slot", "any", False)
        responses = {name: _variants(name, v, source) for name, v in (doc.get("responses") or {}).items()}
        forms = {}
        for name, spec in (doc.get("forms") or {}).items():
            spec = spec or {}
            required = spec.get("required_slots") or []
            if isinstance(required, dict):  # Rasa 2 style: slot -> mappings
                notices.append(
                    f"{source}: form {name}: Rasa 2 `required_slots` mappings; slots' own mappings are used"
                )
                required = list(required)
            forms[name] = Form(name, tuple(required), tuple(spec.get("ignored_intents") or []))
            for slot in required:
                if slot not in slots:
                    raise RasaDomainError(
                        f"{source}: form {name} requires slot {slot!r}, which is not defined"
                    )
        actions = [a if isinstance(a, str) else next(iter(a)) for a in doc.get("actions") or []]
        session = doc.get("session_config") or {}
        if doc.get("e2e_actions"):
            notices.append(f"{source}: `e2e_actions` (end-to-end bot texts) are not predicted")
        return cls(
            intents,
            entities,
            slots,
            responses,
            forms,
            actions,
            float(session.get("session_expiration_time", 60) or 0),
            bool(session.get("carry_over_slots_to_new_session", True)),
            doc,
            notices,
        )

    @property
    def action_names(self) -> list[str]:
        """Everything a policy may predict, in a stable order."""
        retrieval = [name.split("/", 1)[0] for name in self.responses if "/" in name]
        names = [*DEFAULT_ACTIONS, *self.responses, *retrieval, *self.forms, *self.actions]
        return list(dict.fromkeys(names))

    def is_custom(self, name: str) -> bool:
        """Run on the action server: a listed action that is neither a response nor a form."""
        return name in self.actions and name not in self.responses and name not in self.forms

    def initial_slots(self) -> dict[str, Any]:
        return {name: slot.initial_value for name, slot in self.slots.items()}

    def render(
        self,
        name: str,
        slots: dict[str, Any],
        channel: str | None = None,
        values: dict[str, Any] | None = None,
        rng: random.Random | None = None,
    ) -> dict[str, Any] | None:
        """One variation of a response, as Rasa's template NLG picks it: those whose `condition`s
        hold on the slots (conditioned ones first), for this channel; `{slot}` filled."""
        variants = self.responses.get(name)
        if not variants:
            return None
        usable = [v for v in variants if _channel_fits(v, channel) and _conditions_hold(v, slots)]
        # Rasa's order: conditioned for this channel, this channel's, conditioned, then generic.
        tiers = [
            [v for v in usable if v.get("condition") and v.get("channel")],
            [v for v in usable if not v.get("condition") and v.get("channel")],
            [v for v in usable if v.get("condition") and not v.get("channel")],
            [v for v in usable if not v.get("condition") and not v.get("channel")],
        ]
        pool = next((tier for tier in tiers if tier), [])
        if not pool:
            return None
        chosen = dict((rng or random).choice(pool))
        fill = {**{k: v for k, v in slots.items()}, **(values or {})}
        message: dict[str, Any] = {}
        for key in ("text", "image", "buttons", "custom", "attachment", "quick_replies", "elements"):
            if chosen.get(key) is not None:
                message[key] = _fill(chosen[key], fill)
        if message.get("quick_replies") and not message.get("buttons"):
            message["buttons"] = message.pop("quick_replies")
        message["response"] = name
        return message


def _fill(value: Any, slots: dict[str, Any]) -> Any:
    """`{slot}` placeholders filled as Rasa fills them; unknown names stay as written."""
    if isinstance(value, str):
        return _PLACEHOLDER.sub(
            lambda m: str(slots[m.group(1)]) if slots.get(m.group(1)) is not None else m.group(0), value
        )
    if isinstance(value, list):
        return [_fill(v, slots) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, slots) for k, v in value.items()}
    return value


def _channel_fits(variant: dict[str, Any], channel: str | None) -> bool:
    wanted = variant.get("channel")
    return wanted is None or wanted == channel


def _conditions_hold(variant: dict[str, Any], slots: dict[str, Any]) -> bool:
    for c in variant.get("condition") or []:
        if not isinstance(c, dict) or c.get("type", "slot") != "slot":
            return False
        have = slots.get(str(c.get("name")))
        want = c.get("value")
        if have != want and str(have).lower() != str(want).lower():
            return False
    return True


def _intent(item: Any, source: str) -> tuple[str, Intent]:
    if isinstance(item, str):
        return item, Intent(item)
    if isinstance(item, dict) and len(item) == 1:
        name, spec = next(iter(item.items()))
        spec = spec or {}
        use = spec.get("use_entities", True)
        ignore = spec.get("ignore_entities") or []
        use_entities = None if use is True else () if use is False else tuple(use or ())
        return str(name), Intent(str(name), use_entities, tuple(ignore))
    raise RasaDomainError(f"{source}: an intent is a name or `name: {{use_entities: ...}}`, got {item!r}")


def _slot(name: str, spec: dict[str, Any], source: str) -> Slot:
    kind = str(spec.get("type", "any"))
    if kind not in SLOT_TYPES:
        raise RasaDomainError(f"{source}: slot {name}: type {kind!r} is not one of {', '.join(SLOT_TYPES)}")
    mappings = tuple(_mapping(name, m, source) for m in spec.get("mappings") or [])
    return Slot(
        name,
        kind,
        bool(spec.get("influence_conversation", kind != "any")),
        spec.get("initial_value"),
        tuple(str(v) for v in spec.get("values") or []),
        float(spec.get("min_value", 0.0)),
        float(spec.get("max_value", 1.0)),
        mappings,
    )


def _mapping(slot: str, m: dict[str, Any], source: str) -> SlotMapping:
    kind = str(m.get("type", ""))
    if kind not in ("from_entity", "from_text", "from_intent", "from_trigger_intent", "custom"):
        raise RasaDomainError(f"{source}: slot {slot}: mapping type {kind!r} is not a Rasa 3 mapping")
    if kind == "from_entity" and not m.get("entity"):
        raise RasaDomainError(f"{source}: slot {slot}: a from_entity mapping needs `entity`")
    conditions = tuple(
        Condition(c.get("active_loop"), c.get("requested_slot"), "active_loop" in c)
        for c in m.get("conditions") or []
    )
    return SlotMapping(
        kind,
        m.get("entity"),
        m.get("role"),
        m.get("group"),
        _names(m.get("intent")),
        _names(m.get("not_intent")),
        m.get("value"),
        conditions,
        m.get("action"),
    )


def _names(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    return (str(value),) if isinstance(value, str) else tuple(str(v) for v in value)


def _variants(name: str, variants: Any, source: str) -> list[dict[str, Any]]:
    if not isinstance(variants, list) or not all(isinstance(v, dict) for v in variants):
        raise RasaDomainError(
            f"{source}: response {name}: a list of variations (text, buttons, image, "
            "custom, condition, channel)"
        )
    return [dict(v) for v in variants]
