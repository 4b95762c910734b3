"""Rasa 3 stories, rules and test stories as flat step lists: `or` steps expanded into one story
per alternative, and stories that end in a checkpoint joined with those that start with it."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot import yaml12

_ANNOTATION = re.compile(r"\[([^\]]+)\](\{[^}]*\}|\([^)]*\))")
MAX_JOINED = 2000  # stories after joining checkpoints: Rasa caps its augmentation the same way


class StoryError(ValueError):
    """A stories or rules file that cannot be read; names the file and the story."""


@dataclass(frozen=True)
class UserStep:
    intent: str | None
    entities: tuple[tuple[str, Any], ...] = ()  # (entity, value); value None: only the name is given
    text: str | None = None  # what the user typed (test stories; annotations removed)


@dataclass(frozen=True)
class ActionStep:
    name: str


@dataclass(frozen=True)
class SlotStep:
    name: str
    value: Any
    any_value: bool = False  # `- slot_was_set: [name]`: set to something


@dataclass(frozen=True)
class LoopStep:
    name: str | None


Step = UserStep | ActionStep | SlotStep | LoopStep


@dataclass
class Story:
    name: str
    steps: list[Step]
    source: str
    condition: list[Step] = field(default_factory=list)  # rules only: slot and loop steps
    conversation_start: bool = False
    wait_for_user_input: bool = True
    is_rule: bool = False


@dataclass
class StoryData:
    stories: list[Story] = field(default_factory=list)
    rules: list[Story] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)


def read_stories(paths: list[Path]) -> StoryData:
    """Every `stories:` and `rules:` block of these files and folders (their *.yml, sorted)."""
    data = StoryData()
    files: list[Path] = []
    for p in paths:
        files += sorted([*p.glob("**/*.yml"), *p.glob("**/*.yaml")]) if p.is_dir() else [p]
    raw_stories: list[tuple[dict[str, Any], str]] = []
    for f in files:
        doc = yaml12.read(f, StoryError) or {}
        if not isinstance(doc, dict):
            continue
        for item in doc.get("stories") or []:
            raw_stories.append((item, str(f)))
        for item in doc.get("rules") or []:
            data.rules += _rule(item, str(f), data.notices)
    data.stories = _join_checkpoints(raw_stories, data.notices)
    return data


def _rule(item: dict[str, Any], source: str, notices: list[str]) -> list[Story]:
    name = str(item.get("rule", "rule"))
    condition: list[Step] = []
    for c in item.get("condition") or []:
        condition += _steps_of(c, source, name, notices)
    steps = item.get("steps") or []
    wait = item.get("wait_for_user_input", True)
    start = bool(item.get("conversation_start", False))
    return [
        Story(name, s, source, condition, start, bool(wait), True)
        for s in _expand(steps, source, name, notices)
    ]


def _join_checkpoints(raw: list[tuple[dict[str, Any], str]], notices: list[str]) -> list[Story]:
    """Stories without checkpoints as they are; one ending in a checkpoint continues with every
    story that starts with it (Rasa's story graph, unrolled)."""
    parts: list[tuple[str, str, str | None, list[str], list[Step]]] = []  # name, source, start, ends, steps
    for item, source in raw:
        name = str(item.get("story", "story"))
        steps = item.get("steps") or []
        starts = [s["checkpoint"] for s in steps[:1] if isinstance(s, dict) and "checkpoint" in s]
        ends = [s["checkpoint"] for s in steps[1:] if isinstance(s, dict) and "checkpoint" in s]
        body = [s for s in steps if not (isinstance(s, dict) and "checkpoint" in s)]
        for expanded in _expand(body, source, name, notices):
            parts.append((name, source, starts[0] if starts else None, ends, expanded))
    by_start: dict[str, list[tuple[str, list[str], list[Step]]]] = {}
    for name, _source, start, ends, steps in parts:
        if start is not None:
            by_start.setdefault(start, []).append((name, ends, steps))
    stories: list[Story] = []
    for name, source, start, ends, steps in parts:
        if start is not None:
            continue
        _unroll(name, source, steps, ends, by_start, stories, depth=0)
        if len(stories) > MAX_JOINED:
            notices.append(f"checkpoints unroll into more than {MAX_JOINED} stories; the rest are dropped")
            break
    return stories


def _unroll(
    name: str,
    source: str,
    steps: list[Step],
    ends: list[str],
    by_start: dict[str, list[tuple[str, list[str], list[Step]]]],
    out: list[Story],
    depth: int,
) -> None:
    continuations = [c for end in ends for c in by_start.get(end, [])]
    if not continuations or depth > 10:
        out.append(Story(name, steps, source))
        return
    for cname, cends, csteps in continuations:
        _unroll(f"{name} > {cname}", source, [*steps, *csteps], cends, by_start, out, depth + 1)


def _expand(steps: list[Any], source: str, name: str, notices: list[str]) -> list[list[Step]]:
    """One step list per combination of the `or` alternatives."""
    options: list[list[list[Step]]] = []
    for step in steps:
        if isinstance(step, dict) and "or" in step:
            options.append([_steps_of(alt, source, name, notices) for alt in step["or"] or []])
        else:
            options.append([_steps_of(step, source, name, notices)])
    return [[s for chunk in combo for s in chunk] for combo in itertools.product(*options)]


def _steps_of(step: Any, source: str, name: str, notices: list[str]) -> list[Step]:
    if not isinstance(step, dict):
        raise StoryError(f"{source}: story {name!r}: a step is a mapping, got {step!r}")
    if "intent" in step or "user" in step:
        return [_user(step)]
    if "action" in step:
        return [ActionStep(str(step["action"]))]
    if "active_loop" in step:
        loop = step["active_loop"]
        return [LoopStep(None if loop is None else str(loop))]
    if "slot_was_set" in step:
        out: list[Step] = []
        for entry in step["slot_was_set"] or []:
            if isinstance(entry, dict):
                out += [SlotStep(str(k), v) for k, v in entry.items()]
            else:
                out.append(SlotStep(str(entry), None, any_value=True))
        return out
    if "bot" in step:
        notices.append(
            f"{source}: story {name!r}: end-to-end `bot:` texts are not predicted; the step is skipped"
        )
        return []
    raise StoryError(f"{source}: story {name!r}: unknown step {step!r}")


def _user(step: dict[str, Any]) -> UserStep:
    text = step.get("user")
    entities: list[tuple[str, Any]] = []
    for e in step.get("entities") or []:
        if isinstance(e, dict):
            if "entity" in e:
                entities.append((str(e["entity"]), e.get("value")))
            else:
                entities += [(str(k), v) for k, v in e.items()]
        else:
            entities.append((str(e), None))
    plain = None
    if text is not None:
        text = str(text)
        for m in _ANNOTATION.finditer(text):
            entity, value = _annotation(m.group(1), m.group(2))
            if entity and not any(n == entity for n, _ in entities):
                entities.append((entity, value))
        plain = _ANNOTATION.sub(lambda m: m.group(1), text).strip()
    intent = step.get("intent")
    return UserStep(None if intent is None else str(intent), tuple(entities), plain)


def _annotation(surface: str, spec: str) -> tuple[str | None, Any]:
    import json

    if spec.startswith("{"):
        try:
            d = json.loads(spec)
        except json.JSONDecodeError:
            return None, None
        return (
            (str(d["entity"]), d.get("value", surface))
            if isinstance(d, dict) and "entity" in d
            else (None, None)
        )
    inner = spec[1:-1]
    entity, _, value = inner.partition(":")
    return entity, value or surface
