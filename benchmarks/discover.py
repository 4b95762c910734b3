"""Intent discovery without labels: `supportbot discover` against k-means on TF-IDF.

BANKING77's test utterances (3,080, 77 intents) are clustered with their labels hidden; the labels
only score the result: adjusted Rand index, normalised mutual information, and accuracy after the
best one-to-one mapping of clusters to intents (Hungarian). Both methods get the true k = 77; ours
also runs with k chosen by silhouette (what `discover` does when no k is given).

    .venv/bin/python benchmarks/discover.py
"""

from __future__ import annotations

import csv
import json
import os
import platform
import time

import numpy as np
from common import RESULTS, arg_parser
from rich.console import Console
from rich.table import Table
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from bot.encoders.paths import display_name, offline
from bot.knowledge.embedder import Embedder
from bot.nlu.discover import discover, kmeans, mapped_accuracy

console = Console(width=150)


def score(name: str, k: int, truth: list[str], pred: np.ndarray, seconds: float) -> dict:
    return {"method": name, "k": k, "ari": round(float(adjusted_rand_score(truth, pred)), 4),
            "nmi": round(float(normalized_mutual_info_score(truth, pred)), 4),
            "mapped_accuracy": round(mapped_accuracy(np.array(truth), pred), 4),
            "seconds": round(seconds, 1)}


def main() -> None:
    parser = arg_parser(__doc__)
    args = parser.parse_args()
    offline()
    with (args.datasets / "banking77" / "test.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    first: dict[str, str] = {}
    for r in rows:
        first.setdefault(r["text"], r["label"])
    texts, truth = list(first), list(first.values())
    k = len(set(truth))
    embedder = Embedder()
    results = []

    from sklearn.feature_extraction.text import TfidfVectorizer

    t0 = time.perf_counter()
    x = TfidfVectorizer(sublinear_tf=True, stop_words="english").fit_transform(texts)
    from sklearn.cluster import KMeans

    pred = KMeans(n_clusters=k, n_init=4, random_state=0).fit(x).labels_
    results.append(score("k-means on TF-IDF (baseline)", k, truth, pred, time.perf_counter() - t0))

    def clusters_to_labels(clusters: list) -> np.ndarray:
        where = {t: i for i, c in enumerate(clusters) for t in c.examples}
        return np.array([where[t] for t in texts])

    for given in (k, None):
        t0 = time.perf_counter()
        clusters = discover(texts, embedder.encode, given, examples_per_cluster=len(texts))
        seconds = time.perf_counter() - t0
        label = "discover (sentence embeddings, k given)" if given else "discover (k by silhouette)"
        results.append(score(label, len(clusters), truth, clusters_to_labels(clusters), seconds))
        if given:
            sample = [{"name": c.name, "size": c.size, "cohesion": c.cohesion,
                       "examples": c.examples[:3]} for c in clusters[:5]]

    vectors = embedder.encode(texts)
    t0 = time.perf_counter()
    labels, _ = kmeans(vectors, k, seed=1)
    results.append(score("discover, other seed (stability)", k, truth, labels, time.perf_counter() - t0))

    table = Table(title=f"Intent discovery on BANKING77 test ({len(texts)} messages, labels hidden)")
    for col in ("method", "k", "ARI", "NMI", "accuracy after mapping", "seconds"):
        table.add_column(col, justify="left" if col == "method" else "right")
    for r in results:
        table.add_row(r["method"], str(r["k"]), f"{r['ari']:.3f}", f"{r['nmi']:.3f}",
                      f"{r['mapped_accuracy'] * 100:.1f}", f"{r['seconds']:.0f}")
    console.print(table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "discover.json"
    out.write_text(json.dumps({
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "embedder": display_name(embedder.path), "messages": len(texts), "true_k": k,
        "results": results, "top_clusters": sample}, indent=2, ensure_ascii=False))
    console.print(f"wrote {out}")


if __name__ == "__main__":
    main()
