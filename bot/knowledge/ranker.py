"""What ranks FAQ entries beyond raw cosine: language centering and a head trained on the phrasings.

Measured on our held-out paraphrases (benchmarks/retrieval.py, benchmarks/multilingual.py):
- A multilingual embedder puts a language's own sentences closer together than translations, so
  a Chinese question prefers any Chinese phrasing over the right English one. Subtracting each
  language's mean vector (from the knowledge base's own phrasings) removes most of that
  component before the cosine (zh paraphrases, e5: Recall@1 40 % → 66 %).
- A logistic-regression head over the phrasing vectors (one class per entry) learns which parts
  of the embedding separate entries: ranking by cosine + HEAD_WEIGHT × log p(entry) lifts
  English Recall@1 from 71 % to 82 % (MiniLM) and Chinese from 66 % to 72 % (e5). The cosine
  stays the hit's score, so the policy's thresholds keep their meaning.
- A second head (`fit_unanswered`) adds a class per entry for the questions the FAQ marks
  `unanswered` beside it: the probability of those classes is how likely a message is one of the
  questions the FAQ leaves open, learned from the directions that separate them from the phrasings
  ("who founded kettle and kin" from "who is Kettle & Kin?"), not from the nearest one alone
  (benchmarks/coverage.py: more caught at fewer false flags than the nearest question's cosine).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

HEAD_WEIGHT = 0.2
HEAD_MAX_ENTRIES = 5_000  # one class per entry: beyond this, training and scoring cost too much
RANKER_FILE = "ranker.npz"


def unit(x: np.ndarray) -> np.ndarray:
    x = np.atleast_2d(np.asarray(x, dtype=np.float32))
    return np.ascontiguousarray(x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12))


@dataclass
class Ranker:
    means: dict[str, np.ndarray]  # language -> mean phrasing vector; empty: no centering
    coef: np.ndarray | None = None  # (entries, dim) of the entry head; None: cosine only
    intercept: np.ndarray | None = None
    # The unanswered head: classes are entries (their phrasings), then one per entry's unanswered list
    open_coef: np.ndarray | None = None
    open_intercept: np.ndarray | None = None
    open_unanswered: np.ndarray | None = None  # bool per class: an unanswered list's

    @classmethod
    def fit(cls, vectors: np.ndarray, rows: list[int], languages: list[str], n_entries: int,
            center: bool, seed: int = 0) -> tuple[Ranker, np.ndarray]:
        """The ranker and the (centered) vectors the index should hold."""
        means: dict[str, np.ndarray] = {}
        if center and len(set(languages)) > 1:
            langs = np.array(languages)
            means = {lang: vectors[langs == lang].mean(0) for lang in sorted(set(languages))}
            vectors = unit(vectors - np.stack([means[lang] for lang in languages]))
        ranker = cls(means)
        if n_entries <= HEAD_MAX_ENTRIES and len(set(rows)) > 1 and len(rows) > n_entries:
            from sklearn.linear_model import LogisticRegression

            head = LogisticRegression(C=100.0, max_iter=3000, random_state=seed).fit(vectors, rows)
            coef = np.zeros((n_entries, vectors.shape[1]), dtype=np.float32)
            intercept = np.full(n_entries, -1e4, dtype=np.float32)  # entries without phrasings
            coef[head.classes_] = head.coef_
            intercept[head.classes_] = head.intercept_
            ranker.coef, ranker.intercept = coef, intercept
        return ranker, vectors

    def fit_unanswered(self, vectors: np.ndarray, rows: list[int], near: np.ndarray, near_rows: list[int],
                       n_entries: int, seed: int = 0) -> None:
        """The unanswered head, over the (centered) phrasing vectors and those of the questions the
        FAQ marks unanswered (`near_rows`: the entry each is listed under); none without any."""
        if not near_rows or n_entries > HEAD_MAX_ENTRIES or len(set(rows)) < 2:
            return
        from sklearn.linear_model import LogisticRegression

        labels = [*rows, *(n_entries + r for r in near_rows)]
        head = LogisticRegression(C=100.0, max_iter=3000, random_state=seed)
        head.fit(np.vstack([vectors, near]), labels)
        self.open_coef = head.coef_.astype(np.float32)
        self.open_intercept = head.intercept_.astype(np.float32)
        self.open_unanswered = head.classes_ >= n_entries

    def unanswered_probability(self, query: np.ndarray) -> float | None:
        """How likely the (centered) query is one of the questions the FAQ leaves open; None
        without an unanswered head."""
        if self.open_coef is None or self.open_intercept is None or self.open_unanswered is None:
            return None
        logits = self.open_coef @ query + self.open_intercept
        p = np.exp(logits - logits.max())
        return float(p[self.open_unanswered].sum() / p.sum())

    def center(self, query: np.ndarray, language: str | None) -> np.ndarray:
        """Queries in a language the index has no phrasings in are centered on the mean of all."""
        if not self.means:
            return query
        mean = self.means.get((language or "").split("-")[0])
        if mean is None:
            mean = np.mean(list(self.means.values()), axis=0)
        return unit(query - mean)

    def log_probs(self, query: np.ndarray) -> np.ndarray | None:
        if self.coef is None or self.intercept is None:
            return None
        logits = query @ self.coef.T + self.intercept
        logits -= logits.max()
        return logits - np.log(np.exp(logits).sum())

    def save(self, directory: Path) -> None:
        arrays: dict[str, np.ndarray] = {f"mean_{k}": v for k, v in self.means.items()}
        if self.coef is not None and self.intercept is not None:
            arrays |= {"coef": self.coef, "intercept": self.intercept}
        opened = {"open_coef": self.open_coef, "open_intercept": self.open_intercept,
                  "open_unanswered": self.open_unanswered}
        arrays |= {k: v for k, v in opened.items() if v is not None}
        np.savez(directory / RANKER_FILE, **arrays)  # type: ignore[arg-type]  # numpy's stub: **kwds

    @classmethod
    def load(cls, directory: Path) -> Ranker:
        path = directory / RANKER_FILE
        if not path.exists():  # an index built before the ranker existed: cosine only
            return cls({})
        data = np.load(path)
        means = {k.removeprefix("mean_"): data[k] for k in data.files if k.startswith("mean_")}
        def get(name: str) -> np.ndarray | None:
            return data[name] if name in data.files else None
        return cls(means, get("coef"), get("intercept"), get("open_coef"), get("open_intercept"),
                   get("open_unanswered"))
