"""FAQ retrieval quality and FAISS index scaling, flat against HNSW in the same run.

Quality (Recall@1, Recall@5, MRR; end-to-end query latency: embed + search, batch 1):
- our demo FAQ with held-out paraphrases we wrote (benchmarks/data/faq_paraphrases.yml);
- BANKING77 used as retrieval: each intent is an entry whose phrasings are its training examples,
  the test utterances are the queries (../shared/datasets/banking77).
Both through the product's own `build_index` and `KnowledgeBase.search` (one hit per entry).

Scale (synthetic unit vectors, the embedder's dimension): build time, index memory (serialized
size and resident-memory growth), index-only query latency p50/p95 and HNSW's Recall@1 against the
exact flat index, at 10k, 100k and 1M entries.

    .venv/bin/python benchmarks/retrieval.py                 # about 15 min on 2 cores
    .venv/bin/python benchmarks/retrieval.py --sizes 10000,100000 --skip-quality
"""

from __future__ import annotations

import csv
import json
import os
import platform
import random
import re
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np
import yaml
from common import RESULTS, ROOT, arg_parser
from rich.console import Console
from rich.table import Table

from bot.encoders.paths import display_name, offline
from bot.knowledge.embedder import Embedder, TextEmbedder
from bot.knowledge.index import build_index, make_index
from bot.knowledge.loader import FaqEntry, load_entries
from bot.knowledge.retriever import KnowledgeBase
from bot.stats import percentile

console = Console(width=150)


