"""The support-log format: one conversation a line (JSONL), each with its messages, who wrote them
and the intents an agent tagged. `training_data/*.jsonl` holds it, `ingest` writes it from a
help-desk export and `promote` appends reviewed messages to it; `read_support_logs` is its one
reader (training examples, `discover`, `ingest`).

    {"id": "c0001", "channel": "whatsapp", "tags": ["order_status"], "messages": [
      {"author": "customer", "text": "where is my parcel?", "intent": "order_status"},
      {"author": "agent", "text": "Let me check."}]}

Every field is optional and unknown fields are kept (a help desk's `started_at`, `source`, ...).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot.nlu.errors import DataError


def tag_names(raw: Any) -> list[str]:
    """Tags as names: a list of strings, of {"name": ...} / {"tag": ...} objects, or Intercom's
    {"tags": [...]}; blank ones dropped."""
    if isinstance(raw, dict):  # Intercom: {"tags": [{"name": ...}]}
        raw = raw.get("tags", [])
    names = []
    for t in raw or []:
        name = t.get("name") or t.get("tag") if isinstance(t, dict) else t
        if name:
            names.append(str(name).strip())
    return names


class LogMessage(BaseModel):
    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True)

    author: str = Field(default="", description="customer or agent (others, e.g. bot or note, are no turn)")
    text: str = ""
    intent: str | None = Field(default=None, description="The intent an agent tagged this message with.")

    @field_validator("author", "text", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return "" if value is None else value


class SupportLog(BaseModel):
    """One conversation of the support logs."""

    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True)

    id: str = ""
    channel: str | None = None
    source: str | None = Field(default=None, description="The help desk it was ingested from.")
    tags: list[str] = Field(default_factory=list, description="The conversation's tags, first = main.")
    intent: str | None = Field(default=None, description="The resolved intent when the help desk stores one.")
    messages: list[LogMessage] = Field(default_factory=list)

    @field_validator("id", mode="before")
    @classmethod
    def _no_id(cls, value: Any) -> Any:
        return "" if value is None else value

    @field_validator("tags", mode="before")
    @classmethod
    def _tags(cls, value: Any) -> list[str]:
        return tag_names(value)

    def first_customer_message(self) -> LogMessage | None:
        return next((m for m in self.messages if m.author == "customer"), None)

    def to_json(self) -> str:
        """One line of a support-log file (unset fields left out)."""
        return json.dumps(self.model_dump(exclude_none=True), ensure_ascii=False)


def parse_support_log(record: Any, where: str) -> SupportLog:
    """One decoded record as a `SupportLog`; `where` (file:line, record id) names it in errors."""
    try:
        return SupportLog.model_validate(record)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "record"
        raise DataError(f"{where}: not a support-log record ({field}: {first['msg']})") from exc


def read_jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, decoded value) of each non-blank line; invalid JSON says file and line."""
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield lineno, json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{lineno}: invalid JSON ({exc.msg})") from exc


def read_support_logs(path: Path) -> list[SupportLog]:
    """Every conversation of a support-log JSONL file."""
    return [parse_support_log(record, f"{path}:{lineno}") for lineno, record in read_jsonl(path)]


def write_support_logs(path: Path, logs: list[SupportLog], append: bool = False) -> None:
    with path.open("a" if append else "w", encoding="utf-8") as fh:
        fh.writelines(log.to_json() + "\n" for log in logs)
