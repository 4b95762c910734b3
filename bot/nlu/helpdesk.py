"""Help-desk exports → `Conversation`s: one reader per export shape.

Help desks export one conversation per record with messages, authors and tags, each in its own
shape. `read_conversations` recognises ours (support-log JSONL, `bot.nlu.support_logs`), Zendesk
tickets (`comments`, `requester_id`), Intercom conversations (`source` + `conversation_parts`),
Freshdesk tickets (`description_text` + `conversations` with `incoming`), Help Scout (`threads`),
and CSV with one row per message. Bots, internal notes and system events are dropped; HTML bodies
become plain text.
"""

from __future__ import annotations

import csv
import html
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bot.nlu.errors import DataError
from bot.nlu.support_logs import parse_support_log, read_jsonl, tag_names

_TAG = re.compile(r"<[^>]+>")
_BREAK = re.compile(r"(?i)<br\s*/?>|</p>|</div>")


@dataclass
class Turn:
    author: str  # "customer" | "agent" (bots, notes and system events are dropped)
    text: str


@dataclass
class Conversation:
    id: str
    tags: list[str]
    turns: list[Turn]
    intent: str | None = None  # the resolved intent when the help desk stores one
    names: list[str] = field(default_factory=list)  # people the record names (for redaction)
    source: str = "supportbot"

    def first_customer_text(self) -> str | None:
        return next((t.text for t in self.turns if t.author == "customer" and t.text), None)


def plain(text: str | None) -> str:
    """Help-desk bodies are often HTML: tags out, entities decoded, whitespace collapsed."""
    if not text:
        return ""
    text = _TAG.sub(" ", _BREAK.sub("\n", text))
    return " ".join(html.unescape(text).split())


def _from_supportbot(r: dict) -> Conversation:
    log = parse_support_log(r, f"record {r.get('id', '?')}")
    turns = [Turn(m.author, plain(m.text)) for m in log.messages if m.author in ("customer", "agent")]
    first = log.first_customer_message()
    return Conversation(log.id, log.tags, turns, intent=log.intent or (first.intent if first else None),
                        source="supportbot")


def _from_zendesk(r: dict) -> Conversation:
    requester = r.get("requester_id")
    turns = []
    for c in r.get("comments", []):
        if c.get("public") is False:  # internal notes are not conversation
            continue
        author = "customer" if c.get("author_id") == requester else "agent"
        turns.append(Turn(author, plain(c.get("plain_body") or c.get("body") or c.get("html_body"))))
    if not turns and r.get("description"):
        turns.append(Turn("customer", plain(r["description"])))
    names = [n for n in [(r.get("requester") or {}).get("name"), r.get("requester_name")] if n]
    return Conversation(str(r.get("id", "")), tag_names(r.get("tags")), turns,
                        intent=(r.get("custom_fields_by_name") or {}).get("intent"), names=names,
                        source="zendesk")


def _intercom_author(part: dict) -> str | None:
    kind = (part.get("author") or {}).get("type")
    return {"user": "customer", "lead": "customer", "contact": "customer", "admin": "agent",
            "team": "agent"}.get(kind or "")


def _from_intercom(r: dict) -> Conversation:
    source = r.get("source") or {}
    turns, names = [], []
    if source.get("body"):
        turns.append(Turn(_intercom_author(source) or "customer", plain(source["body"])))
    parts = (r.get("conversation_parts") or {}).get("conversation_parts", [])
    for part in [source, *parts]:
        if name := (part.get("author") or {}).get("name"):
            names.append(name)
    for part in parts:
        author = _intercom_author(part)
        if author and part.get("part_type", "comment") in ("comment", "assignment", "close") \
                and part.get("body"):
            turns.append(Turn(author, plain(part["body"])))
    return Conversation(str(r.get("id", "")), tag_names(r.get("tags")), turns, names=names,
                        source="intercom")


