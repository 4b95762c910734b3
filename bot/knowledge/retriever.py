"""KnowledgeBase.search(): nearest FAQ entries to a customer's message, one hit per entry."""

from __future__ import annotations

import json
from pathlib import Path

import faiss

from bot.knowledge.embedder import TextEmbedder
from bot.knowledge.loader import FaqEntry
from bot.types import Hit


class KnowledgeBase:
    def __init__(self, directory: Path, embedder: TextEmbedder) -> None:
        if not (directory / "index.faiss").exists():
            raise FileNotFoundError(f"{directory}: no FAQ index (run `supportbot index`)")
        meta = json.loads((directory / "entries.json").read_text())
        self.entries = [FaqEntry(**e) for e in meta["entries"]]
        self.rows: list[int] = meta["rows"]
        self.texts: list[str] = meta["texts"]
        self.index = faiss.read_index(str(directory / "index.faiss"))
        self.embedder = embedder

    def search(self, text: str, k: int = 3, language: str | None = None) -> list[Hit]:
        """Top-k entries by cosine similarity of their best-matching phrasing (in any language the
        index holds); with `language`, answers come in that language where a translation exists."""
        if not text.strip():
            return []
        query = self.embedder.encode([text])
        scores, ids = self.index.search(query, min(self.index.ntotal, k * 6))
        hits: dict[int, Hit] = {}
        for score, row in zip(scores[0], ids[0], strict=True):
            if row < 0:
                continue
            entry_i = self.rows[row]
            if entry_i in hits:
                continue
            e = self.entries[entry_i]
            localized = e.localized(language) if language else None
            question, answer = localized or (e.question, e.answer)
            hits[entry_i] = Hit(entry_id=e.id, question=question, answer=answer,
                                category=e.category, score=round(float(score), 4),
                                matched=self.texts[row],
                                language=language if localized else None)
            if len(hits) == k:
                break
        return list(hits.values())

    def get(self, entry_id: str) -> FaqEntry | None:
        return next((e for e in self.entries if e.id == entry_id), None)
