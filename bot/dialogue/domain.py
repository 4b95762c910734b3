"""The domain: responses, what each intent does, forms with slot validation, hand-off rules.

Loaded from YAML so that every string a customer reads lives in data, never in code.
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, Field, model_validator

from bot.types import Button, Reply


class ResponseVariant(BaseModel):
    text: str
    buttons: list[Button] = Field(default_factory=list)


class IntentSpec(BaseModel):
    action: Literal["respond", "faq", "form", "handoff", "stop", "affirm", "deny"]
    response: str | None = None
    form: str | None = None
    reason: str | None = None
    title: str | None = None


class SlotSpec(BaseModel):
    name: str
    ask: str
    invalid: str
    pattern: str | None = Field(None, description="Regex found anywhere in the message; match is the value.")
    min_length: int = 1
    must_contain: str | None = Field(None, description="Regex a free-text value must contain.")
    upper: bool = False
    template: str | None = Field(None, description="Canonical form, e.g. 'KK-{digits}'.")

    def extract(self, text: str) -> str | None:
        """The slot's value in this message, or None when the message does not give a valid one."""
        text = " ".join(text.split())
        if self.pattern:
            m = re.search(self.pattern, text)
            if not m:
                return None
            value = m.group(0)
        else:
            value = text.strip(" .,!")
            if len(value) < self.min_length:
                return None
            if self.must_contain and not re.search(self.must_contain, value):
                return None
        if self.template:
            value = self.template.format(digits="".join(ch for ch in value if ch.isdigit()))
        return value.upper() if self.upper else value


class FormSpec(BaseModel):
    slots: list[SlotSpec]
    submit: str = Field(description="Name of the form action run when every slot is filled.")
    done: str | None = None

    def slot(self, name: str | None) -> SlotSpec | None:
        return next((s for s in self.slots if s.name == name), None)


class WidgetStrings(BaseModel):
    title: str
    subtitle: str = ""
    placeholder: str
    send: str
    greeting: str
    typing: str
    error: str
    open_label: str
    close_label: str


class HandoffRules(BaseModel):
    """When to step aside without being asked: escalation words and a plain negativity count."""

    escalation_patterns: list[str] = Field(default_factory=list)
    negative_words: list[str] = Field(default_factory=list)
    negative_threshold: int = 2

    def trigger(self, text: str) -> str | None:
        if any(re.search(p, text) for p in self.escalation_patterns):
            return "escalation"
        words = re.findall(r"[\w']+", text.lower())
        score = sum(w in self.negative_words for w in words)
        shouting = [w for w in re.findall(r"[A-Za-z]{3,}", text) if w.isupper()]
        score += (len(shouting) >= 4) + ("!!!" in text)
        return "negative_sentiment" if self.negative_words and score >= self.negative_threshold else None


class Persona(BaseModel):
    """Who the assistant is and how it sounds: the generative answers' prompt uses both."""

    name: str = "the assistant"
    tone: str = ""


class Domain(BaseModel):
    company: str
    assistant: Persona = Field(default_factory=Persona)
    handoff: HandoffRules = Field(default_factory=HandoffRules)
    widget: WidgetStrings
    responses: dict[str, list[ResponseVariant]]
    intents: dict[str, IntentSpec]
    forms: dict[str, FormSpec] = Field(default_factory=dict)
    entities: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _references_exist(self) -> Domain:
        missing = []
        for name, spec in self.intents.items():
            if spec.response and spec.response not in self.responses:
                missing.append(f"intent {name}: response {spec.response}")
            if spec.action == "form" and spec.form not in self.forms:
                missing.append(f"intent {name}: form {spec.form}")
        for name, form in self.forms.items():
            for slot in form.slots:
                for ref in (slot.ask, slot.invalid):
                    if ref not in self.responses:
                        missing.append(f"form {name}: response {ref}")
            if form.done and form.done not in self.responses:
                missing.append(f"form {name}: response {form.done}")
        for required in REQUIRED_RESPONSES:
            if required not in self.responses:
                missing.append(f"response {required}")
        if missing:
            raise ValueError("domain refers to undefined items: " + "; ".join(missing))
        return self

    @classmethod
    def load(cls, path: Path) -> Domain:
        """Our domain file, or a Rasa 3 project's domain.yml as it is (see `from_rasa`)."""
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if isinstance(doc.get("intents"), list):
            return cls.from_rasa(doc)
        return cls(**doc)

    @classmethod
    def from_rasa(cls, doc: dict) -> Domain:
        """A Rasa domain: its responses as they are; an intent with an `utter_<intent>` response
        answers with it, `affirm`/`deny`/`stop` keep their meaning, `human_handoff`/`talk_to_human`
        hand off, and every other intent is answered from the FAQ. Responses supportbot needs and
        Rasa domains lack (clarify, hand-off...) come from `defaults.yml` unless defined."""
        defaults = yaml.safe_load((Path(__file__).parent / "defaults.yml").read_text(encoding="utf-8"))
        responses = {**defaults["responses"]}
        for name, variants in (doc.get("responses") or {}).items():
            usable = [v for v in variants or [] if isinstance(v, dict) and v.get("text")]
            if usable:
                responses[name] = usable
        special = {"affirm": "affirm", "deny": "deny", "stop": "stop"}
        intents: dict[str, dict] = {}
        for item in doc["intents"]:
            name = item if isinstance(item, str) else next(iter(item))
            if name in special:
                intents[name] = {"action": special[name], "response": "utter_anything_else"}
            elif name in {"human_handoff", "talk_to_human"}:
                intents[name] = {"action": "handoff", "reason": "customer_asked"}
            elif f"utter_{name}" in responses:
                intents[name] = {"action": "respond", "response": f"utter_{name}"}
            elif name == "out_of_scope":
                intents[name] = {"action": "respond", "response": "utter_out_of_scope"}
            else:
                intents[name] = {"action": "faq"}
        return cls(company=str(doc.get("company", "")), widget=defaults["widget"], responses=responses,
                   intents=intents)

    def render(self, name: str, values: dict[str, str] | None = None, rng: random.Random | None = None,
               buttons: list[Button] | None = None) -> Reply:
        """One variant of a response with `{slot}` placeholders filled; unknown ones stay visible."""
        variants = self.responses[name]
        variant = (rng or random).choice(variants) if len(variants) > 1 else variants[0]
        text = variant.text.format_map(_Keep(values or {}))
        return Reply(text=text, buttons=[*variant.buttons, *(buttons or [])])

    def extract_entities(self, text: str) -> dict[str, str]:
        found = {}
        for name, pattern in self.entities.items():
            m = re.search(pattern, text)
            if m:
                found[name] = m.group(0)
        return found

    def title(self, intent: str) -> str:
        spec = self.intents.get(intent)
        return (spec.title if spec and spec.title else intent.replace("_", " ").capitalize())


REQUIRED_RESPONSES = (
    "utter_default", "utter_clarify", "utter_offer_handoff", "utter_handoff",
    "utter_handoff_pending", "utter_form_cancelled", "utter_out_of_scope",
    "utter_nothing_to_stop", "utter_anything_else", "utter_handoff_offline", "utter_agent_joined",
    "utter_bot_back", "utter_conversation_closed",
)


class _Keep(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"
