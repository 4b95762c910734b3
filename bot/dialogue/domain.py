"""The domain: responses, what each intent does, forms with slot validation, hand-off rules.

Loaded from YAML so that every string a customer reads lives in data, never in code. A domain is
written in one language (`language`, "en" by default); translations of what a customer reads are
overlays beside it, one file per language (see `Domain`). Forms and their slots are in forms.py,
response variants, widget strings and the overlays' checks in texts.py.
"""

from __future__ import annotations

import logging
import random
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, model_validator

from bot import yaml12
from bot.dialogue.forms import FormSpec, normalize
from bot.dialogue.forms import SlotSpec as SlotSpec  # re-exported: part of the domain's model
from bot.dialogue.texts import OVERLAY_FILE, ResponseVariant, Translation, WidgetStrings, overlay_problems
from bot.types import Button, Reply

log = logging.getLogger(__name__)


class DomainError(ValueError):
    """A domain or translation overlay that cannot be used; the message names file and key."""


class IntentSpec(BaseModel):
    action: Literal["respond", "faq", "form", "handoff", "stop", "affirm", "deny"]
    response: str | None = None
    form: str | None = None
    reason: str | None = None
    title: str | None = None


class HandoffRules(BaseModel):
    """When to step aside whatever the intent model says: the customer asks for a person in so many
    words, escalation words, and a plain negativity count."""

    request_patterns: list[str] = Field(default_factory=list)
    escalation_patterns: list[str] = Field(default_factory=list)
    negative_words: list[str] = Field(default_factory=list)
    negative_threshold: int = 2

    def trigger(self, text: str) -> str | None:
        if any(re.search(p, text) for p in self.escalation_patterns):
            return "escalation"
        if any(re.search(p, text) for p in self.request_patterns):
            return "customer_asked"
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
    """What the bot says and does, written in one language (`language`, ISO 639-1, default "en").

    Translations are overlays beside the domain file, one per language:
    `<folder of the domain file>/<language>/domain_responses.yml` (the demo's is
    `training_data/zh/domain_responses.yml`). `load` reads those of `languages` (the deployment's
    `Settings.languages`), or every one it finds there when none are given. An overlay has the shape of
    the parts of the domain a customer reads: `widget` strings, `intents: {name: {title: ...}}` and
    `responses` with their variants and buttons. It is checked against the domain at load; a broken
    one is a `DomainError` naming the file and key: each response must exist in the domain, with the
    same number of variants, the same button payloads in the same order and the same
    `{placeholders}`. Whatever an overlay leaves out is said in the domain's own language, and
    `load` logs those gaps once per language so that translators see them (`missing_translations`).

    `render(..., language=...)`, `title(intent, language)` and `widget_strings(language)` give the
    overlay's text where it has the item, else the domain's own.
    """

    company: str
    language: str = Field("en", description="The language the domain file itself is written in.")
    assistant: Persona = Field(default_factory=Persona)
    handoff: HandoffRules = Field(default_factory=HandoffRules)
    widget: WidgetStrings
    responses: dict[str, list[ResponseVariant]]
    intents: dict[str, IntentSpec]
    forms: dict[str, FormSpec] = Field(default_factory=dict)
    entities: dict[str, str] = Field(default_factory=dict)
    translations: dict[str, Translation] = Field(default_factory=dict, exclude=True)

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
    def load(cls, path: Path, languages: list[str] | None = None) -> Domain:
        """Our domain file, or a Rasa 3 project's domain.yml as it is (see `from_rasa`), with the
        translation overlays beside it: those of `languages`, or all of them (None or empty)."""
        doc = yaml12.load(path.read_text(encoding="utf-8")) or {}  # a button titled "Yes" stays text
        domain = cls.from_rasa(doc) if isinstance(doc.get("intents"), list) else cls(**doc)
        wanted = {lang.lower() for lang in languages} if languages else None
        for overlay in sorted(path.parent.glob(f"*/{OVERLAY_FILE}")):
            language = overlay.parent.name.lower()
            if wanted is not None and language not in wanted:
                continue
            try:
                overlay_doc = yaml.safe_load(overlay.read_text(encoding="utf-8")) or {}
            except yaml.YAMLError as exc:
                raise DomainError(f"{overlay}: not valid YAML: {exc}") from exc
            domain.add_translation(language, overlay_doc, source=str(overlay))
        for language in sorted((wanted or set()) - {domain.language} - set(domain.translations)):
            log.warning("no %s translation of the domain (%s): %s customers are answered in %s",
                        language, path.parent / language / OVERLAY_FILE, language, domain.language)
        return domain

    def add_translation(self, language: str, doc: Any, source: str = "") -> Translation:
        """Check an overlay (the parsed YAML) against this domain and use it for `language`.
        Raises `DomainError` naming `source` and every broken key; logs what the overlay lacks."""
        language = language.lower()
        where = source or f"the {language} overlay"
        if language == self.language:
            raise DomainError(f"{where}: an overlay for {language}, the language the domain is written in")
        problems = overlay_problems(self.intents, self.responses, doc)
        if problems:
            raise DomainError(f"{where}: " + "; ".join(problems))
        translation = Translation(
            language=language, source=source, widget=doc.get("widget") or {},
            titles={name: spec["title"] for name, spec in (doc.get("intents") or {}).items()},
            responses=doc.get("responses") or {})
        self.translations[language] = translation
        gaps = self.missing_translations(language)
        if gaps:
            log.warning("%s lacks %d of the domain's texts, said in %s instead: %s",
                        where, len(gaps), self.language, ", ".join(gaps))
        return translation

    def missing_translations(self, language: str) -> list[str]:
        """What customers writing `language` read in the domain's language instead, as keys
        `widget.<field>`, `intents.<name>.title` and `responses.<name>` (empty: all translated)."""
        language = language.lower()
        if language == self.language:
            return []
        t = self.translations.get(language) or Translation(language=language)
        return ([f"widget.{k}" for k, v in self.widget.model_dump().items() if v and k not in t.widget]
                + [f"intents.{name}.title" for name in self.intents if name not in t.titles]
                + [f"responses.{name}" for name in self.responses if name not in t.responses])

    @property
    def languages(self) -> list[str]:
        """The domain's own language, then those it has an overlay for."""
        return [self.language, *self.translations]

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
        # The defaults' hand-off offers carry `/talk_to_human`: it hands off in every Rasa project.
        intents.setdefault("talk_to_human", {"action": "handoff", "reason": "customer_asked"})
        return cls(company=str(doc.get("company", "")), widget=defaults["widget"], responses=responses,
                   intents=intents)

    def render(self, name: str, values: dict[str, str] | None = None, rng: random.Random | None = None,
               buttons: list[Button] | None = None, language: str | None = None) -> Reply:
        """One variant of a response with `{slot}` placeholders filled (unknown ones stay visible),
        in `language` where its overlay has the response, else in the domain's language."""
        variants = self.variants(name, language)
        variant = (rng or random).choice(variants) if len(variants) > 1 else variants[0]
        text = variant.text.format_map(_Keep(values or {}))
        return Reply(text=text, buttons=[*variant.buttons, *(buttons or [])])

    def variants(self, name: str, language: str | None = None) -> list[ResponseVariant]:
        """A response's variants in `language`, or in the domain's language where it has none."""
        translation = self.translations.get(language.lower()) if language else None
        return (translation.responses.get(name) if translation else None) or self.responses[name]

    def extract_entities(self, text: str) -> dict[str, str]:
        """Entities found anywhere in the message (NFKC-normalized first, as slots see it)."""
        text = normalize(text)
        found = {}
        for name, pattern in self.entities.items():
            m = re.search(pattern, text)
            if m:
                found[name] = m.group(0)
        return found

    def offers(self, intent: str, entities: dict[str, str], payload: str) -> bool:
        """Whether a button of this domain can carry this payload: `/<intent>` of a domain intent, or
        exactly one of the responses' button payloads. Slot values ride only on buttons the domain
        wrote; a customer's values arrive as text and pass the slots' validation."""
        if not entities and intent in self.intents:
            return True
        return payload.strip() in {b.payload for variants in self.responses.values()
                                   for v in variants for b in v.buttons}

    def title(self, intent: str, language: str | None = None) -> str:
        """What a button offering `intent` says, in `language` where the overlay has it."""
        translation = self.translations.get(language.lower()) if language else None
        if translation and intent in translation.titles:
            return translation.titles[intent]
        spec = self.intents.get(intent)
        return (spec.title if spec and spec.title else intent.replace("_", " ").capitalize())

    def widget_strings(self, language: str | None = None) -> WidgetStrings:
        """The widget's strings in `language` where the overlay has them."""
        translation = self.translations.get(language.lower()) if language else None
        return self.widget.model_copy(update=translation.widget) if translation else self.widget


REQUIRED_RESPONSES = (
    "utter_default", "utter_clarify", "utter_offer_handoff", "utter_handoff",
    "utter_handoff_pending", "utter_form_cancelled", "utter_out_of_scope",
    "utter_nothing_to_stop", "utter_anything_else", "utter_handoff_offline", "utter_agent_joined",
    "utter_bot_back", "utter_conversation_closed", "utter_handoff_pending_ask_email", "utter_ask_email",
    "utter_email_saved", "utter_still_in_queue", "utter_ask_helpful", "utter_glad_it_helped",
    "utter_sorry_it_did_not_help", "utter_no_answer",
)


class _Keep(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"
