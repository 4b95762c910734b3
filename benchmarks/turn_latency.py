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
import os
import platform
import re
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import uvicorn
from common import quietly
from rich.console import Console
from rich.table import Table
from variants import with_recipe

from bot.assets import ensure_assets
from bot.config import Settings
from bot.encoders.paths import offline
from bot.stats import percentile
from bot.web.app import create_app
from bot.web.ownership import TOKEN_HEADER

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


# Every round says each step in other words: the intent model and the FAQ embedder share one pass
# per message and remember the last few hundred messages, so a script repeated word for word would
# measure that memory instead of the models. Fillers keep the meaning; form values change.
FILLERS = ["", "so ", "um ", "well ", "hmm ", "erm ", "ok so ", "right, ", "anyway, ", "uh ", "hm, ", "so, ",
           "well, ", "um, ", "erm, ", "ok, ", "uhm ", "oh ", "and ", "also "]
# the demo's orders (training_data/demo_orders.csv)
ORDERS = ["KK-100245", "KK-204871", "KK-318802", "KK-482913", "KK-557120", "KK-660731", "KK-771406"]
ORDER_PREFIXES = ["", "it's ", "order ", "my order number is ", "the number is ", "sure, ", "here: ",
                  "ok it's ", "number "]
ZH_FILLERS = ["", "嗯，", "那个，", "请问", "好的，", "哦，", "对了，", "嗯嗯，", "麻烦问下，", "你好，",
              "好，", "呃，", "然后，", "还有，", "是这样，", "嗯 ", "那个 ", "哦 ", "好的 ", "对了 "]
ZH_ORDER_PREFIXES = ["", "订单号是", "是", "我的订单号是", "单号", "好的，", "订单", "号码是", "嗯，是"]
ORDER = re.compile(r"^KK-\d{6}$")
NUMBERED = re.compile(r"^(\d+)(\D.*)?$")
HAN = re.compile(r"[\u4e00-\u9fff]")  # a script with Chinese in it gets Chinese fillers


def reworded(text: str, round_: int, step: int, chinese: bool = False) -> str:
    """`text` as round `round_` of the script says it (round 0: as written)."""
    if round_ == 0:
        return text
    if ORDER.match(text):
        prefixes = ZH_ORDER_PREFIXES if chinese else ORDER_PREFIXES
        return prefixes[round_ % len(prefixes)] + ORDERS[(round_ + step) % len(ORDERS)]
    if m := NUMBERED.match(text):  # a street number or a postcode
        return f"{int(m.group(1)) + round_}{m.group(2) or ''}"
    fillers = ZH_FILLERS if chinese else FILLERS
    return fillers[round_ % len(fillers)] + text


CHINESE_SCRIPT = [
    "你好", "我的订单在哪里？", "KK-204871", "寄到德国的运费是多少？", "可以用PayPal付款吗",
    "我的水壶到货时有裂缝", "我想修改收货地址", "KK-482913", "北京市朝阳区建国路88号", "100022", "北京",
    "谢谢，再见",
]
# name: (settings changed, script). The first row is the default; the others are compared with it.
TORCH = {"models.nlu_runtime": "torch", "models.embedder_runtime": "torch"}
SETUPS: dict[str, tuple[dict, list[str]]] = {
    "default (one shared ONNX int8 graph)": ({}, SCRIPT),
    "torch, one shared pass (the default before int8)": (TORCH, SCRIPT),
    "torch, two encoder passes": ({**TORCH, "models.share_encoder": False}, SCRIPT),
    "Chinese messages (default)": ({}, CHINESE_SCRIPT),
}
DEFAULT = next(iter(SETUPS))


def measure(settings: Settings, script: list[str], turns: int) -> dict:
    """`turns` turns of `script` against a fresh server, with GET /healthz after each (the floor)."""
    with running_server(settings) as client:
        def start() -> tuple[str, dict[str, str]]:
            """A conversation of the benchmark's own (the API's ids are the server's, with a token)."""
            created = client.post("/api/v1/conversations").json()
            return created["conversation_id"], {TOKEN_HEADER: created["conversation_token"]}

        for _ in range(10):  # warm-up
            cid, owner = start()
            client.post(f"/api/v1/conversations/{cid}/messages", json={"text": script[0]}, headers=owner)
        times, floor = [], []
        chinese = any(HAN.search(t) for t in script)
        for i in range(turns):
            if i % len(script) == 0:
                cid, owner = start()
            text = reworded(script[i % len(script)], i // len(script), i % len(script), chinese)
            t = time.perf_counter()
            r = client.post(f"/api/v1/conversations/{cid}/messages",
                            json={"text": text, "message_id": f"m{i}"}, headers=owner)
            times.append((time.perf_counter() - t) * 1000)
            assert r.status_code == 200, r.text
            t = time.perf_counter()
            client.get("/healthz")
            floor.append((time.perf_counter() - t) * 1000)
    return {"turn_ms": {"p50": round(percentile(times, 50), 2), "p95": round(percentile(times, 95), 2),
                        "mean": round(statistics.fmean(times), 2)},
            "healthz_ms": {"p50": round(percentile(floor, 50), 2), "p95": round(percentile(floor, 95), 2)}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--only", action="append", choices=sorted(SETUPS))
    parser.add_argument("--attempts", type=int, default=3, help="runs of a row while the machine was busy")
    args = parser.parse_args()
    offline()
    settings = Settings()
    ensure_assets(settings)
    rows: dict[str, dict] = {}
    for name in args.only or list(SETUPS):
        changes, script = SETUPS[name]
        variant = with_recipe(settings, changes)
        row, load = quietly(lambda: measure(variant, script, args.turns), args.attempts)  # noqa: B023
        rows[name] = {**row, **load}
    base = rows.get(DEFAULT)
    for name, row in rows.items():
        if base is not None and name != DEFAULT:
            row["p50_over_default"] = round(row["turn_ms"]["p50"] / base["turn_ms"]["p50"], 2)
    result = {
        "turns": args.turns, "rows": rows,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "redis": "external" if settings.redis.dsn else "embedded",
        "model": {k: v for k, v in json.loads((settings.model_dir / "manifest.json").read_text()).items()
                  if k in ("mode", "frozen_layers", "base_model")},
    }
    table = Table(title=f"One turn through POST /api/v1/conversations/{{id}}/messages ({args.turns} turns)")
    for col in ("setup", "p50 ms", "p95 ms", "/ default p50", "healthz p50 ms", "load before → after",
                "busy"):
        table.add_column(col)
    for name, row in rows.items():
        table.add_row(name, str(row["turn_ms"]["p50"]), str(row["turn_ms"]["p95"]),
                      str(row.get("p50_over_default", "")), str(row["healthz_ms"]["p50"]),
                      f"{row['load_before'][0]} → {row['load_after'][0]}", "yes" if row["busy"] else "no")
    Console().print(table)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "turn_latency.json").write_text(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
