"""Chinese and multilingual quality, each against a baseline in the same run (issue 9).

1. SMP2019-ECDT domain classification (../shared/datasets/smp2019_ecdt): our multilingual intent
   model (`train` mode "multilingual": e5 vectors + character n-grams, logistic regression, the
   same code `supportbot train` runs for Chinese) against character 1–3-gram TF-IDF + linear SVM.
2. Cross-lingual FAQ retrieval on our demo FAQ: our Chinese paraphrases
   (benchmarks/data/faq_paraphrases_zh.yml) through the product's multilingual index, once as
   shipped (with the FAQ's Chinese translations) and once with every translation removed (purely
   cross-lingual); ablation: the same index without centering the query and without the entry head.
3. English FAQ retrieval on StackFAQ (../shared/datasets/stackfaq, test queries → thread) with
   the multilingual embedder against the English one: what multilingual would cost in English.
   Index: the thread titles, and the titles plus the dev split's rephrasings as phrasings.
4. Turn latency for a Chinese conversation against an English one, through the HTTP API of one
   in-process server (embedded Redis), interleaved so both see the same machine state.

    .venv/bin/python benchmarks/multilingual.py            # all four; results/multilingual.json
    .venv/bin/python benchmarks/multilingual.py --only smp,faq
"""

from __future__ import annotations

import csv
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, arg_parser  # noqa: E402
from retrieval import evaluate  # noqa: E402

from bot.config import TrainSettings  # noqa: E402
from bot.encoders.e5 import E5Embedder  # noqa: E402
from bot.encoders.paths import offline  # noqa: E402
from bot.knowledge.embedder import Embedder, TextEmbedder  # noqa: E402
from bot.knowledge.index import build_index  # noqa: E402
from bot.knowledge.loader import FaqEntry, load_entries  # noqa: E402
from bot.knowledge.ranker import Ranker  # noqa: E402
from bot.knowledge.retriever import KnowledgeBase  # noqa: E402
from bot.nlu.data import Example  # noqa: E402
from bot.stats import percentile  # noqa: E402

console = Console(width=150)
ROOT = Path(__file__).resolve().parent.parent


def read_split(folder: Path, split: str) -> list[Example]:
    with (folder / f"{split}.csv").open(encoding="utf-8", newline="") as fh:
        return [Example(r["text"], r["label"]) for r in csv.DictReader(fh)]


def smp(datasets: Path) -> list[dict]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.metrics import f1_score
    from sklearn.svm import LinearSVC

    from bot.nlu.model import IntentModel
    from bot.nlu.train import train

    folder = datasets / "smp2019_ecdt"
    tr, va, te = (read_split(folder, s) for s in ("train", "val", "test"))
    gold = [e.intent for e in te]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        train(tr, TrainSettings(mode="multilingual"), Path(tmp), val_examples=va)
        seconds = time.perf_counter() - t0
        model = IntentModel.load(Path(tmp), threshold=0.0)
        model.parse(te[0].text)
        pred, times = [], []
        for e in te:
            t1 = time.perf_counter()
            pred.append(model.parse(e.text).intent)
            times.append((time.perf_counter() - t1) * 1000)
    rows.append(_row("ours: e5 + char n-grams, logistic regression", gold, pred, seconds, times, f1_score))
    t0 = time.perf_counter()
    vec = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True).fit([e.text for e in tr])
    svm = LinearSVC(C=1.0).fit(vec.transform([e.text for e in tr]), [e.intent for e in tr])
    seconds = time.perf_counter() - t0
    pred, times = [], []
    for e in te:
        t1 = time.perf_counter()
        pred.append(svm.predict(vec.transform([e.text]))[0])
        times.append((time.perf_counter() - t1) * 1000)
    rows.append(_row("baseline: char 1-3-gram TF-IDF + linear SVM", gold, pred, seconds, times, f1_score))
    return rows


def _row(system: str, gold: list[str], pred: list[str], seconds: float, times: list[float], f1) -> dict:  # type: ignore[no-untyped-def]
    return {"system": system, "test": len(gold),
            "accuracy": round(float(np.mean(np.array(gold) == np.array(pred))), 4),
            "macro_f1": round(float(f1(gold, pred, average="macro", zero_division=0)), 4),
            "train_seconds": round(seconds, 1), "ms_p50": round(percentile(times, 50), 2),
            "ms_p95": round(percentile(times, 95), 2)}


def faq_zh() -> list[dict]:
    """Each paraphrase against two indexes of the same FAQ: as shipped (with its Chinese
    translations) and with every translation removed, so that the second measures the purely
    cross-lingual case (Chinese question, English entry) however much of the FAQ is translated."""
    entries = load_entries(ROOT / "knowledge_base")
    paraphrases = ROOT / "benchmarks" / "data" / "faq_paraphrases_zh.yml"
    doc = yaml.safe_load(paraphrases.read_text(encoding="utf-8"))
    queries = [(q["text"], q["entry"]) for q in doc["queries"]]
    translated = sum("zh" in e.translations for e in entries)
    indexes = {f"as shipped ({translated}/{len(entries)} entries in Chinese)": entries,
               "English only (translations removed)": [e.model_copy(update={"translations": {}})
                                                      for e in entries]}
    embedder = E5Embedder()
    rows = []
    for index, faq in indexes.items():
        with tempfile.TemporaryDirectory() as tmp:
            build_index(faq, embedder, Path(tmp), force=True)
            kb = KnowledgeBase(Path(tmp), embedder)
            for ranking in ("ours: centered + entry head", "ablation: no query centering, no entry head"):
                if ranking.startswith("ablation"):
                    kb.ranker = Ranker({})  # same vectors, no centering of the query, no head
                rows.append({"ranking": ranking, "index": index, **evaluate(kb, queries, "zh")})
    return rows


