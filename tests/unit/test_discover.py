"""`discover`: unlabeled messages → candidate intents a person can review."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from sklearn.metrics import adjusted_rand_score

from bot.knowledge.embedder import Embedder
from bot.nlu.data import read_rasa_nlu
from bot.nlu.discover import discover, k_candidates, mapped_accuracy, read_messages, to_nlu_yaml

TOPICS = {
    "refund": ["where is my refund", "I still haven't got my money back", "refund not received yet",
               "when will the refund reach my card", "my refund is taking ages",
               "has my refund been processed", "waiting on a refund for two weeks"],
    "password": ["I forgot my password", "how do I reset my password", "password reset link not working",
                 "can't remember my login password", "reset password email never arrived",
                 "need a new password for my account", "change my password please"],
    "delivery": ["how much does delivery cost", "what are your shipping fees", "is shipping free",
                 "delivery price to france", "how much is postage", "shipping costs for a big order",
                 "do you charge for delivery"],
}


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


def test_clear_topics_become_clean_named_clusters(embedder: Embedder, tmp_path: Path) -> None:
    texts = [t for ts in TOPICS.values() for t in ts]
    truth = [name for name, ts in TOPICS.items() for _ in ts]
    clusters = discover(texts, embedder.encode, k=None, examples_per_cluster=50)
    assert len(clusters) == 3  # chosen by silhouette, not given
    assigned = {t: c.name for c in clusters for t in c.examples}
    assert adjusted_rand_score(truth, [assigned[t] for t in texts]) == 1.0
    names = " ".join(c.name for c in clusters)
    assert "refund" in names and "password" in names and ("delivery" in names or "shipping" in names)
    # reviewable and loadable: the nlu.yml round-trips through the Rasa reader
    out = tmp_path / "nlu.yml"
    out.write_text(to_nlu_yaml(clusters))
    assert yaml.safe_load(out.read_text())["version"] == "3.1"
    assert sorted(e.text for e in read_rasa_nlu(out)) == sorted(texts)
    assert "cohesion" in out.read_text()


def test_typical_examples_come_first() -> None:
    # two tight groups on the unit circle plus one outlier per group
    angles = [0.0, 0.02, -0.02, 0.5, 3.0, 3.02, 2.98, 2.5]
    x = np.array([[np.cos(a), np.sin(a)] for a in angles], dtype=np.float32)
    texts = [f"msg {i}" for i in range(len(angles))]
    clusters = discover(texts, lambda ts: x[[texts.index(t) for t in ts]], k=2)
    last_listed = {c.examples[-1] for c in clusters}
    assert last_listed == {"msg 3", "msg 7"}  # the outliers are listed last


def test_read_messages_dedupes_and_reads_each_format(tmp_path: Path) -> None:
    (tmp_path / "m.txt").write_text("hello there\nHello  there\n\nwhere is my parcel\n")
    assert read_messages(tmp_path / "m.txt") == ["hello there", "where is my parcel"]
    (tmp_path / "m.jsonl").write_text('{"messages": [{"author": "agent", "text": "hi"}, '
                                      '{"author": "customer", "text": "my kettle broke"}]}\n')
    assert read_messages(tmp_path / "m.jsonl") == ["my kettle broke"]
    (tmp_path / "m.csv").write_text("text,other\nrefund please,1\n")
    assert read_messages(tmp_path / "m.csv") == ["refund please"]
    with pytest.raises(ValueError, match="use .txt"):
        read_messages(tmp_path / "m.yml")


def test_mapped_accuracy_and_k_range() -> None:
    assert mapped_accuracy(np.array([0, 0, 1, 1]), np.array([5, 5, 7, 7])) == 1.0
    assert mapped_accuracy(np.array([0, 0, 1, 1]), np.array([5, 7, 7, 7])) == 0.75
    ks = k_candidates(3000)
    assert ks == sorted(ks) and ks[0] >= 2 and ks[-1] <= 200 and ks[0] <= 77
