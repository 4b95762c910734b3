"""Cluster unlabeled customer messages into candidate intents for a person to review.

Sentence embeddings (the same encoder as the FAQ index), k-means on the unit sphere, the number of
clusters chosen by silhouette when not given. Each cluster gets a suggested name from its most
distinctive words (class-based TF-IDF: frequent in the cluster, rare elsewhere), its most typical
messages first, and a cohesion score so that the reviewer starts with the clean clusters.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bot.nlu.support_logs import read_support_logs

Embed = Callable[[list[str]], np.ndarray]
_STOP = {"please", "pls", "hi", "hello", "hey", "thanks", "thank", "thx", "just", "can", "could",
         "would", "want", "need", "get", "got", "still", "know", "like", "help", "im", "ive", "dont",
         "one", "also", "yet", "way", "today", "yesterday", "ok", "okay"}


@dataclass
class Cluster:
    name: str
    keywords: list[str]
    size: int
    cohesion: float  # mean cosine of members to the centroid
    examples: list[str]  # most typical first


def read_messages(path: Path) -> list[str]:
    """Lines of a .txt, the first customer message of each support-log conversation (.jsonl),
    or the `text` column of a CSV."""
    suffix = path.suffix.lower()
    if suffix == ".txt":
        texts = path.read_text(encoding="utf-8").splitlines()
    elif suffix == ".jsonl":
        firsts = (log.first_customer_message() for log in read_support_logs(path))
        texts = [first.text if first else "" for first in firsts]
    elif suffix == ".csv":
        with path.open(encoding="utf-8", newline="") as fh:
            texts = [row.get("text", "") for row in csv.DictReader(fh)]
    else:
        raise ValueError(f"{path}: use .txt (one message per line), .jsonl support logs or .csv")
    seen: set[str] = set()
    out = []
    for t in (" ".join(t.split()) for t in texts):
        if t and t.lower() not in seen:
            seen.add(t.lower())
            out.append(t)
    return out


def kmeans(x: np.ndarray, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.cluster import KMeans

    km = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(x)
    return km.labels_, km.cluster_centers_


def choose_k(x: np.ndarray, candidates: list[int], seed: int = 0) -> int:
    """The k with the best cosine silhouette (on a fixed sample for large inputs)."""
    from sklearn.metrics import silhouette_score

    best_k, best = candidates[0], -1.0
    sample = min(len(x), 3000)
    for k in candidates:
        if k < 2 or k >= len(x):
            continue
        labels, _ = kmeans(x, k, seed)
        score = silhouette_score(x, labels, metric="cosine", sample_size=sample, random_state=seed)
        if score > best:
            best_k, best = k, score
    return best_k


def k_candidates(n: int) -> list[int]:
    """A log-spaced range around the usual support-log shape (a few dozen messages per intent)."""
    hi = max(2, min(200, n // 5))
    lo = max(2, min(hi, n // 60))
    return sorted({int(round(v)) for v in np.geomspace(lo, hi, num=8)})


def keywords(texts: list[str], labels: np.ndarray, k: int, top: int = 3) -> list[list[str]]:
    """Class-based TF-IDF: each cluster as one document, words scored against all clusters."""
    from sklearn.feature_extraction.text import CountVectorizer

    docs = [" ".join(t for t, c in zip(texts, labels, strict=True) if c == i) for i in range(k)]
    vec = CountVectorizer(stop_words="english", token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z]{2,}\b")
    try:
        counts = vec.fit_transform(docs).toarray().astype(float)
    except ValueError:  # no words at all (numbers or emoji only)
        return [[] for _ in range(k)]
    vocab = np.array(vec.get_feature_names_out())
    keep = np.array([w not in _STOP for w in vocab])
    tf = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    idf = np.log(1 + counts.sum(1).mean() / np.maximum(counts.sum(0), 1))
    scores = tf * idf * keep
    return [[str(vocab[j]) for j in np.argsort(-row)[:top] if row[j] > 0] for row in scores]


def discover(texts: list[str], embed: Embed, k: int | None = None, seed: int = 0,
             examples_per_cluster: int = 20) -> list[Cluster]:
    if len(texts) < 4:
        raise ValueError("discover needs at least 4 distinct messages")
    x = embed(texts)
    k = k or choose_k(x, k_candidates(len(texts)), seed)
    labels, centers = kmeans(x, k, seed)
    centers = centers / np.maximum(np.linalg.norm(centers, axis=1, keepdims=True), 1e-9)
    words = keywords(texts, labels, k)
    clusters = []
    used: dict[str, int] = {}
    for i in range(k):
        idx = np.flatnonzero(labels == i)
        if len(idx) == 0:
            continue
        sims = x[idx] @ centers[i]
        order = idx[np.argsort(-sims)]
        base = "_".join(words[i][:2]) or f"cluster_{i}"
        base = re.sub(r"[^a-z0-9_]+", "_", base.lower())
        used[base] = used.get(base, 0) + 1
        name = f"candidate_{base}" + (f"_{used[base]}" if used[base] > 1 else "")
        clusters.append(Cluster(name, words[i], len(idx), round(float(sims.mean()), 4),
                                [texts[j] for j in order[:examples_per_cluster]]))
    return sorted(clusters, key=lambda c: (-c.cohesion, -c.size))


def to_nlu_yaml(clusters: list[Cluster]) -> str:
    """A Rasa nlu.yml a reviewer edits: rename, merge, delete, then train on it."""
    lines = ["# Candidate intents discovered by `supportbot discover`: rename each intent, merge or",
             "# drop clusters, remove stray examples, then add them to the training data.",
             'version: "3.1"', "nlu:"]
    for c in clusters:
        lines.append(f"# {c.size} messages, cohesion {c.cohesion:.2f}, keywords: {', '.join(c.keywords)}")
        lines.append(f"- intent: {c.name}")
        lines.append("  examples: |")
        lines.extend(f"    - {t}" for t in c.examples)
    return "\n".join(lines) + "\n"


def mapped_accuracy(true: np.ndarray, pred: np.ndarray) -> float:
    """Accuracy after the best one-to-one mapping of clusters to labels (Hungarian algorithm)."""
    from scipy.optimize import linear_sum_assignment

    t_ids, t = np.unique(true, return_inverse=True)
    p_ids, p = np.unique(pred, return_inverse=True)
    m = np.zeros((len(p_ids), len(t_ids)), dtype=int)
    np.add.at(m, (p, t), 1)
    rows, cols = linear_sum_assignment(-m)
    return float(m[rows, cols].sum() / len(true))
