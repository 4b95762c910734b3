"""Rasa 3 NLU training data with its entity annotations, synonyms, regexes and lookup tables.

`bot.nlu.data` reads the same files for intents only; this reader keeps everything an entity
extractor learns from, and says in `notices` which parts of the files nothing here uses.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bot import yaml12
from bot.nlu.errors import DataError


@dataclass(frozen=True)
class EntitySpan:
    start: int
    end: int
    value: str
    entity: str
    role: str | None = None
    group: str | None = None


@dataclass(frozen=True)
class AnnotatedExample:
    text: str  # annotations removed: what the user typed
    intent: str
    entities: tuple[EntitySpan, ...] = ()


@dataclass
class RasaNluData:
    examples: list[AnnotatedExample] = field(default_factory=list)
    synonyms: dict[str, str] = field(default_factory=dict)  # lower-cased surface text -> canonical value
    regexes: dict[str, list[str]] = field(default_factory=dict)  # name -> patterns
    lookups: dict[str, list[str]] = field(default_factory=dict)  # name -> elements
    notices: list[str] = field(default_factory=list)  # keys/blocks we do not use, one line each

    @property
    def entity_names(self) -> set[str]:
        """Every entity the examples annotate."""
        return {span.entity for ex in self.examples for span in ex.entities}

    @property
    def intent_names(self) -> set[str]:
        return {ex.intent for ex in self.examples}


# [surface](entity) / [surface](entity:value) / [surface]{json} / [surface][{json}, {json}]
_ANNOTATION = re.compile(
    r"\[(?P<text>[^\[\]]+)\]"
    r"(?:\((?P<short>[^)]*)\)|(?P<json>\{[^{}]*\})|\[(?P<list>\s*\{[^\[\]]*\}\s*)\])"
)
# What is left of an annotation that did not match: `](`, `]{` or `][` outside any annotation.
_BROKEN = re.compile(r"\][({\[]")
_ANNOTATION_KEYS = {"entity", "value", "role", "group"}
# Top-level keys that other readers (dialogue, domain) use; an NLU file may carry them too.
_OTHER_READERS = {"version", "stories", "rules", "responses", "intents", "entities", "slots",
                  "forms", "actions", "session_config", "e2e_actions", "config"}
_BLOCK_KINDS = ("intent", "synonym", "regex", "lookup")


def read_rasa_nlu_data(paths: list[Path]) -> RasaNluData:
    """Files, or folders (their *.yml/*.yaml, recursively); only documents with `nlu:` count."""
    data = RasaNluData()
    for file in _yaml_files(paths):
        for doc in _documents(file):
            if isinstance(doc, dict) and "nlu" in doc:
                _read_document(file, doc, data)
    return data


def _yaml_files(paths: list[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.suffix.lower() in {".yml", ".yaml"}
                              and p.is_file())
        elif path.is_file():
            yield path
        else:
            raise DataError(f"{path}: not found")


def _documents(file: Path) -> list[Any]:
    try:
        return yaml12.load_all(file.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise DataError(f"{file}: not readable YAML ({exc})") from exc


def _read_document(file: Path, doc: dict[str, Any], data: RasaNluData) -> None:
    for key in doc:
        if key != "nlu" and key not in _OTHER_READERS:
            data.notices.append(f"{file}: top-level key {key!r} is not used")
    blocks = doc["nlu"] or []
    if not isinstance(blocks, list):
        raise DataError(f"{file}: `nlu:` must be a list of blocks")
    for block in blocks:
        _read_block(file, block, data)


def _read_block(file: Path, block: Any, data: RasaNluData) -> None:
    kinds = [k for k in _BLOCK_KINDS if isinstance(block, dict) and k in block]
    if len(kinds) != 1:
        data.notices.append(f"{file}: block {_short(block)} is not an intent, synonym, regex or "
                            "lookup block; not used")
        return
    kind, name = kinds[0], str(block[kinds[0]])
    allowed = {kind, "examples", "metadata"}
    for key in block:
        if key not in allowed:
            data.notices.append(f"{file}: {kind} {name!r}: key {key!r} is not used")
    if kind == "intent":
        for text in _example_texts(file, name, block.get("examples"), data):
            data.examples.append(_parse_example(file, name, text, data))
        return
    items = list(_example_texts(file, name, block.get("examples"), data))
    if kind == "synonym":
        for item in items:
            _add_synonym(file, item, name, data)
    elif kind == "regex":
        for pattern in items:
            _check_regex(file, name, pattern)
        data.regexes.setdefault(name, []).extend(items)
    else:
        data.lookups.setdefault(name, []).extend(items)


def _example_texts(file: Path, name: str, examples: Any, data: RasaNluData) -> Iterator[str]:
    """`examples: |` with one `- ` line per example, or a list of `{text, metadata}` items."""
    if examples is None:
        return
    if isinstance(examples, str):
        for line in examples.splitlines():
            if not line.strip():
                continue
            if not line.startswith("-"):
                data.notices.append(f"{file}: {name!r}: line {line.strip()!r} does not start with "
                                    "'- '; not used")
                continue
            text = line[1:].strip(" \r\n")
            if text:
                yield text
        return
    if not isinstance(examples, list):
        raise DataError(f"{file}: {name!r}: `examples` must be a `|` block or a list")
    for item in examples:
        yield from _list_item(file, name, item, data)


def _list_item(file: Path, name: str, item: Any, data: RasaNluData) -> Iterator[str]:
    if isinstance(item, str):
        text = item
    elif isinstance(item, dict) and "text" in item:
        text = "" if item["text"] is None else str(item["text"])
        for key in item:
            if key not in {"text", "metadata"}:
                data.notices.append(f"{file}: {name!r}: example key {key!r} is not used")
    else:
        raise DataError(f"{file}: {name!r}: example {_short(item)} has no `text`")
    text = text.strip(" \r\n")
    if text:
        yield text


def _parse_example(file: Path, intent: str, annotated: str, data: RasaNluData) -> AnnotatedExample:
    """The plain text and its spans; annotations whose value is not their text teach a synonym."""
    plain: list[str] = []
    spans: list[EntitySpan] = []
    last, length = 0, 0
    for match in _ANNOTATION.finditer(annotated):
        between = annotated[last:match.start()]
        _no_broken_annotation(file, intent, annotated, between)
        plain.append(between)
        length += len(between)
        surface = match.group("text")
        for attrs in _annotation_attributes(file, intent, annotated, match, data):
            value = attrs.get("value", surface)
            spans.append(EntitySpan(length, length + len(surface), value, attrs["entity"],
                                    attrs.get("role"), attrs.get("group")))
            if value != surface:
                _add_synonym(file, surface, value, data)
        plain.append(surface)
        length += len(surface)
        last = match.end()
    _no_broken_annotation(file, intent, annotated, annotated[last:])
    plain.append(annotated[last:])
    return AnnotatedExample("".join(plain), intent, tuple(spans))


def _no_broken_annotation(file: Path, intent: str, example: str, between: str) -> None:
    if _BROKEN.search(between):
        raise DataError(f"{file}: intent {intent!r}, example {example!r}: malformed entity annotation")


def _annotation_attributes(file: Path, intent: str, example: str, match: re.Match[str],
                           data: RasaNluData) -> list[dict[str, str]]:
    where = f"{file}: intent {intent!r}, example {example!r}"
    if match.group("short") is not None:
        entity, _, value = match.group("short").partition(":")
        if not entity.strip():
            raise DataError(f"{where}: annotation {match.group(0)!r} names no entity")
        return [{"entity": entity.strip(), **({"value": value.strip()} if value.strip() else {})}]
    raw = match.group("json") or f"[{match.group('list')}]"
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise DataError(f"{where}: annotation {match.group(0)!r} is not valid JSON ({exc.msg})") from exc
    dicts = parsed if isinstance(parsed, list) else [parsed]
    return [_json_attributes(where, match.group(0), d, data) for d in dicts]


def _json_attributes(where: str, annotation: str, attrs: Any, data: RasaNluData) -> dict[str, str]:
    if not isinstance(attrs, dict) or not isinstance(attrs.get("entity"), str) or not attrs["entity"]:
        raise DataError(f"{where}: annotation {annotation!r} needs an \"entity\" name")
    for key in attrs:
        if key not in _ANNOTATION_KEYS:
            data.notices.append(f"{where}: annotation key {key!r} is not used")
    return {k: str(v) for k, v in attrs.items() if k in _ANNOTATION_KEYS and v is not None}


def _add_synonym(file: Path, surface: str, value: str, data: RasaNluData) -> None:
    """Rasa's EntitySynonymMapper: the lower-cased surface text maps to the value; last one wins."""
    key = surface.lower()
    known = data.synonyms.get(key)
    if known is not None and known != value:
        data.notices.append(f"{file}: synonym {surface!r} maps to both {known!r} and {value!r}; "
                            f"using {value!r}")
    data.synonyms[key] = value


def _check_regex(file: Path, name: str, pattern: str) -> None:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise DataError(f"{file}: regex {name!r}, pattern {pattern!r}: {exc}") from exc


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
