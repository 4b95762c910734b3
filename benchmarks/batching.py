"""What micro-batching buys: the intent model and the FAQ search under concurrent customers.

C customers (C = 1, 8, 32 by default) each send messages one after another; every message goes
through the pipeline's model calls exactly as a turn does (`bot.batching.model_calls`: intent
parse, then FAQ search, in the inference pool). The same messages are sent with micro-batching
(`inference_max_batch` 16, the default) and without it (1: one model call per message, the
baseline) in the same run; the table gives messages/s, p50/p95 latency and the speed-up.

Messages are BANKING77 test messages (../shared/datasets/banking77/test.csv): real customer text
of realistic length, against the demo company's model and FAQ (trained if missing).

    .venv/bin/python benchmarks/batching.py --messages 640
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import platform
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, arg_parser  # noqa: E402

from bot.assets import ensure_assets  # noqa: E402
from bot.batching import model_calls  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.encoders.paths import offline  # noqa: E402
from bot.inference import InferencePool  # noqa: E402
from bot.services import load_models  # noqa: E402
from bot.stats import percentile  # noqa: E402

FAQ_K = 3  # hits per search, as the pipeline asks


def read_messages(datasets: Path, n: int) -> list[str]:
    with (datasets / "banking77" / "test.csv").open(newline="") as f:
        texts = [row["text"] for row in csv.DictReader(f)]
    return texts[:n]


async def drive(settings: Settings, models: tuple, texts: list[str], customers: int,
                max_batch: int) -> dict:
    nlu, kb = models
    pool = InferencePool(settings.inference.workers, settings.inference.queue)
    calls = model_calls(pool, nlu, kb, max_batch)
    latencies: list[float] = []
    share = [texts[i::customers] for i in range(customers)]

    async def customer(mine: list[str]) -> None:
        for text in mine:
            t = time.perf_counter()
            await calls.parse(text, "en")
            await calls.search(text, FAQ_K, "en")
            latencies.append((time.perf_counter() - t) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*[customer(mine) for mine in share])
    elapsed = time.perf_counter() - started
    pool.close()
    return {"customers": customers, "max_batch": max_batch, "messages": len(latencies),
            "messages_per_s": round(len(latencies) / elapsed, 1),
            "p50_ms": round(percentile(latencies, 50), 1), "p95_ms": round(percentile(latencies, 95), 1)}


def main() -> None:
    parser = arg_parser(__doc__)
    parser.add_argument("--messages", type=int, default=640)
    parser.add_argument("--customers", default="1,8,32")
    parser.add_argument("--max-batch", type=int, default=16)
    args = parser.parse_args()
    offline()
    settings = Settings()
    ensure_assets(settings)
    models = load_models(settings)
    texts = read_messages(args.datasets, args.messages)
    asyncio.run(drive(settings, models, texts[:32], 4, args.max_batch))  # warm-up: loads, threads
    rows = []
    for customers in [int(c) for c in args.customers.split(",")]:
        base = asyncio.run(drive(settings, models, texts, customers, 1))
        batched = asyncio.run(drive(settings, models, texts, customers, args.max_batch))
        batched["speedup"] = round(batched["messages_per_s"] / base["messages_per_s"], 2)
        rows += [base, batched]
    table = Table(title=f"Intent parse + FAQ search per message, {len(texts)} BANKING77 messages")
    for col in ("customers", "max batch", "messages/s", "p50 ms", "p95 ms", "speed-up"):
        table.add_column(col, justify="right")
    for row in rows:
        table.add_row(str(row["customers"]), str(row["max_batch"]), str(row["messages_per_s"]),
                      str(row["p50_ms"]), str(row["p95_ms"]), str(row.get("speedup", "1 (baseline)")))
    Console().print(table)
    manifest = json.loads((settings.model_dir / "manifest.json").read_text())
    result = {"rows": rows, "messages": len(texts), "model": manifest["mode"],
              "inference_workers": settings.inference.workers,
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                          "load_avg_1m": round(os.getloadavg()[0], 2)}}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "batching.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
