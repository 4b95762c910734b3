"""KnowledgeBase.search(): nearest FAQ entries to a customer's message, one hit per entry."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import faiss
import numpy as np

from bot.knowledge.embedder import TextEmbedder
from bot.knowledge.index import UNANSWERED_FILE
from bot.knowledge.loader import FaqEntry
from bot.knowledge.ranker import HEAD_WEIGHT, Ranker
from bot.types import Hit

log = logging.getLogger(__name__)

CANDIDATES = 64  # nearest phrasings looked at per query, before one hit per entry is kept


def _check_runtime(directory: Path, embedder: TextEmbedder) -> None:
    """Say so when the index was built by another runtime than the one encoding the queries: the
    thresholds (near miss, unanswered head, coverage) were fitted on the index's vectors."""
    manifest = directory / "manifest.json"
    built = json.loads(manifest.read_text()).get("runtime", "torch") if manifest.exists() else None
    if built is not None and built != embedder.runtime and not embedder.multilingual:
        log.warning("%s was built with the %s embedder but queries are encoded with %s: run "
                    "`supportbot index` with the serving settings", directory, built, embedder.runtime)


class KnowledgeBase:
    def __init__(self, directory: Path, embedder: TextEmbedder) -> None:
        if not (directory / "index.faiss").exists():
            raise FileNotFoundError(f"{directory}: no FAQ index (run `supportbot index`)")
        meta = json.loads((directory / "entries.json").read_text())
        self.entries = [FaqEntry(**e) for e in meta["entries"]]
        self.rows: list[int] = meta["rows"]
        self.texts: list[str] = meta["texts"]
        self.index = faiss.read_index(str(directory / "index.faiss"))
        self.ranker = Ranker.load(directory)
        self.near_texts: list[str] = meta.get("unanswered", [])
        near = directory / UNANSWERED_FILE
        self.near_vectors = np.load(near) if near.exists() and self.near_texts else None
        self.embedder = embedder
        _check_runtime(directory, embedder)
        self._entry_rows: dict[int, list[int]] = {}
        for row, entry_i in enumerate(self.rows):
            self._entry_rows.setdefault(entry_i, []).append(row)

    def search(self, text: str, k: int = 3, language: str | None = None) -> list[Hit]:
        """Top-k entries, ranked by the cosine of their best-matching phrasing plus the entry
        head's log-probability (ranker.py); a hit's score is that cosine. With `language`, the
        query is centered for that language and answers come in it where a translation exists."""
        return self.search_batch([text], k, language)[0]

    def search_batch(self, texts: list[str], k: int = 3, language: str | None = None) -> list[list[Hit]]:
        """`search` for several queries with one embedding pass and one FAISS call."""
        asked = [i for i, text in enumerate(texts) if text.strip()]
        results: list[list[Hit]] = [[] for _ in texts]
        if not asked:
            return results
        queries = self.ranker.center(self.embedder.encode([texts[i] for i in asked]), language)
        scores, ids = self.index.search(queries, min(self.index.ntotal, max(k * 6, CANDIDATES)))
        near = queries @ self.near_vectors.T if self.near_vectors is not None else None
        for j, i in enumerate(asked):
            results[i] = self._rank(queries[j], scores[j], ids[j], k, language)
            if near is not None:
                best = int(near[j].argmax())
                unanswered = self.ranker.unanswered_probability(queries[j])
                for hit in results[i]:
                    hit.near_miss = round(float(near[j][best]), 4)
                    hit.near_miss_question = self.near_texts[best]
                    hit.unanswered_p = round(unanswered, 4) if unanswered is not None else None
        return results

    def _rank(self, query: np.ndarray, scores: np.ndarray, ids: np.ndarray, k: int,
              language: str | None) -> list[Hit]:
        best: dict[int, tuple[float, int]] = {}  # entry -> (cosine, row of the best phrasing)
        for score, row in zip(scores, ids, strict=True):
            if row >= 0 and self.rows[row] not in best:
                best[self.rows[row]] = (float(score), int(row))
        log_p = self.ranker.log_probs(query)
        if log_p is not None:
            for entry_i in np.argsort(-log_p)[:k]:  # the head's favourites, even if no phrasing was near
                if int(entry_i) not in best and int(entry_i) in self._entry_rows:
                    best[int(entry_i)] = self._best_phrasing(query, int(entry_i))
            rank = {e: best[e][0] + HEAD_WEIGHT * float(log_p[e]) for e in best}
        else:
            rank = {e: best[e][0] for e in best}
        ranked = sorted(best, key=lambda e: -rank[e])
        return [self._hit(e, *best[e], language, rank[e]) for e in ranked[:k]]

    def _best_phrasing(self, query: np.ndarray, entry_i: int) -> tuple[float, int]:
        rows = self._entry_rows[entry_i]
        vectors = np.stack([self.index.reconstruct(r) for r in rows])
        sims = vectors @ query
        return float(sims.max()), rows[int(sims.argmax())]

    def _hit(self, entry_i: int, score: float, row: int, language: str | None,
             rank: float | None = None) -> Hit:
        e = self.entries[entry_i]
        localized = e.localized(language) if language else None
        question, answer = localized or (e.question, e.answer)
        return Hit(entry_id=e.id, question=question, answer=answer, category=e.category,
                   score=round(score, 4), matched=self.texts[row],
                   language=language if localized else None,
                   rank=round(rank, 4) if rank is not None else None)

    def get(self, entry_id: str) -> FaqEntry | None:
        return next((e for e in self.entries if e.id == entry_id), None)


class LanguageRoutedKnowledgeBase:
    """The default language's index (the best embedder for it, English MiniLM by default) answers
    messages in that language; a multilingual index (e5) answers every other language. English
    keeps its accuracy (benchmarks/multilingual.py measures what e5 would cost it) and Chinese
    questions still find English-only entries."""

    def __init__(self, default: KnowledgeBase, multilingual: KnowledgeBase | None,
                 default_language: str) -> None:
        self.default, self.multilingual = default, multilingual
        self.default_language = default_language
        self.entries, self.embedder = default.entries, default.embedder

    def for_language(self, language: str | None) -> KnowledgeBase:
        if self.multilingual is None or language is None or language == self.default_language:
            return self.default
        return self.multilingual

    def search(self, text: str, k: int = 3, language: str | None = None) -> list[Hit]:
        return self.for_language(language).search(text, k, language)

    def search_batch(self, texts: list[str], k: int = 3, language: str | None = None) -> list[list[Hit]]:
        return self.for_language(language).search_batch(texts, k, language)

    def get(self, entry_id: str) -> FaqEntry | None:
        return self.default.get(entry_id)


class EmptyKnowledgeBase:
    """A deployment without an FAQ (a Rasa project with no knowledge_base/): every search finds
    nothing, so the policy's fallbacks (rephrase, hand-off) answer instead of an invented entry."""

    def __init__(self) -> None:
        self.entries: list[FaqEntry] = []
        self.embedder: TextEmbedder | None = None

    def search(self, text: str, k: int = 3, language: str | None = None) -> list[Hit]:
        return []

    def search_batch(self, texts: list[str], k: int = 3, language: str | None = None) -> list[list[Hit]]:
        return [[] for _ in texts]

    def get(self, entry_id: str) -> FaqEntry | None:
        return None
