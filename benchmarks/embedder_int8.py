"""The FAQ embedder through ONNX Runtime int8 (`SUPPORTBOT_EMBEDDER_RUNTIME=onnx-int8`) against torch,
in the same run.

Each runtime builds its own index (what `supportbot index` writes under that setting) and encodes
the queries; a third row searches torch's index with int8 queries (how int8 was served before the
index followed the runtime). Reported per data set: Recall@1/5 and MRR@5 through `KnowledgeBase.search_batch`
(the product's ranking, one hit per entry), and the CPU time of encoding one query alone and in
batches of 8 (what micro-batching gives under load), as ratios against torch. One torch thread,
one ONNX Runtime thread: a replica's setting on a 2-core machine.

    .venv/bin/python benchmarks/embedder_int8.py      # about 3 min on 2 cores
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from common import RESULTS, arg_parser
from retrieval import banking_data, demo_data, evaluate
from rich.console import Console
from rich.table import Table

from bot.encoders.paths import display_name, offline
from bot.knowledge.embedder import Embedder, OnnxEmbedder, TextEmbedder
from bot.knowledge.index import build_index
from bot.knowledge.retriever import KnowledgeBase

console = Console()


def cpu_ms_per_query(embedder: TextEmbedder, texts: list[str], batch: int, rounds: int = 3) -> float:
    embedder.encode(texts[:batch])  # warm-up
    chunks = [texts[i:i + batch] for i in range(0, len(texts), batch)]
    start = time.process_time()
    for _ in range(rounds):
        for chunk in chunks:
            embedder.encode(chunk)
    return round((time.process_time() - start) / (rounds * len(texts)) * 1000, 3)


def main() -> None:
    parser = arg_parser(__doc__)
    parser.add_argument("--timing-queries", type=int, default=256)
    args = parser.parse_args()
    offline()
    torch.set_num_threads(1)
    torch_embedder = Embedder()
    with tempfile.TemporaryDirectory() as cache:
        onnx_embedder = OnnxEmbedder(None, Path(cache), threads=1)
        sets = [("demo FAQ (paraphrases)", *demo_data())]
        if (args.datasets / "banking77").is_dir():
            sets.append(("BANKING77 as retrieval", *banking_data(args.datasets)))
        else:
            console.print(f"[yellow]{args.datasets}: no banking77, skipping it[/yellow]")
        rows = []
        for name, entries, queries in sets:
            texts = [q for q, _ in queries]
            ref = torch_embedder.encode(texts)
            cos = np.sum(ref * onnx_embedder.encode(texts), axis=1)
            with tempfile.TemporaryDirectory() as tmp:
                indexes = {"torch": Path(tmp) / "torch", "onnx_int8": Path(tmp) / "int8"}
                build_index(entries, torch_embedder, indexes["torch"], force=True)
                build_index(entries, onnx_embedder, indexes["onnx_int8"], force=True)
                row: dict = {"data": name, "entries": len(entries), "queries": len(queries),
                             "cosine_to_torch_min": round(float(cos.min()), 4),
                             "cosine_to_torch_mean": round(float(cos.mean()), 4)}
                timing = texts[:args.timing_queries]
                # (row key, the index's embedder, the queries' embedder)
                for label, built, embedder in (("torch", "torch", torch_embedder),
                                               ("onnx_int8_torch_index", "torch", onnx_embedder),
                                               ("onnx_int8", "onnx_int8", onnx_embedder)):
                    quality = evaluate(KnowledgeBase(indexes[built], embedder), queries, timed=0)
                    row[label] = {k: quality[k] for k in ("recall_at_1", "recall_at_5", "mrr_at_5")}
                    if label != "onnx_int8_torch_index":  # the same query encoder as the next row
                        row[label]["cpu_ms_batch_1"] = cpu_ms_per_query(embedder, timing, 1)
                        row[label]["cpu_ms_batch_8"] = cpu_ms_per_query(embedder, timing, 8)
            for batch in (1, 8):
                key = f"cpu_ms_batch_{batch}"
                row[f"cpu_ratio_batch_{batch}"] = round(row["onnx_int8"][key] / row["torch"][key], 3)
            for label in ("onnx_int8", "onnx_int8_torch_index"):
                row[f"{label}_recall_at_1_change_points"] = round(
                    (row[label]["recall_at_1"] - row["torch"]["recall_at_1"]) * 100, 2)
            console.print(row)
            rows.append(row)
    show(rows)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "embedder_int8.json"
    out.write_text(json.dumps({"benchmark": "embedder_int8", "embedder": display_name(torch_embedder.path),
                               "threads": 1, "index": "flat, built with the embedder named by each "
                               "row (onnx_int8_torch_index: torch's index, int8 queries)",
                               "sets": rows}, indent=2))
    console.print(f"wrote {out}")


def show(rows: list[dict]) -> None:
    table = Table(title="FAQ embedder: ONNX int8 against torch (same run)")
    for col in ("data", "queries", "R@1 torch", "R@1 int8", "R@1 int8, torch index", "R@5 torch",
                "R@5 int8", "min cos", "CPU ratio b=1", "CPU ratio b=8"):
        table.add_column(col, justify="left" if col == "data" else "right")
    for r in rows:
        t, o, mixed = r["torch"], r["onnx_int8"], r["onnx_int8_torch_index"]
        table.add_row(r["data"], str(r["queries"]), f"{t['recall_at_1'] * 100:.1f}",
                      f"{o['recall_at_1'] * 100:.1f}", f"{mixed['recall_at_1'] * 100:.1f}",
                      f"{t['recall_at_5'] * 100:.1f}", f"{o['recall_at_5'] * 100:.1f}",
                      f"{r['cosine_to_torch_min']:.3f}", f"{r['cpu_ratio_batch_1']:.2f}x",
                      f"{r['cpu_ratio_batch_8']:.2f}x")
    console.print(table)


if __name__ == "__main__":
    main()
