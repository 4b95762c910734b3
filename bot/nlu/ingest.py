"""Historical support conversations → scrubbed training examples and FAQ candidates.

Help desks export one conversation per record with messages, authors and tags, each in its own
shape. `read_conversations` recognises ours (support-log JSONL), Zendesk tickets (`comments`,
`requester_id`), Intercom conversations (`source` + `conversation_parts`), Freshdesk tickets
(`description_text` + `conversations` with `incoming`), Help Scout (`threads`), and CSV with one row
per message. Everything becomes `Conversation`, personal data is redacted before anything is
written, and `ingest` derives:

- training examples: the customer's first message → the conversation's resolved intent or tag;
- FAQ candidates: per intent, the most typical customer question and the agent answer that most
  conversations agree on (a medoid, so one odd reply never becomes policy).
"""

from __future__ import annotations

import csv
import html
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import yaml

from bot.nlu.data import DataError, Example, deduplicate, to_rasa_nlu
from bot.pii import Scrubber

_TAG = re.compile(r"<[^>]+>")
_BREAK = re.compile(r"(?i)<br\s*/?>|</p>|</div>")
_CLOSING = re.compile(r"(?i)^\s*(thanks?|thank you|thx|ty|cheers|great|perfect|ok(ay)?|brilliant|"
                      r"that'?s? (it|all|great|perfect)|got it|bye|awesome)\b")


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


def _tag_names(raw) -> list[str]:
    if isinstance(raw, dict):  # Intercom: {"tags": [{"name": ...}]}
        raw = raw.get("tags", [])
    names = []
    for t in raw or []:
        name = t.get("name") or t.get("tag") if isinstance(t, dict) else t
        if name:
            names.append(str(name).strip())
    return names


