"""Training examples from a company's support logs (JSONL conversations), Rasa nlu.yml or CSV."""

from __future__ import annotations

import csv
import hashlib
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import yaml

from bot.nlu.errors import DataError
from bot.nlu.support_logs import read_support_logs

_ENTITY_ANNOTATION = re.compile(r"\[([^\]]+)\]\([^)]+\)|\[([^\]]+)\]\{[^}]+\}")


@dataclass(frozen=True)
class Example:
    text: str
    intent: str


def examples_from_logs(path: Path) -> list[Example]:
    """Customer messages of a support-log file with the intent the agent tagged.

    A customer message without its own `intent` takes the conversation's first tag when it is the
    conversation's first customer message (how most help desks tag), and is skipped otherwise.
    """
    return [Example(text, intent) for text, intent in _customer_messages(path) if intent]


def unlabeled_messages(path: Path) -> list[str]:
    """The customer messages `examples_from_logs` skips (no tag reaches them), from one support-log
    file or a folder's *.jsonl: what self-training (bot.nlu.self_training) may label."""
    if path.is_dir():
        files = sorted(path.glob("*.jsonl"))
    else:
        files = [path] if path.suffix.lower() == ".jsonl" else []
    return [text for f in files for text, intent in _customer_messages(f) if not intent]


def _customer_messages(path: Path) -> list[tuple[str, str | None]]:
    messages: list[tuple[str, str | None]] = []
    for log in read_support_logs(path):
        first = True
        for msg in log.messages:
            if msg.author != "customer":
                continue
            intent = msg.intent or (log.tags[0] if first and log.tags else None)
            first = False
            text = msg.text.strip()
            if text:
                messages.append((text, intent))
    return messages


def read_rasa_nlu(path: Path) -> list[Example]:
    """Rasa 3 `nlu:` intents; entity annotations are reduced to their surface text."""
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    examples: list[Example] = []
    for block in doc.get("nlu", []):
        intent = block.get("intent")
        if not intent:
            continue
        for line in str(block.get("examples", "")).splitlines():
            line = line.strip()
            if line.startswith("- "):
                text = _ENTITY_ANNOTATION.sub(lambda m: m.group(1) or m.group(2), line[2:]).strip()
                if text:
                    examples.append(Example(text, intent))
    return examples


def read_csv(path: Path) -> list[Example]:
    with path.open(encoding="utf-8", newline="") as fh:
        rows = csv.DictReader(fh)
        if not rows.fieldnames or not {"text", "intent"} <= set(rows.fieldnames):
            raise DataError(f"{path}: a CSV needs the columns text,intent")
        return [Example(r["text"].strip(), r["intent"].strip()) for r in rows if r["text"].strip()]


def load_examples(path: Path) -> list[Example]:
    """One file, or a folder: its support logs (*.jsonl) when it has any, else its nlu.yml."""
    if path.is_dir():
        logs = sorted(path.glob("*.jsonl"))
        if logs:
            return [ex for p in logs for ex in examples_from_logs(p)]
        nlu = path / "nlu.yml"
        if nlu.exists():
            return read_rasa_nlu(nlu)
        raise DataError(f"{path}: no *.jsonl support logs and no nlu.yml")
    if not path.exists():
        raise DataError(f"{path}: not found")
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return examples_from_logs(path)
    if suffix in {".yml", ".yaml"}:
        return read_rasa_nlu(path)
    if suffix == ".csv":
        return read_csv(path)
    raise DataError(f"{path}: unsupported format {suffix!r} (use .jsonl, .yml or .csv)")


def deduplicate(examples: list[Example]) -> list[Example]:
    """Drop repeated texts (case-insensitive); a text tagged twice keeps its most common tag."""
    by_text: dict[str, Counter[str]] = {}
    original: dict[str, str] = {}
    for ex in examples:
        key = " ".join(ex.text.lower().split())
        by_text.setdefault(key, Counter())[ex.intent] += 1
        original.setdefault(key, ex.text)
    return [Example(original[k], c.most_common(1)[0][0]) for k, c in by_text.items()]


def data_hash(examples: list[Example]) -> str:
    digest = hashlib.sha256()
    for ex in sorted(examples, key=lambda e: (e.intent, e.text)):
        digest.update(f"{ex.intent}\t{ex.text}\n".encode())
    return digest.hexdigest()[:16]


def to_rasa_nlu(examples: list[Example]) -> str:
    """Rasa 3.1 training-data YAML, intents in first-seen order."""
    grouped: dict[str, list[str]] = {}
    for ex in examples:
        grouped.setdefault(ex.intent, []).append(ex.text)
    lines = ['version: "3.1"', "nlu:"]
    for intent, texts in grouped.items():
        lines.append(f"- intent: {intent}")
        lines.append("  examples: |")
        lines.extend(f"    - {' '.join(t.split())}" for t in texts)
    return "\n".join(lines) + "\n"
