"""Read the FAQ knowledge base: YAML files of entries (question, alternative phrasings, answer)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator

_LANGUAGE_CODE = re.compile(r"^[a-z]{2}(-[A-Z]{2})?$")


class FaqTranslation(BaseModel):
    """One entry in another language: its question, alternative phrasings and answer."""

    question: str = Field(min_length=1)
    alternatives: list[str] = Field(default_factory=list)
    unanswered: list[str] = Field(default_factory=list)
    answer: str = Field(min_length=1)


class FaqEntry(BaseModel):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    question: str = Field(min_length=3)
    alternatives: list[str] = Field(default_factory=list)
    # Questions near this entry's topic that no entry answers ("is there a student discount?" near
    # "how do I use a discount code?"): a message nearer to one of them than to any phrasing of
    # the answering entry gets "I don't have an answer to that" (bot/knowledge/retriever.py).
    unanswered: list[str] = Field(default_factory=list)
    answer: str = Field(min_length=1)
    category: str = "general"
    translations: dict[str, FaqTranslation] = Field(default_factory=dict)

    @field_validator("translations")
    @classmethod
    def _language_codes(cls, value: dict[str, FaqTranslation]) -> dict[str, FaqTranslation]:
        bad = [key for key in value if not _LANGUAGE_CODE.fullmatch(key)]
        if bad:
            raise ValueError(f"translation keys must be language codes like 'zh' or 'pt-BR', got {bad}")
        return value

    @property
    def phrasings(self) -> list[str]:
        return [self.question, *self.alternatives]

    def localized(self, lang: str) -> tuple[str, str] | None:
        """(question, answer) in `lang` ('zh-CN' falls back to 'zh'), or None without a translation."""
        translation = self.translations.get(lang) or self.translations.get(lang.split("-")[0])
        return (translation.question, translation.answer) if translation else None


class KnowledgeBaseError(ValueError):
    pass


def load_entries(directory: Path) -> list[FaqEntry]:
    """Every `*.yml`/`*.yaml` under the folder; ids must be unique across files."""
    if not directory.is_dir():
        raise KnowledgeBaseError(f"{directory}: knowledge base folder not found")
    entries: list[FaqEntry] = []
    seen: dict[str, Path] = {}
    files = sorted([*directory.rglob("*.yml"), *directory.rglob("*.yaml")])
    for path in files:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        category = doc.get("category", path.stem)
        for i, raw in enumerate(doc.get("entries", [])):
            try:
                entry = FaqEntry(**{"category": category, **raw})
            except (ValidationError, TypeError) as exc:
                raise KnowledgeBaseError(f"{path}: entry {i}: {exc}") from exc
            if entry.id in seen:
                raise KnowledgeBaseError(f"{path}: duplicate id {entry.id!r} (also in {seen[entry.id]})")
            seen[entry.id] = path
            entries.append(entry)
    if not entries:
        raise KnowledgeBaseError(f"{directory}: no FAQ entries found")
    return entries


def content_hash(entries: list[FaqEntry], embedder: str) -> str:
    payload = json.dumps([e.model_dump() for e in entries], sort_keys=True) + embedder
    return hashlib.sha256(payload.encode()).hexdigest()[:16]