def pct(values: list[float], q: float) -> float:
    return round(percentile(values, q), 3)


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def quality(name: str, entries: list[FaqEntry], queries: list[tuple[str, str]], embedder: TextEmbedder,
            kind: str, language: str | None = None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        built = build_index(entries, embedder, Path(tmp), force=True, kind=kind).manifest
        kb = KnowledgeBase(Path(tmp), embedder)
        return {"data": name, "index": kind, "entries": len(entries), "vectors": built.vectors,
                **evaluate(kb, queries, language), "build_seconds": built.build_seconds}


def evaluate(kb: KnowledgeBase, queries: list[tuple[str, str]], language: str | None = None,
             timed: int | None = None) -> dict:
    """Recall@1/5 and MRR@5 (queries searched in batches: same hits as one by one, see
    tests/integration/test_batched_turns.py) and the per-query time of `kb.search` (embedding +
    search + ranking, one query at a time) over the first `timed` queries (None: all)."""
    kb.search(queries[0][0], k=5, language=language)  # warm-up
    times = []
    for text, _ in queries[:timed]:
        t0 = time.perf_counter()
        kb.search(text, k=5, language=language)
        times.append((time.perf_counter() - t0) * 1000)
    ranks = []
    for start in range(0, len(queries), 64):
        chunk = queries[start:start + 64]
        for (_, gold), hits in zip(chunk, kb.search_batch([t for t, _ in chunk], 5, language), strict=True):
            ids = [h.entry_id for h in hits]
            ranks.append(ids.index(gold) + 1 if gold in ids else None)
    n = len(queries)
    return {
        "queries": n,
        "recall_at_1": round(sum(r == 1 for r in ranks) / n, 4),
        "recall_at_5": round(sum(r is not None for r in ranks) / n, 4),
        "mrr_at_5": round(sum(1 / r for r in ranks if r) / n, 4),
        "query_ms_p50": pct(times, 50), "query_ms_p95": pct(times, 95), "timed_queries": len(times),
    }


def demo_data() -> tuple[list[FaqEntry], list[tuple[str, str]]]:
    entries = load_entries(ROOT.parent / "knowledge_base")
    doc = yaml.safe_load((ROOT / "data" / "faq_paraphrases.yml").read_text(encoding="utf-8"))
    return entries, [(q["text"], q["entry"]) for q in doc["queries"]]


def entry_id(label: str) -> str:
    """BANKING77 labels ("reverted_card_payment?") as valid FAQ entry ids."""
    return re.sub(r"[^a-z0-9_-]+", "-", label.lower()).strip("-")


def banking_data(datasets: Path) -> tuple[list[FaqEntry], list[tuple[str, str]]]:
    def rows(split: str) -> list[dict]:
        with (datasets / "banking77" / f"{split}.csv").open(encoding="utf-8", newline="") as fh:
            return list(csv.DictReader(fh))

    by_label: dict[str, list[str]] = {}
    for r in rows("train"):
        by_label.setdefault(r["label"], []).append(r["text"])
    entries = [FaqEntry(id=entry_id(label), question=texts[0], alternatives=texts[1:], answer=label,
                        category="banking77") for label, texts in sorted(by_label.items())]
    return entries, [(r["text"], entry_id(r["label"])) for r in rows("test")]


def scale(n: int, dim: int, kind: str, queries: int = 200, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((n, dim), dtype=np.float32)
    faiss.normalize_L2(base)
    picks = rng.choice(n, queries, replace=False)
    q = base[picks] + 0.05 * rng.standard_normal((queries, dim), dtype=np.float32)
    faiss.normalize_L2(q)
    before = rss_mb()
    t0 = time.perf_counter()
    index = make_index(base, kind)
    build = time.perf_counter() - t0
    grown = rss_mb() - before
    size = len(faiss.serialize_index(index)) / 1e6
    index.search(q[:1], 5)
    times, found = [], []
    for i in range(queries):
        t0 = time.perf_counter()
        _, ids = index.search(q[i : i + 1], 5)
        times.append((time.perf_counter() - t0) * 1000)
        found.append(int(ids[0][0]))
    recall = float(np.mean(np.array(found) == picks))  # the perturbed vector's own source
    del index
    return {"entries": n, "index": kind, "build_seconds": round(build, 2),
            "index_mb": round(size, 1), "rss_growth_mb": round(grown, 1),
            "search_ms_p50": pct(times, 50), "search_ms_p95": pct(times, 95),
            "recall_at_1": round(recall, 4)}


def main() -> None:
    parser = arg_parser(__doc__)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--skip-scale", action="store_true")
    args = parser.parse_args()
    offline()
    random.seed(0)
    embedder = Embedder()
    results: dict = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                 "faiss": faiss.__version__, "faiss_threads": faiss.omp_get_max_threads()},
                     "embedder": display_name(embedder.path), "quality": [], "scale": []}
    if not args.skip_quality:
        sets = [("demo FAQ (paraphrases)", *demo_data())]
        if (args.datasets / "banking77").is_dir():
            sets.append(("BANKING77 as retrieval", *banking_data(args.datasets)))
        else:
            console.print(f"[yellow]{args.datasets}: no banking77, skipping it[/yellow]")
        for name, entries, queries in sets:
            for kind in ("flat", "hnsw"):
                row = quality(name, entries, queries, embedder, kind)
                console.print(row)
                results["quality"].append(row)
    if not args.skip_scale:
        for n in (int(s) for s in args.sizes.split(",") if s):
            for kind in ("flat", "hnsw"):
                row = scale(n, embedder.dim, kind)
                console.print(row)
                results["scale"].append(row)
    show(results)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "retrieval.json"
    previous = json.loads(out.read_text()) if out.exists() else {}
    for part in ("quality", "scale"):  # a partial run keeps the other part's last numbers
        if not results[part] and previous.get(part):
            results[part] = previous[part]
    out.write_text(json.dumps(results, indent=2))
    console.print(f"wrote {out}")


def show(results: dict) -> None:
    table = Table(title=f"FAQ retrieval ({results['embedder']})")
    for col in ("data", "index", "entries", "queries", "R@1", "R@5", "MRR@5", "p50 ms", "p95 ms"):
        table.add_column(col, justify="left" if col in ("data", "index") else "right")
    for r in results["quality"]:
        table.add_row(r["data"], r["index"], str(r["entries"]), str(r["queries"]),
                      f"{r['recall_at_1'] * 100:.1f}", f"{r['recall_at_5'] * 100:.1f}",
                      f"{r['mrr_at_5']:.3f}", f"{r['query_ms_p50']:.1f}", f"{r['query_ms_p95']:.1f}")
    console.print(table)
    table = Table(title="FAISS index at scale (synthetic vectors; search only, batch 1)")
    for col in ("entries", "index", "build s", "index MB", "RSS growth MB", "p50 ms", "p95 ms",
                "R@1 vs exact"):
        table.add_column(col, justify="right")
    for r in results["scale"]:
        table.add_row(f"{r['entries']:,}", r["index"], f"{r['build_seconds']:.1f}", f"{r['index_mb']:.0f}",
                      f"{r['rss_growth_mb']:.0f}", f"{r['search_ms_p50']:.3f}",
                      f"{r['search_ms_p95']:.3f}", f"{r['recall_at_1'] * 100:.1f}")
    console.print(table)


if __name__ == "__main__":
    main()