def _from_freshdesk(r: dict) -> Conversation:
    turns = [Turn("customer", plain(r.get("description_text") or r.get("description")))]
    for c in r.get("conversations", []):
        if c.get("private"):
            continue
        turns.append(Turn("customer" if c.get("incoming") else "agent",
                          plain(c.get("body_text") or c.get("body"))))
    names = [n for n in [(r.get("requester") or {}).get("name")] if n]
    return Conversation(str(r.get("id", "")), tag_names(r.get("tags")), turns,
                        intent=(r.get("custom_fields") or {}).get("cf_intent"), names=names,
                        source="freshdesk")


def _from_helpscout(r: dict) -> Conversation:
    threads = r.get("threads") or (r.get("_embedded") or {}).get("threads", [])
    turns, names = [], []
    for t in sorted(threads, key=lambda t: t.get("createdAt", "")):
        kind = t.get("type")
        if kind not in ("customer", "message", "reply"):
            continue  # notes, line items, forwards
        turns.append(Turn("customer" if kind == "customer" else "agent", plain(t.get("body"))))
        who = t.get("createdBy") or {}
        if who.get("first"):
            names.append(f"{who.get('first', '')} {who.get('last', '')}".strip())
    return Conversation(str(r.get("id", "")), tag_names(r.get("tags")), turns, names=names,
                        source="helpscout")


def detect(record: dict) -> str:
    if "messages" in record:
        return "supportbot"
    if "comments" in record or "requester_id" in record:
        return "zendesk"
    if "conversation_parts" in record or ("source" in record and "statistics" in record):
        return "intercom"
    if "description_text" in record or "conversations" in record:
        return "freshdesk"
    if "threads" in record or "_embedded" in record:
        return "helpscout"
    raise DataError(f"record {record.get('id', '?')}: unknown export shape (keys: {sorted(record)[:8]})")


READERS = {"supportbot": _from_supportbot, "zendesk": _from_zendesk, "intercom": _from_intercom,
           "freshdesk": _from_freshdesk, "helpscout": _from_helpscout}


def _records(path: Path) -> Iterator[dict]:
    if path.suffix.lower() == ".jsonl":
        yield from (record for _, record in read_jsonl(path))
        return
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: invalid JSON ({exc.msg})") from exc
    if isinstance(doc, dict):  # API-style envelopes: {"tickets": [...]}, {"conversations": [...]}
        lists = [v for k, v in doc.items() if isinstance(v, list) and k != "tags"]
        doc = lists[0] if len(lists) == 1 else [doc]
    yield from doc


def _csv_conversations(path: Path) -> Iterator[Conversation]:
    """One row per message: conversation_id, author (customer/agent), text; optional tags/intent."""
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        cols = set(reader.fieldnames or [])
        if not {"conversation_id", "author", "text"} <= cols:
            raise DataError(f"{path}: a conversation CSV needs the columns conversation_id,author,text")
        grouped: dict[str, Conversation] = {}
        for row in reader:
            cid = row["conversation_id"].strip()
            conv = grouped.setdefault(cid, Conversation(cid, [], [], source="csv"))
            author = "customer" if row["author"].strip().lower() in ("customer", "user", "end-user",
                                                                    "contact") else "agent"
            conv.turns.append(Turn(author, plain(row["text"])))
            for tag in (row.get("tags") or "").replace(";", ",").split(","):
                if tag.strip() and tag.strip() not in conv.tags:
                    conv.tags.append(tag.strip())
            if row.get("intent", "").strip():
                conv.intent = row["intent"].strip()
    yield from grouped.values()


def read_conversations(path: Path) -> Iterator[Conversation]:
    if not path.exists():
        raise DataError(f"{path}: not found")
    if path.suffix.lower() == ".csv":
        yield from _csv_conversations(path)
        return
    if path.suffix.lower() not in (".json", ".jsonl"):
        raise DataError(f"{path}: unsupported format {path.suffix!r} (use .jsonl, .json or .csv)")
    for record in _records(path):
        if not isinstance(record, dict):
            raise DataError(f"{path}: every record must be a JSON object")
        yield READERS[detect(record)](record)
