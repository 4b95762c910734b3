"""What a conversation test says: steps (a message or a button press) and what each turn must do.
Two formats load into the same model: ours (`conversations:`) and Rasa's test stories (`stories:`)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

Texts = str | list[str]


class Expect(BaseModel):
    """Everything a turn may be asked to do; a key left out is not checked."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)  # YAML's `10115` is text here

    faq: Texts | None = None  # answered from this entry (a list: any of them)
    faq_all: list[str] | None = None  # answered from every one of these entries
    intent: str | None = None
    response: str | None = None  # one of the replies is this domain response
    responses: list[str] | None = None  # Rasa: the bot's actions of the turn, in order
    form: str | None = None  # this form is active after the turn
    form_completed: str | None = None  # this turn submitted the form
    no_form: bool | None = None
    slots: dict[str, str] | None = None  # slot values after the turn
    handoff: bool | None = None
    offers_handoff: bool | None = None
    refuses: bool | None = None  # no factual answer: no FAQ answer, no composed answer
    clarifies: bool | None = None  # asks which of several things was meant ("Did you mean", buttons)
    buttons: list[str] | None = None  # offers at least these buttons (titles)
    contains: Texts | None = None
    not_contains: Texts | None = None
    language: str | None = None  # every reply is in this language


class Step(BaseModel):
    """One customer turn: a typed message or a press on a button of the previous reply."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)

    user: str | None = None
    click: str | None = None
    expect: Expect = Field(default_factory=Expect)

    @model_validator(mode="after")
    def _one_input(self) -> Step:
        if (self.user is None) == (self.click is None):
            raise ValueError("a step is either `user: <text>` or `click: <button title>`")
        return self

    @property
    def said(self) -> str:
        return self.user if self.user is not None else f"[click] {self.click}"


class Conversation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    category: str = ""
    note: str = ""
    steps: list[Step] = Field(min_length=1)
    source: str = ""


class SpecError(ValueError):
    """A test file that cannot be read, with the file and what is wrong."""


def load_file(path: Path) -> list[Conversation]:
    """The conversations of one YAML file, whichever of the two formats it is in."""
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not YAML: {exc}") from exc
    if not isinstance(doc, dict):
        raise SpecError(f"{path}: expected `conversations:` or `stories:` at the top")
    try:
        if "conversations" in doc:
            items = [Conversation(**{**c, "source": str(path)}) for c in doc["conversations"] or []]
        elif "stories" in doc:
            items = [from_rasa_story(story, str(path)) for story in doc["stories"] or []]
        else:
            raise SpecError(f"{path}: expected `conversations:` or `stories:` at the top")
    except (TypeError, ValueError) as exc:
        raise SpecError(f"{path}: {exc}") from exc
    return items


def load(paths: list[Path]) -> list[Conversation]:
    """Every conversation of these files and folders (folders: their *.yml and *.yaml, sorted)."""
    files: list[Path] = []
    for path in paths:
        files += sorted([*path.glob("**/*.yml"), *path.glob("**/*.yaml")]) if path.is_dir() else [path]
    conversations = [c for f in files for c in load_file(f)]
    seen: set[str] = set()
    for c in conversations:
        if c.id in seen:
            raise SpecError(f"{c.source}: conversation id {c.id!r} is used twice")
        seen.add(c.id)
    return conversations


ENTITY = re.compile(r"\[([^\]]+)\](\{[^}]*\}|\([^)]*\))")


def _plain(text: str) -> str:
    """Rasa's annotated text (`[KK-100245](order_number)`) as the customer typed it."""
    return ENTITY.sub(lambda m: m.group(1), text).strip()


def from_rasa_story(story: dict[str, Any], source: str) -> Conversation:
    """A Rasa test story: `user` + `intent` steps, then the bot's `action`, `active_loop` and
    `slot_was_set` steps, which become the expectations of the user turn before them."""
    steps: list[Step] = []
    for item in story.get("steps") or []:
        if "user" in item:
            expect = Expect(intent=item.get("intent"))
            steps.append(Step(user=_plain(str(item["user"])), expect=expect))
            continue
        if not steps:
            continue  # actions before the first message (e.g. a greeting on session start)
        _rasa_bot_step(steps[-1].expect, item)
    name = str(story.get("story") or story.get("rule") or f"story-{len(steps)}")
    return Conversation(id=name, category="rasa_story", steps=steps, source=source)


def _rasa_bot_step(expect: Expect, item: dict[str, Any]) -> None:
    if "action" in item and item["action"] != "action_listen":
        expect.responses = [*(expect.responses or []), str(item["action"])]
    elif "active_loop" in item:
        loop = item["active_loop"]
        if loop is None:
            expect.no_form = True
            expect.form = None
        else:
            expect.form = str(loop)
    elif "slot_was_set" in item:
        slots = dict(expect.slots or {})
        for entry in item["slot_was_set"] or []:
            if isinstance(entry, dict):
                slots.update({str(k): str(v) for k, v in entry.items() if v is not None})
        expect.slots = slots or None
