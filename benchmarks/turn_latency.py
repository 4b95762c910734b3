"""Median and p95 time of one conversation turn through the HTTP API (non-generative path).

Starts `supportbot serve`'s app in-process on a free loopback port (embedded Redis unless
SUPPORTBOT_REDIS_URL is set), sends N turns from a fixed script of customer messages over real
HTTP, and compares against GET /healthz on the same server in the same run (the HTTP floor), so
the ratio says what the turn itself costs. Writes benchmarks/results/turn_latency.json.

    .venv/bin/python benchmarks/turn_latency.py --turns 200
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import socket
import statistics
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import uvicorn
from rich.console import Console
from rich.table import Table

from bot.assets import ensure_assets
from bot.config import Settings
from bot.encoders.paths import offline
from bot.stats import percentile
from bot.web.app import create_app

RESULTS = Path(__file__).parent / "results"
SCRIPT = [
    "hi there", "where is my order?", "KK-204871", "how much is delivery to Germany?",
    "can I pay with paypal", "my kettle arrived with a crack in it", "I want to change my address",
    "KK-482913", "14 Millbrook Lane", "1043 AB", "Harrowgate Vale", "thanks, bye",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_server(settings: Settings, ready_within_s: float = 300) -> Iterator[httpx.Client]:
    """`supportbot serve`'s app in a thread on a free loopback port (assets built first), and a
    client for it once /readyz answers 200; the server stops on exit."""
    ensure_assets(settings)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            deadline = time.monotonic() + ready_within_s
            while time.monotonic() < deadline:
                try:
                    if client.get("/readyz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
            yield client
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--turns", type=int, default=200)
    args = parser.parse_args()
    offline()
    settings = Settings()
    with running_server(settings) as client:
        for _ in range(10):  # warm-up
            warm = f"/api/v1/conversations/warm-{uuid.uuid4().hex[:6]}/messages"
            client.post(warm, json={"text": "hello"})
        turns, floor = [], []
        cid = f"bench-{uuid.uuid4().hex[:8]}"
        for i in range(args.turns):
            if i % len(SCRIPT) == 0:
                cid = f"bench-{uuid.uuid4().hex[:8]}"
            t = time.perf_counter()
            r = client.post(f"/api/v1/conversations/{cid}/messages",
                            json={"text": SCRIPT[i % len(SCRIPT)], "message_id": f"m{i}"})
            turns.append((time.perf_counter() - t) * 1000)
            assert r.status_code == 200, r.text
            t = time.perf_counter()
            client.get("/healthz")
            floor.append((time.perf_counter() - t) * 1000)

    result = {
        "turns": args.turns,
        "turn_ms": {"p50": round(percentile(turns, 50), 2), "p95": round(percentile(turns, 95), 2),
                    "mean": round(statistics.fmean(turns), 2)},
        "healthz_ms": {"p50": round(percentile(floor, 50), 2), "p95": round(percentile(floor, 95), 2)},
        "turn_over_healthz_p50": round(percentile(turns, 50) / percentile(floor, 50), 1),
        "machine": {"cpus": __import__("os").cpu_count(), "python": platform.python_version()},
        "redis": "external" if settings.redis.dsn else "embedded",
        "model": json.loads((settings.model_dir / "manifest.json").read_text())["mode"],
    }
    table = Table(title=f"One turn through POST /api/v1/conversations/{{id}}/messages ({args.turns} turns)")
    for col in ("what", "p50 ms", "p95 ms"):
        table.add_column(col)
    table.add_row("turn (NLU + FAQ search + policy + Redis + transcript)",
                  str(result["turn_ms"]["p50"]), str(result["turn_ms"]["p95"]))
    floor_ms = result["healthz_ms"]
    table.add_row("baseline: GET /healthz", str(floor_ms["p50"]), str(floor_ms["p95"]))
    Console().print(table)
    Console().print(f"turn / healthz (p50): {result['turn_over_healthz_p50']}x")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "turn_latency.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