def stackfaq(datasets: Path) -> list[dict]:
    folder = datasets / "stackfaq"

    def read(name: str) -> list[dict]:
        with (folder / name).open(encoding="utf-8", newline="") as fh:
            return list(csv.DictReader(fh))

    titles: dict[str, str] = {}
    answers: dict[str, str] = {}
    for r in read("faq.csv"):
        thread = r["id"].split("_")[0]
        titles.setdefault(thread, r["question"])
        answers.setdefault(thread, r["answer"])
    dev: dict[str, set[str]] = {}
    for r in read("queries_dev.csv"):
        dev.setdefault(r["faq_id"].split("_")[0], set()).add(r["query"])
    test = sorted({(r["query"], r["faq_id"].split("_")[0]) for r in read("queries_test.csv")})

    def faq(with_dev: bool) -> list[FaqEntry]:
        return [FaqEntry(id=t, question=titles[t], answer=answers[t],
                         alternatives=sorted(dev.get(t, ())) if with_dev else [])
                for t in sorted(titles)]

    embedders: list[tuple[str, TextEmbedder]] = [("all-MiniLM-L6-v2 (English)", Embedder()),
                                                 ("multilingual-e5-small", E5Embedder())]
    rows = []
    for index_name, with_dev in (("titles", False), ("titles + dev rephrasings", True)):
        for name, embedder in embedders:
            with tempfile.TemporaryDirectory() as tmp:
                build_index(faq(with_dev), embedder, Path(tmp), force=True)
                rows.append({"index": index_name, "embedder": name,
                             **evaluate(KnowledgeBase(Path(tmp), embedder), test, "en", timed=300)})
    return rows


ZH_SCRIPT = ["你好", "我的订单到哪了", "KK-204871", "寄到德国运费多少", "可以用支付宝付款吗",
             "水壶收到的时候有裂痕", "我想改收货地址", "KK-482913", "朝阳路88号", "100020", "北京",
             "谢谢 再见"]
EN_SCRIPT = ["hi there", "where is my order?", "KK-204871", "how much is delivery to Germany?",
             "can I pay with paypal", "my kettle arrived with a crack in it", "I want to change my address",
             "KK-482913", "14 Millbrook Lane", "1043 AB", "Harrowgate Vale", "thanks, bye"]


def latency(turns: int) -> list[dict]:
    import uuid

    from turn_latency import running_server

    from bot.config import Settings

    times: dict[str, list[float]] = {"en": [], "zh": []}
    with running_server(Settings()) as client:
        cids = {"en": "", "zh": ""}
        for i in range(-len(EN_SCRIPT), turns):  # the first script of each is warm-up
            for lang, script in (("en", EN_SCRIPT), ("zh", ZH_SCRIPT)):
                if i % len(script) == 0:
                    cids[lang] = f"lat-{lang}-{uuid.uuid4().hex[:8]}"
                t = time.perf_counter()
                r = client.post(f"/api/v1/conversations/{cids[lang]}/messages",
                                json={"text": script[i % len(script)], "message_id": f"m{i}"})
                r.raise_for_status()
                if i >= 0:
                    times[lang].append((time.perf_counter() - t) * 1000)
    en50 = statistics.median(times["en"])
    return [{"language": lang, "turns": len(ts), "p50_ms": round(statistics.median(ts), 2),
             "p95_ms": round(percentile(ts, 95), 2),
             "p50_over_english": round(statistics.median(ts) / en50, 2)} for lang, ts in times.items()]


def show(title: str, rows: list[dict]) -> None:
    if not rows:
        return
    table = Table(title=title)
    for col in rows[0]:
        table.add_column(col)
    for r in rows:
        table.add_row(*(str(v) for v in r.values()))
    console.print(table)


def main() -> None:
    parser = arg_parser(__doc__)
    parser.add_argument("--only", default="smp,faq,stackfaq,latency")
    parser.add_argument("--turns", type=int, default=120)
    args = parser.parse_args()
    offline()
    wanted = set(args.only.split(","))
    path = RESULTS / "multilingual.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    results.pop("note", None)  # of an earlier, hand-copied file
    runs = results.setdefault("runs", {})
    for part in wanted:  # parts are run separately (latency wants a quiet machine): when, how busy
        runs[part] = {"date": time.strftime("%Y-%m-%d %H:%M"), "load_avg_1m": round(os.getloadavg()[0], 2),
                      "cpus": os.cpu_count()}
    if "smp" in wanted:
        results["smp2019_ecdt"] = smp(args.datasets)
        show("SMP2019-ECDT domain classification (test split)", results["smp2019_ecdt"])
    if "faq" in wanted:
        results["faq_zh"] = faq_zh()
        show("Demo FAQ, Chinese paraphrases (multilingual index)", results["faq_zh"])
    if "stackfaq" in wanted:
        results["stackfaq_en"] = stackfaq(args.datasets)
        show("StackFAQ test queries → thread (English)", results["stackfaq_en"])
    if "latency" in wanted:
        results["turn_latency"] = latency(args.turns)
        show("One turn through the HTTP API, Chinese vs English", results["turn_latency"])
    RESULTS.mkdir(exist_ok=True)
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False))
    console.print(f"wrote {path}")


if __name__ == "__main__":
    main()
