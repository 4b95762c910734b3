"""Historical support conversations → scrubbed training examples and FAQ candidates.

`read_conversations` (bot.nlu.helpdesk) reads each help desk's export as `Conversation`s; personal
data is redacted before anything is written, and `ingest` derives:

- training examples: the customer's first message → the conversation's resolved intent or tag;
- FAQ candidates: per intent, the most typical customer question and the agent answer that most
  conversations agree on (a medoid, so one odd reply never becomes policy).

`write_outputs` leaves them for review, the conversations as support logs (bot.nlu.support_logs).
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import yaml

from bot.nlu.data import Example, deduplicate, to_rasa_nlu
from bot.nlu.helpdesk import Conversation, Turn, read_conversations
from bot.nlu.support_logs import LogMessage, SupportLog, write_support_logs
from bot.pii import Scrubber

_CLOSING = re.compile(r"(?i)^\s*(thanks?|thank you|thx|ty|cheers|great|perfect|ok(ay)?|brilliant|"
                      r"that'?s? (it|all|great|perfect)|got it|bye|awesome)\b")


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
    write_support_logs(paths["logs"], [
        SupportLog(id=conv.id, source=conv.source, tags=[conv.intent] if conv.intent else [],
                   messages=[LogMessage(author=t.author, text=t.text) for t in conv.turns])
        for conv in result.conversations])
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