def _from_supportbot(r: dict) -> Conversation:
    turns = [Turn("customer" if m.get("author") == "customer" else "agent", plain(m.get("text")))
             for m in r.get("messages", []) if m.get("author") in ("customer", "agent")]
    first = next((m for m in r.get("messages", []) if m.get("author") == "customer"), {})
    return Conversation(str(r.get("id", "")), _tag_names(r.get("tags")), turns,
                        intent=r.get("intent") or first.get("intent"), source="supportbot")


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
    return Conversation(str(r.get("id", "")), _tag_names(r.get("tags")), turns,
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
    return Conversation(str(r.get("id", "")), _tag_names(r.get("tags")), turns, names=names,
                        source="intercom")


def _from_freshdesk(r: dict) -> Conversation:
    turns = [Turn("customer", plain(r.get("description_text") or r.get("description")))]
    for c in r.get("conversations", []):
        if c.get("private"):
            continue
        turns.append(Turn("customer" if c.get("incoming") else "agent",
                          plain(c.get("body_text") or c.get("body"))))
    names = [n for n in [(r.get("requester") or {}).get("name")] if n]
    return Conversation(str(r.get("id", "")), _tag_names(r.get("tags")), turns,
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
    return Conversation(str(r.get("id", "")), _tag_names(r.get("tags")), turns, names=names,
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
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".jsonl":
        for lineno, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(f"{path}:{lineno}: invalid JSON ({exc.msg})") from exc
        return
    try:
        doc = json.loads(text)
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


@dataclass
class IngestReport:
    conversations: int = 0
    formats: dict[str, int] = field(default_factory=dict)
    customer_messages: int = 0
    examples: int = 0
    unlabeled: int = 0
    skipped_no_customer: int = 0
    faq_candidates: int = 0
    intents: dict[str, int] = field(default_factory=dict)
    redacted: dict[str, int] = field(default_factory=dict)


@dataclass
class IngestResult:
    conversations: list[Conversation]
    examples: list[Example]
    unlabeled: list[str]
    faq: list[dict]
    report: IngestReport


def resolve_intent(conv: Conversation, allowed: set[str] | None) -> str | None:
    """The resolved intent if the record has one, else the first tag that names a known intent."""
    candidates = [conv.intent] if conv.intent else []
    candidates += conv.tags
    for c in candidates:
        if c and (allowed is None or c in allowed):
            return c
    return None


def ingest(paths: Iterable[Path], allowed_intents: set[str] | None = None,
           scrubber: Scrubber | None = None, min_support: int = 2) -> IngestResult:
    scrubber = scrubber or Scrubber()
    report = IngestReport()
    formats: Counter[str] = Counter()
    convs: list[Conversation] = []
    examples: list[Example] = []
    unlabeled: list[str] = []
    for path in paths:
        for conv in read_conversations(path):
            formats[conv.source] += 1
            conv.turns = [Turn(t.author, scrubber.scrub(t.text, conv.names)) for t in conv.turns if t.text]
            report.customer_messages += sum(t.author == "customer" for t in conv.turns)
            convs.append(conv)
            first = conv.first_customer_text()
            if first is None:
                report.skipped_no_customer += 1
                continue
            intent = conv.intent = resolve_intent(conv, allowed_intents)
            if intent:
                examples.append(Example(first, intent))
            else:
                unlabeled.append(first)
    examples = deduplicate(examples)
    report.conversations = len(convs)
    report.formats = dict(formats)
    report.examples = len(examples)
    report.unlabeled = len(unlabeled)
    report.intents = dict(Counter(e.intent for e in examples).most_common())
    report.redacted = scrubber.report()
    faq = faq_candidates(convs, allowed_intents, min_support)
    report.faq_candidates = len(faq)
    return IngestResult(convs, examples, unlabeled, faq, report)


def best_answer(conv: Conversation) -> str | None:
    """The agent reply that resolved the question: the one the customer thanked, else the first
    substantive reply after the customer's first message."""
    turns = conv.turns
    for i, t in enumerate(turns):
        if t.author == "customer" and i > 0 and _CLOSING.match(t.text):
            prev = next((p for p in reversed(turns[:i]) if p.author == "agent"), None)
            if prev and len(prev.text.split()) >= 6:
                return prev.text
    agent = [t.text for t in turns if t.author == "agent" and len(t.text.split()) >= 6]
    return agent[0] if agent else None


def _medoids(texts: list[str], n: int) -> list[int]:
    """Indices of the `n` texts most similar to all others (TF-IDF cosine): the typical ones."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    if len(texts) <= 1:
        return list(range(len(texts)))
    x = TfidfVectorizer(sublinear_tf=True).fit_transform(texts)
    sim = (x @ x.T).toarray()
    scores = sim.sum(1) - 1.0
    return [int(i) for i in np.argsort(-scores)[:n]]


def faq_candidates(convs: list[Conversation], allowed: set[str] | None, min_support: int) -> list[dict]:
    by_intent: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for conv in convs:
        intent = conv.intent
        question, answer = conv.first_customer_text(), best_answer(conv)
        if intent and question and answer:
            by_intent[intent].append((question, answer))
    entries = []
    for intent in sorted(by_intent):
        pairs = by_intent[intent]
        if len(pairs) < min_support:
            continue
        questions = list(dict.fromkeys(q for q, _ in pairs))
        short = [q for q in questions if len(q.split()) <= 25]  # an FAQ question is not a story
        questions = short or questions
        answers = [a for _, a in pairs]
        q_order = _medoids(questions, 5)
        entries.append({
            "id": re.sub(r"[^a-z0-9_-]+", "-", intent.lower()).strip("-") or "entry",
            "question": questions[q_order[0]],
            "alternatives": [questions[i] for i in q_order[1:]],
            "answer": answers[_medoids(answers, 1)[0]],
            "support": len(pairs),
        })
    return entries


def write_outputs(result: IngestResult, out: Path) -> dict[str, Path]:
    """Everything a person reviews before it becomes training data or FAQ."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"logs": out / "support_logs.jsonl", "nlu": out / "nlu.yml",
             "unlabeled": out / "unlabeled.txt", "faq": out / "faq_candidates.yml",
             "report": out / "report.json"}
    with paths["logs"].open("w", encoding="utf-8") as fh:
        for conv in result.conversations:
            record = {"id": conv.id, "source": conv.source, "tags": [conv.intent] if conv.intent else [],
                      "messages": [{"author": t.author, "text": t.text} for t in conv.turns]}
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    paths["nlu"].write_text(to_rasa_nlu(result.examples), encoding="utf-8")
    paths["unlabeled"].write_text("".join(f"{' '.join(t.split())}\n" for t in result.unlabeled),
                                  encoding="utf-8")
    faq_doc = {"category": "ingested", "entries": [
        {k: v for k, v in e.items() if k != "support"} for e in result.faq]}
    header = ("# FAQ candidates from support logs: review, edit and move the good ones into\n"
              "# knowledge_base/. 'support' = conversations behind each entry:\n"
              + "".join(f"#   {e['id']}: {e['support']}\n" for e in result.faq))
    paths["faq"].write_text(header + yaml.safe_dump(faq_doc, sort_keys=False, allow_unicode=True,
                                                    width=100), encoding="utf-8")
    paths["report"].write_text(json.dumps(asdict(result.report), indent=2), encoding="utf-8")
    return paths
