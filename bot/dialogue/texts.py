"""What a customer reads, as data: response variants, the widget's strings, and the translation
overlays of both (`Translation`), checked against the domain by `overlay_problems` (see `Domain`)."""

from __future__ import annotations

import string
from collections.abc import Collection, Mapping
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from bot.types import Button

OVERLAY_FILE = "domain_responses.yml"


class ResponseVariant(BaseModel):
    text: str
    buttons: list[Button] = Field(default_factory=list)


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
    # The widget's Messenger strings (optional: a domain without them gets the widget's catalog).
    subtitle_online: str | None = None
    subtitle_offline: str | None = None
    email_prompt: str | None = None
    email_placeholder: str | None = None
    email_submit: str | None = None
    email_saved: str | None = None
    email_invalid: str | None = None
    reconnecting: str | None = None
    slow: str | None = None
    failed: str | None = None
    retry: str | None = None
    queued: str | None = None
    vote_up: str | None = None
    vote_down: str | None = None
    vote_thanks: str | None = None
    new_conversation: str | None = None
    unread: str | None = None
    # Rating a conversation an agent closed, and sending a photo.
    rating_prompt: str | None = None
    rating_prompt_agent: str | None = None
    rating_star: str | None = None
    rating_comment: str | None = None
    rating_submit: str | None = None
    rating_thanks: str | None = None
    attach_label: str | None = None
    attach_sending: str | None = None
    attachment_alt: str | None = None
    error_unsupported_image_type: str | None = None
    error_invalid_image: str | None = None
    error_image_too_large: str | None = None


class Translation(BaseModel):
    """One language's overlay: the widget strings, intent titles and responses it translates."""

    language: str
    source: str = ""
    widget: dict[str, str] = Field(default_factory=dict)
    titles: dict[str, str] = Field(default_factory=dict)
    responses: dict[str, list[ResponseVariant]] = Field(default_factory=dict)


_OVERLAY_PARTS = ("widget", "intents", "responses")


def _placeholders(text: str) -> set[str]:
    """The `{names}` a text fills in; ValueError for unbalanced braces."""
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def overlay_problems(intents: Collection[str], responses: Mapping[str, list[ResponseVariant]],
                     doc: Any) -> list[str]:
    """Every way an overlay does not fit the domain (its `intents` and `responses`), each naming
    its key."""
    if not isinstance(doc, dict):
        return ["an overlay is a mapping of " + ", ".join(_OVERLAY_PARTS)]
    problems = [f"{key}: not part of an overlay (only {', '.join(_OVERLAY_PARTS)})"
                for key in doc if key not in _OVERLAY_PARTS]
    parts = {part: doc.get(part) or {} for part in _OVERLAY_PARTS}
    problems += [f"{part}: not a mapping" for part, value in parts.items() if not isinstance(value, dict)]
    if problems:
        return problems
    for key, text in parts["widget"].items():
        if key not in WidgetStrings.model_fields:
            problems.append(f"widget.{key}: no such widget string")
        elif not isinstance(text, str):
            problems.append(f"widget.{key}: not text")
    for name, spec in parts["intents"].items():
        if name not in intents:
            problems.append(f"intents.{name}: no such intent in the domain")
        elif not (isinstance(spec, dict) and set(spec) == {"title"} and isinstance(spec["title"], str)):
            problems.append(f"intents.{name}: an overlay gives an intent's title only")
    for name, variants in parts["responses"].items():
        problems += _response_problems(f"responses.{name}", responses.get(name), variants)
    return problems


def _response_problems(key: str, base: list[ResponseVariant] | None, variants: Any) -> list[str]:
    if base is None:
        return [f"{key}: no such response in the domain"]
    if not isinstance(variants, list):
        return [f"{key}: not a list of variants"]
    if len(variants) != len(base):
        return [f"{key}: {len(variants)} variant(s), the domain has {len(base)}"]
    problems = []
    for i, (raw, original) in enumerate(zip(variants, base, strict=True)):
        where = key if len(base) == 1 else f"{key}[{i}]"
        try:
            variant = ResponseVariant.model_validate(raw)
        except ValidationError as exc:
            problems.append(f"{where}: " + "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'variant'} {e['msg'].lower()}" for e in exc.errors()))
            continue
        payloads = [b.payload for b in variant.buttons]
        expected = [b.payload for b in original.buttons]
        if payloads != expected:
            problems.append(f"{where}: button payloads {payloads}, the domain has {expected}")
        try:
            found = _placeholders(variant.text)
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
            continue
        try:
            wanted = _placeholders(original.text)
        except ValueError:
            continue  # the domain's own text is broken; rendering it says so
        if found != wanted:
            problems.append(f"{where}: placeholders {sorted(found)}, the domain has {sorted(wanted)}")
    return problems
