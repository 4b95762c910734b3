"""Load and fault benchmark: two `supportbot serve` replicas, one Redis (AOF), PostgreSQL, on loopback.

Starts a dedicated redis-server (`--appendonly yes --appendfsync everysec`, own port and temp dir), a
temporary PostgreSQL database (SQLite with a note in the results when PostgreSQL is unreachable) and
two replicas sharing one data dir (the model is trained / the FAQ indexed once, before they start).
N simulated customers (asyncio + aiohttp) hold scripted multi-turn conversations drawn from a seeded
mix (FAQ questions, the order-status form, the address-change form, a hand-off): each sends its
next message only after the reply to the previous one, with message ids m0, m1, ... per
conversation. A small client-side round-robin balancer retries a failed request (connection refused
or reset, 429/502/503/504) on the other replica with the SAME message id, so the server's
per-message dedupe makes the reply exactly-once.

Run 1, throughput (after a warm-up that is not counted): turns/s, p50/p95/p99 turn latency, error
rate, against the goals (>= 300 turns/s, p95 <= 40 ms at 50 customers), and GET /healthz through the
same client and replicas as the HTTP floor. Run 2, faults: at 1/3 of it Redis is SHUTDOWN and started
again (the AOF reloads), at 2/3 one replica is killed with SIGKILL and started again; customers
keep going. Afterwards every conversation is checked from the client's own log, from the server's
stored history (GET /api/v1/conversations/{id}) and by re-sending messages with their ids: lost,
duplicated and out-of-order replies (goal 0, 0, 0), the longest stall a customer saw, and how many
requests needed a retry. Writes benchmarks/results/load.json.

Generation is off (the non-generative path) and the rate limits are disabled for the run (one
client address sends every customer's messages); both are written into the results.

    .venv/bin/python benchmarks/load.py                                   # 50 customers, 60 s + 60 s
    nice -n 10 .venv/bin/python benchmarks/load.py --customers 5 --duration 10 --fault-duration 20 \\
        --out /tmp/load-smoke.json                                        # a quick smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import json
import os
import platform
import random
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from cluster import REDIS_SERVER, LocalCluster, cpu_seconds
from common import RESULTS
from rich.console import Console
from rich.table import Table

from bot.config import Settings
from bot.stats import percentile
from bot.web.ownership import TOKEN_HEADER

# Conversations of the demo company (Kettle & Kin). Texts are unique within a script: the history
# check maps the server's stored user messages back to the client's by text.
SCRIPTS: dict[str, list[str]] = {
    "faq": ["hi there", "how do I descale my kettle?", "which products are dishwasher safe?",
            "how much is delivery to Germany?", "thanks, bye"],
    "faq_more": ["hello", "can I pay with paypal", "what are your customer service opening hours?",
                 "how do I season a cast iron pan", "great, thank you"],
    "order_status": ["where is my order?", "KK-204871", "thanks, bye"],
    "order_status_invalid_first": ["has my parcel shipped yet?", "it's 55512", "sorry, KK-318802",
                                   "ok thanks"],
    "change_address": ["I want to change my address", "KK-482913", "14 Millbrook Lane", "1043 AB",
                       "Harrowgate Vale", "thanks, bye"],
    "handoff": ["my kettle arrived with a crack in it", "I want to talk to a person",
                "it leaks all over the counter, please call me back"],
}
MIX = {"faq": 3, "faq_more": 2, "order_status": 2, "order_status_invalid_first": 1, "change_address": 2,
       "handoff": 1}
GOALS = {"turns_per_s": 300.0, "p95_ms": 40.0, "customers": 50}
RETRY_STATUS = {429, 502, 503, 504}
console = Console()


# ---- the client -----------------------------------------------------------------------------
@dataclass
class Answer:
    """What the checks read of an HTTP answer (the body is read before the connection is reused)."""

    status_code: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Outcome:
    response: Answer | None
    attempts: int
    failures: list[str]
    elapsed_ms: float


class Balancer:
    """Round robin over the replicas. A transport error marks a replica down for `down_s` (what a
    proxy's passive health check does) and the request goes to the next one at once; 429/5xx-busy
    answers are retried with backoff; the caller's body (and so its message id) never changes."""

    def __init__(self, client: aiohttp.ClientSession, urls: list[str], deadline_s: float,
                 down_s: float = 1.0) -> None:
        self.client, self.urls, self.deadline_s, self.down_s = client, urls, deadline_s, down_s
        self.down_until = [0.0] * len(urls)
        self.next = 0

    def pick(self, avoid: int | None) -> int:
        now = time.monotonic()
        order = [(self.next + i) % len(self.urls) for i in range(len(self.urls))]
        self.next = (self.next + 1) % len(self.urls)
        for idx in order:
            if idx != avoid and self.down_until[idx] <= now:
                return idx
        return next((i for i in order if i != avoid), order[0])  # all down: keep probing

    async def call(self, method: str, path: str, body: dict | None = None,
                   headers: dict[str, str] | None = None) -> Outcome:
        start = time.monotonic()
        failures: list[str] = []
        attempts, last = 0, None
        while True:
            idx = self.pick(last)
            attempts += 1
            delay = 0.0
            try:
                async with self.client.request(method, self.urls[idx] + path, json=body,
                                               headers=headers) as resp:
                    r = Answer(resp.status, resp.headers, await resp.read())
            except (TimeoutError, aiohttp.ClientError) as exc:
                failures.append(f"{idx}:{type(exc).__name__}")
                self.down_until[idx] = time.monotonic() + self.down_s
                delay = 0.0 if len(failures) == 1 else min(0.05 * 2 ** len(failures), 1.0)
            else:
                if r.status_code not in RETRY_STATUS:
                    return Outcome(r, attempts, failures, (time.monotonic() - start) * 1000)
                failures.append(f"{idx}:{r.status_code}")
                retry_after = r.headers.get("retry-after", "")
                delay = min(float(retry_after) if retry_after.isdigit() else 0.1 * len(failures), 1.0)
            last = idx
            if time.monotonic() - start + delay > self.deadline_s:
                return Outcome(None, attempts, failures, (time.monotonic() - start) * 1000)
            await asyncio.sleep(delay)


@dataclass
class TurnLog:
    index: int
    message_id: str
    text: str
    sent_at: float  # seconds since the run started
    latency_ms: float = 0.0
    status: int = 0  # 0: no answer after every retry
    attempts: int = 0
    failures: list[str] = field(default_factory=list)
    replies: list[str] | None = None
    reply_message_id: str | None = None


@dataclass
class ConvLog:
    id: str  # the server's, once POST /api/v1/conversations answered
    script: str
    customer: int
    turns: list[TurnLog] = field(default_factory=list)
    token: str = ""  # the conversation's owner token (TOKEN_HEADER): nobody else reads or writes it
    created: bool = False

    @property
    def owner(self) -> dict[str, str]:
        return {TOKEN_HEADER: self.token}


async def start_conversation(balancer: Balancer, conv: ConvLog) -> bool:
    """The server assigns the id and the owner token, as the widget gets them."""
    out = await balancer.call("POST", "/api/v1/conversations", {})
    if out.response is None or out.response.status_code != 201:
        return False
    body = out.response.json()
    conv.id, conv.token, conv.created = body["conversation_id"], body["conversation_token"], True
    return True


async def customer(n: int, balancer: Balancer, rng: random.Random, start: float, stop_at: float,
                   tag: str, think_s: float, log: list[ConvLog]) -> None:
    names, weights = list(MIX), list(MIX.values())
    k = 0
    while time.monotonic() < stop_at:
        script = rng.choices(names, weights)[0]
        conv = ConvLog(f"{tag}-c{n}-{k}", script, n)
        log.append(conv)
        k += 1
        if not await start_conversation(balancer, conv):
            continue  # counted as not created; the balancer already retried
        for i, text in enumerate(SCRIPTS[script]):
            if time.monotonic() >= stop_at:
                break
            turn = TurnLog(i, f"m{i}", text, time.monotonic() - start)
            conv.turns.append(turn)
            out = await balancer.call("POST", f"/api/v1/conversations/{conv.id}/messages",
                                      {"text": text, "message_id": turn.message_id}, conv.owner)
            turn.latency_ms, turn.attempts, turn.failures = out.elapsed_ms, out.attempts, out.failures
            if out.response is not None:
                turn.status = out.response.status_code
                if out.response.status_code == 200:
                    data = out.response.json()
                    turn.replies = [r["text"] for r in data["replies"]]
                    turn.reply_message_id = data.get("message_id")
            if think_s:
                await asyncio.sleep(think_s)


async def drive(balancer: Balancer, customers: int, seconds: float, seed: int, tag: str,
                think_s: float) -> tuple[list[ConvLog], float]:
    """All customers for `seconds`; each finishes the message it is waiting on. The log and the
    run's start (monotonic)."""
    log: list[ConvLog] = []
    start = time.monotonic()
    await asyncio.gather(*(customer(n, balancer, random.Random(f"{seed}-{tag}-{n}"), start,
                                    start + seconds, tag, think_s, log) for n in range(customers)))
    return log, start


async def healthz_floor(balancer: Balancer, workers: int, seconds: float) -> list[float]:
    latencies: list[float] = []
    stop_at = time.monotonic() + seconds

    async def worker() -> None:
        while time.monotonic() < stop_at:
            t = time.perf_counter()
            out = await balancer.call("GET", "/healthz")
            if out.response is not None and out.response.status_code == 200:
                latencies.append((time.perf_counter() - t) * 1000)

    await asyncio.gather(*(worker() for _ in range(workers)))
    return latencies


# ---- verification ---------------------------------------------------------------------------
MISSING = "missing"  # GET answered 404: the server has no such conversation
UNREADABLE = "unreadable"  # GET failed after every retry: nothing can be said


def _lis_keep(positions: list[int]) -> set[int]:
    """Indices (into `positions`) of one longest strictly increasing subsequence."""
    n = len(positions)
    best, prev = [1] * n, [-1] * n
    for i in range(n):
        for j in range(i):
            if positions[j] < positions[i] and best[j] + 1 > best[i]:
                best[i], prev[i] = best[j] + 1, j
    keep: set[int] = set()
    i = max(range(n), key=lambda x: best[x]) if n else -1
    while i >= 0:
        keep.add(i)
        i = prev[i]
    return keep


def verify(convs: list[ConvLog], histories: dict[str, list[dict] | str],
           replays: dict[tuple[str, str], list[str] | None], history_limit: int) -> dict:
    """Every message sent got exactly one reply set, in order. Counts messages (a message with
    several problems of one kind counts once) and lists the first problems found."""
    lost: set[tuple[str, str]] = set()
    duplicated: set[tuple[str, str]] = set()
    out_of_order: set[tuple[str, str]] = set()
    unverifiable = 0
    problems: list[dict] = []

    def flag(bucket: set, conv: ConvLog, turn: TurnLog, why: str) -> None:
        bucket.add((conv.id, turn.message_id))
        if len(problems) < 50:
            problems.append({"conversation": conv.id, "message_id": turn.message_id, "text": turn.text,
                             "problem": why})

    for conv in convs:
        for turn in conv.turns:  # the client's own log
            if turn.replies is None:
                flag(lost, conv, turn, f"no reply after {turn.attempts} attempts (last status "
                                       f"{turn.status or 'none'}, {turn.failures[-3:]})")
            elif turn.reply_message_id != turn.message_id:
                flag(out_of_order, conv, turn, f"reply is for message {turn.reply_message_id}")
        history = histories.get(conv.id, UNREADABLE)
        if history == UNREADABLE:
            unverifiable += 1
            continue
        if history == MISSING:
            for turn in conv.turns:
                if turn.replies is not None:
                    flag(lost, conv, turn, "answered, but the server has no such conversation")
            continue
        assert isinstance(history, list)
        blocks: list[tuple[str, list[str]]] = []  # (user text, bot texts after it)
        for event in history:
            if event.get("role") == "user":
                blocks.append((event.get("text", ""), []))
            elif event.get("role") == "bot" and blocks:
                blocks[-1][1].append(event.get("text", ""))
        trimmed = len(history) >= history_limit
        where: dict[str, list[int]] = defaultdict(list)
        for pos, (text, _) in enumerate(blocks):
            where[text].append(pos)
        placed: list[tuple[TurnLog, int]] = []
        for turn in conv.turns:
            found = where.get(turn.text, [])
            if not found:
                if not trimmed:
                    flag(lost, conv, turn, "not in the server's stored history")
                continue
            if len(found) > 1:
                flag(duplicated, conv, turn, f"in the server's history {len(found)} times")
            placed.append((turn, found[0]))
            stored = blocks[found[0]][1]
            if turn.replies is not None and stored != turn.replies:
                flag(duplicated, conv, turn, f"answered differently: client got {turn.replies!r}, "
                                             f"history has {stored!r}")
        keep = _lis_keep([pos for _, pos in placed])
        for i, (turn, pos) in enumerate(placed):
            if i not in keep:
                flag(out_of_order, conv, turn, f"stored at position {pos}, out of send order")
        sent = {t.text for t in conv.turns}
        for text, _ in blocks:
            if text not in sent and len(problems) < 50:
                problems.append({"conversation": conv.id, "text": text,
                                 "problem": "a user message in the history that was never sent"})
    by_id = {(c.id, t.message_id): (c, t) for c in convs for t in c.turns}
    for key, replies in replays.items():
        conv, turn = by_id[key]
        if replies is None:
            if len(problems) < 50:
                problems.append({"conversation": conv.id, "message_id": turn.message_id,
                                 "problem": "re-sending the message id got no answer"})
        elif replies != turn.replies:
            flag(duplicated, conv, turn, f"re-sent with its id, answered again differently: {replies!r}")
    return {"messages": sum(len(c.turns) for c in convs), "conversations": len(convs),
            "lost": len(lost), "duplicated": len(duplicated), "out_of_order": len(out_of_order),
            "conversations_unverifiable": unverifiable, "replayed": len(replays),
            "problems": problems}


def self_check(convs: list[ConvLog], histories: dict[str, list[dict] | str],
               replays: dict[tuple[str, str], list[str] | None], history_limit: int) -> dict[str, bool]:
    """Plant one lost reply, one duplicated message and one swapped pair into copies of this run's
    data and check that `verify` counts each: a checker that cannot fail proves nothing."""
    base = verify(convs, histories, replays, history_limit)
    target = next((c for c in convs if len(c.turns) >= 2 and isinstance(histories.get(c.id), list)
                   and all(t.replies is not None for t in c.turns[:2])), None)
    if target is None:
        return {}
    i = convs.index(target)

    def run(conv: ConvLog, history: list[dict]) -> dict:
        return verify(convs[:i] + [conv] + convs[i + 1:], {**histories, conv.id: history}, replays,
                      history_limit)

    history = histories[target.id]
    assert isinstance(history, list)
    lost_conv = copy.deepcopy(target)
    lost_conv.turns[1].replies, lost_conv.turns[1].status = None, 0
    users = [n for n, e in enumerate(history) if e.get("role") == "user"]
    bounds = users + [len(history)]
    blocks = [history[bounds[k]:bounds[k + 1]] for k in range(len(users))]
    duplicated = history + copy.deepcopy(blocks[0])
    swapped = history[:users[0]] + [e for b in [blocks[1], blocks[0], *blocks[2:]] for e in b]
    return {
        "lost reply detected": run(lost_conv, history)["lost"] == base["lost"] + 1,
        "duplicated message detected": run(target, duplicated)["duplicated"] == base["duplicated"] + 1,
        "out-of-order history detected": run(target, swapped)["out_of_order"] > base["out_of_order"],
    }


async def check_run(balancer: Balancer, convs: list[ConvLog], replay_sample: int, seed: int,
                    history_limit: int) -> dict:
    """Re-send retried messages and a seeded sample with their ids, then read every conversation
    back; the replay comes first so that a message the server answers twice shows in the history."""
    sem = asyncio.Semaphore(16)
    answered = [(c, t) for c in convs for t in c.turns if t.replies is not None]
    retried = [(c, t) for c, t in answered if t.failures]
    others = [(c, t) for c, t in answered if not t.failures]
    sample = retried + random.Random(seed).sample(others, min(replay_sample, len(others)))
    replays: dict[tuple[str, str], list[str] | None] = {}
    histories: dict[str, list[dict] | str] = {}

    async def replay(conv: ConvLog, turn: TurnLog) -> None:
        async with sem:
            out = await balancer.call("POST", f"/api/v1/conversations/{conv.id}/messages",
                                      {"text": turn.text, "message_id": turn.message_id}, conv.owner)
        ok = out.response is not None and out.response.status_code == 200
        replays[(conv.id, turn.message_id)] = (
            [r["text"] for r in out.response.json()["replies"]] if ok and out.response else None)

    async def read(conv: ConvLog) -> None:
        async with sem:
            out = await balancer.call("GET", f"/api/v1/conversations/{conv.id}", headers=conv.owner)
        if out.response is not None and out.response.status_code == 200:
            histories[conv.id] = out.response.json()["history"]
        elif out.response is not None and out.response.status_code == 404:
            histories[conv.id] = MISSING
        else:
            histories[conv.id] = UNREADABLE

    await asyncio.gather(*(replay(c, t) for c, t in sample))
    await asyncio.gather(*(read(c) for c in convs if c.turns))
    not_created = sum(not c.created for c in convs)
    convs = [c for c in convs if c.turns]
    result = verify(convs, histories, replays, history_limit)
    result["conversations_not_created"] = not_created
    result["verifier_self_check"] = self_check(convs, histories, replays, history_limit)
    return result


# ---- summaries ------------------------------------------------------------------------------
def latency(values: list[float]) -> dict[str, float]:
    return {"p50": round(percentile(values, 50), 2), "p95": round(percentile(values, 95), 2),
            "p99": round(percentile(values, 99), 2), "max": round(max(values, default=0.0), 2),
            "mean": round(sum(values) / len(values), 2) if values else 0.0}


def turn_stats(turns: list[TurnLog], seconds: float) -> dict:
    ok = [t for t in turns if t.status == 200]
    statuses = Counter(str(t.status or "no answer") for t in turns if t.status != 200)
    return {"turns": len(turns), "seconds": round(seconds, 2),
            "turns_per_s": round(len(turns) / seconds, 2) if seconds else 0.0,
            "latency_ms": latency([t.latency_ms for t in ok]),
            "errors": len(turns) - len(ok), "error_rate": round((len(turns) - len(ok)) / len(turns), 5)
            if turns else 0.0, "error_statuses": dict(statuses),
            "requests_retried": sum(1 for t in turns if t.failures),
            "retry_reasons": dict(Counter(f.split(":", 1)[1] for t in turns for f in t.failures))}


def by_script(convs: list[ConvLog], lo: float, hi: float) -> dict[str, dict]:
    out: dict[str, list[float]] = defaultdict(list)
    for c in convs:
        out[c.script] += [t.latency_ms for t in c.turns if lo <= t.sent_at < hi and t.status == 200]
    return {k: {"turns": len(v), **{q: round(percentile(v, p), 1) for q, p in (("p50", 50), ("p95", 95))}}
            for k, v in sorted(out.items())}


class CpuMeter:
    """CPU seconds per process (replicas, redis, this client) over a window, as % of one core."""

    def __init__(self, cluster: LocalCluster) -> None:
        self.cluster = cluster
        self.t0 = 0.0
        self.start: dict[str, float] = {}

    def begin(self) -> None:
        self.t0 = time.monotonic()
        self.start = {name: cpu_seconds(pid) for name, pid in self.cluster.pids().items()}
        self.start["load client"] = time.process_time()

    def end(self) -> dict[str, float]:
        wall = time.monotonic() - self.t0
        now = {name: cpu_seconds(pid) for name, pid in self.cluster.pids().items()}
        now["load client"] = time.process_time()
        return {name: round(100 * (now[name] - self.start[name]) / wall, 1)
                for name in now if name in self.start and wall > 0}


def server_log_summary(cluster: LocalCluster) -> dict:
    """Warnings and errors the replicas logged (JSON lines), with the most frequent messages."""
    levels: Counter[str] = Counter()
    messages: Counter[str] = Counter()
    for node in cluster.nodes:
        with contextlib.suppress(FileNotFoundError), node.log.open(errors="replace") as fh:
            for line in fh:
                if not line.startswith("{"):
                    continue
                with contextlib.suppress(json.JSONDecodeError):
                    rec = json.loads(line)
                    if rec.get("level") in ("warning", "error", "critical"):
                        levels[rec["level"]] += 1
                        messages[f"{rec['level']}: {str(rec.get('msg'))[:120]}"] += 1
    return {"by_level": dict(levels), "top": dict(messages.most_common(8))}


# ---- the runs -------------------------------------------------------------------------------
def keep_log(cluster: LocalCluster, args: argparse.Namespace, convs: list[ConvLog], name: str) -> None:
    """With --keep, the per-turn client log beside the server logs, one conversation a line."""
    if args.keep:
        with (cluster.tmp / f"{name}-turns.jsonl").open("w") as fh:
            for conv in convs:
                fh.write(json.dumps(asdict(conv)) + "\n")


async def throughput_run(cluster: LocalCluster, balancer: Balancer, args: argparse.Namespace) -> dict:
    meter = CpuMeter(cluster)
    loop = asyncio.get_running_loop()
    loop.call_later(args.warmup, meter.begin)
    cpu: dict[str, float] = {}
    loop.call_later(args.warmup + args.duration, lambda: cpu.update(meter.end()))
    convs, _ = await drive(balancer, args.customers, args.warmup + args.duration, args.seed, "t",
                           args.think_ms / 1000)
    keep_log(cluster, args, convs, "throughput")
    lo, hi = args.warmup, args.warmup + args.duration
    measured = [t for c in convs for t in c.turns if lo <= t.sent_at < hi]
    result = turn_stats(measured, args.duration)
    result["by_script"] = by_script(convs, lo, hi)
    result["cpu_percent_of_one_core"] = cpu
    meter.begin()
    floor = await healthz_floor(balancer, args.customers, args.baseline_duration)
    result["baseline_healthz"] = {"requests": len(floor),
                                  "requests_per_s": round(len(floor) / args.baseline_duration, 1),
                                  "latency_ms": latency(floor), "cpu_percent_of_one_core": meter.end()}
    base_p50 = result["baseline_healthz"]["latency_ms"]["p50"]
    result["turn_over_healthz_p50"] = round(result["latency_ms"]["p50"] / base_p50, 1) if base_p50 else None
    result["longest_stall_ms"] = round(max((t.latency_ms for c in convs for t in c.turns), default=0), 1)
    result["check"] = await check_run(balancer, convs, args.replay, args.seed, args.history_limit)
    return result


async def fault_run(cluster: LocalCluster, balancer: Balancer, args: argparse.Namespace) -> dict:
    events: list[dict] = []
    start = time.monotonic()
    victim = cluster.nodes[-1]

    async def faults() -> None:
        await asyncio.sleep(max(0.0, start + args.fault_duration / 3 - time.monotonic()))
        at = time.monotonic() - start
        info = await asyncio.to_thread(cluster.restart_redis)
        events.append({"event": "redis SHUTDOWN + start (AOF reload)", "at_s": round(at, 2), **info})
        await asyncio.sleep(max(0.0, start + 2 * args.fault_duration / 3 - time.monotonic()))
        at = time.monotonic() - start
        await asyncio.to_thread(cluster.kill_replica, victim)
        cluster.start_replica(victim)
        event = {"event": f"kill -9 {victim.name}, start it again", "at_s": round(at, 2)}
        events.append(event)
        try:
            event["ready_after_s"] = round(await asyncio.to_thread(cluster.wait_ready, victim,
                                                                   args.replica_start_timeout), 2)
        except RuntimeError as exc:
            event["ready_after_s"] = None
            event["error"] = str(exc)[-500:]

    fault_task = asyncio.create_task(faults())
    convs, _ = await drive(balancer, args.customers, args.fault_duration, args.seed, "f",
                           args.think_ms / 1000)
    await fault_task
    keep_log(cluster, args, convs, "fault")
    turns = [t for c in convs for t in c.turns]
    result = turn_stats(turns, args.fault_duration)
    result["events"] = events
    slowest = max(turns, key=lambda t: t.latency_ms, default=None)
    result["longest_stall_ms"] = round(slowest.latency_ms, 1) if slowest else 0.0
    result["longest_stall_sent_at_s"] = round(slowest.sent_at, 2) if slowest else None
    result["stalls_over_1s"] = sum(1 for t in turns if t.latency_ms > 1000)
    result["check"] = await check_run(balancer, convs, args.replay, args.seed, args.history_limit)
    return result


async def run_all(cluster: LocalCluster, args: argparse.Namespace, results: dict) -> None:
    # aiohttp, not httpx: the client shares the 2 cores with the replicas, and httpx spent about
    # 4.6 ms of CPU a request (GET /healthz topped out at 218/s with the client at 100 % of a core).
    connector = aiohttp.TCPConnector(limit=args.customers * 2 + 32)
    timeout = aiohttp.ClientTimeout(total=args.request_timeout, connect=2.0)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as client:
        balancer = Balancer(client, [n.url for n in cluster.nodes], args.message_deadline)
        if "throughput" in args.runs:
            console.print(f"[bold]throughput run[/bold]: {args.customers} customers, {args.warmup:g} s "
                          f"warm-up + {args.duration:g} s")
            results["throughput"] = await throughput_run(cluster, balancer, args)
        if "fault" in args.runs:
            console.print(f"[bold]fault run[/bold]: {args.customers} customers, {args.fault_duration:g} s; "
                          "Redis restart at 1/3, kill -9 of a replica at 2/3")
            results["fault"] = await fault_run(cluster, balancer, args)


# ---- report ---------------------------------------------------------------------------------
def goals(results: dict, customers: int) -> dict:
    out: dict[str, dict] = {}
    applies = customers == GOALS["customers"]
    if "throughput" in results:
        t = results["throughput"]
        out["turns/s for the pair >= 300"] = {"value": t["turns_per_s"], "goal": GOALS["turns_per_s"],
                                              "pass": t["turns_per_s"] >= GOALS["turns_per_s"]}
        out["p95 turn latency <= 40 ms"] = {"value": t["latency_ms"]["p95"], "goal": GOALS["p95_ms"],
                                            "pass": t["latency_ms"]["p95"] <= GOALS["p95_ms"]}
        for g in out.values():
            g["at_goal_load"] = applies
    if "fault" in results:
        c = results["fault"]["check"]
        for key in ("lost", "duplicated", "out_of_order"):
            out[f"fault run: {key.replace('_', '-')} replies == 0"] = {"value": c[key], "goal": 0,
                                                                       "pass": c[key] == 0}
        checks = c["verifier_self_check"]
        out["fault run: the checker counts planted problems"] = {
            "value": f"{sum(checks.values())}/{len(checks)}", "goal": "3/3",
            "pass": bool(checks) and all(checks.values())}
    return out


def report(results: dict) -> None:
    t, f = results.get("throughput"), results.get("fault")
    if t:
        table = Table(title=f"Throughput: {results['settings']['customers']} customers, 2 replicas, "
                            f"{t['seconds']:g} s after warm-up")
        for col in ("what", "count", "per s", "p50 ms", "p95 ms", "p99 ms", "max ms", "errors"):
            table.add_column(col, justify="right" if col != "what" else "left")
        lat = t["latency_ms"]
        table.add_row("turns (POST .../messages)", str(t["turns"]), f"{t['turns_per_s']:.1f}",
                      str(lat["p50"]), str(lat["p95"]), str(lat["p99"]), str(lat["max"]),
                      f"{t['error_rate']:.2%}")
        b = t["baseline_healthz"]
        bl = b["latency_ms"]
        table.add_row("baseline: GET /healthz", str(b["requests"]), f"{b['requests_per_s']:.1f}",
                      str(bl["p50"]), str(bl["p95"]), str(bl["p99"]), str(bl["max"]), "")
        for name, s in t["by_script"].items():
            table.add_row(f"  {name}", str(s["turns"]), "", str(s["p50"]), str(s["p95"]), "", "", "")
        console.print(table)
        c = t["check"]
        console.print(f"turn / healthz (p50): {t['turn_over_healthz_p50']}x\nCPU, % of one core, turns: "
                      f"{t['cpu_percent_of_one_core']}; /healthz: {b['cpu_percent_of_one_core']}"
                      f"\nexactly-once check of this run: lost {c['lost']}, "
                      f"duplicated {c['duplicated']}, out-of-order {c['out_of_order']} "
                      f"({c['messages']} messages, {c['replayed']} re-sent with their id)")
    if f:
        table = Table(title=f"Faults: {results['settings']['customers']} customers, {f['seconds']:g} s")
        table.add_column("what")
        table.add_column("value", justify="right")
        for e in f["events"]:
            detail = (f"down {e['down_s']} s, keys {e['keys_before']} -> {e['keys_after_reload']}"
                      if "down_s" in e else f"ready again after {e.get('ready_after_s')} s")
            table.add_row(f"at {e['at_s']} s: {e['event']}", detail)
        c = f["check"]
        rows = [("turns", f["turns"]), ("conversations checked", c["conversations"]),
                ("lost replies", c["lost"]), ("duplicated replies", c["duplicated"]),
                ("out-of-order replies", c["out_of_order"]),
                ("conversations unverifiable", c["conversations_unverifiable"]),
                ("messages re-sent with their id", c["replayed"]),
                ("requests that needed a retry", f["requests_retried"]),
                ("retry reasons", f["retry_reasons"]),
                ("errors after retries", f"{f['errors']} ({f['error_rate']:.2%})"),
                ("longest stall (send to reply, with retries)",
                 f"{f['longest_stall_ms']:.0f} ms (sent at {f['longest_stall_sent_at_s']} s)"),
                ("turns slower than 1 s", f["stalls_over_1s"]),
                ("latency p50 / p95 / p99 ms", f"{f['latency_ms']['p50']} / {f['latency_ms']['p95']} / "
                                               f"{f['latency_ms']['p99']}"),
                ("verifier self-check", c["verifier_self_check"])]
        for what, value in rows:
            table.add_row(what, str(value))
        console.print(table)
        for p in c["problems"][:10]:
            console.print(f"  [red]{p}[/red]")
    table = Table(title="Goals (one 2-core machine, non-generative path)")
    for col in ("goal", "value", "pass"):
        table.add_column(col)
    for name, g in results["goals"].items():
        verdict = "[green]pass[/green]" if g["pass"] else "[red]FAIL[/red]"
        if g.get("at_goal_load") is False:
            verdict += f" (goal is at {GOALS['customers']} customers)"
        table.add_row(name, str(g["value"]), verdict)
    console.print(table)


def machine() -> dict:
    redis_version = subprocess.run([REDIS_SERVER, "--version"], capture_output=True, text=True).stdout.split()
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
            "redis_server": next((w.split("=")[1] for w in redis_version if w.startswith("v=")), "?")}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=50)
    parser.add_argument("--duration", type=float, default=60, help="Throughput run, seconds after warm-up.")
    parser.add_argument("--warmup", type=float, default=10, help="Seconds of load before measuring.")
    parser.add_argument("--baseline-duration", type=float, default=10, help="GET /healthz floor, seconds.")
    parser.add_argument("--fault-duration", type=float, default=60)
    parser.add_argument("--runs", default="throughput,fault", help="Comma-separated: throughput, fault.")
    parser.add_argument("--think-ms", type=float, default=0, help="Pause after each reply (0: closed loop).")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--replay", type=int, default=200,
                        help="Answered messages re-sent with their id after a run (plus every retried one).")
    parser.add_argument("--database", choices=("auto", "postgres", "sqlite"), default="auto")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="Model and index dir shared by the replicas "
                             "(default: SUPPORTBOT_DATA_DIR or var).")
    parser.add_argument("--torch-threads", type=int, default=max(1, (os.cpu_count() or 2) // 2),
                        help="Per replica (default: cores / 2 replicas).")
    parser.add_argument("--request-timeout", type=float, default=45,
                        help="Per attempt; above the lock lease (30 s) a dead replica can leave behind.")
    parser.add_argument("--message-deadline", type=float, default=90,
                        help="A message with no reply after this long, retries included, is lost.")
    parser.add_argument("--replica-start-timeout", type=float, default=300)
    parser.add_argument("--timeout", type=float, default=1800, help="Hard limit on the whole benchmark.")
    parser.add_argument("--keep", action="store_true", help="Keep the temp dir (logs, AOF) for inspection.")
    parser.add_argument("--out", type=Path, default=RESULTS / "load.json")
    parser.add_argument("--nlu-runtime", choices=("auto", "torch", "onnx-int8"), default="auto",
                        help="The replicas' SUPPORTBOT_NLU_RUNTIME (the intent encoder's runtime).")
    parser.add_argument("--inference-workers", type=int, default=None,
                        help="The replicas' SUPPORTBOT_INFERENCE_WORKERS (default: the setting's default).")
    parser.add_argument("--embedder-runtime", choices=("auto", "torch", "onnx-int8"), default="auto",
                        help="The replicas' SUPPORTBOT_EMBEDDER_RUNTIME (the FAQ embedder's).")
    args = parser.parse_args()
    args.runs = {r.strip() for r in args.runs.split(",") if r.strip()}
    if not args.runs <= {"throughput", "fault"}:
        parser.error("--runs takes throughput and/or fault")
    return args


class HardTimeout(BaseException):
    """A BaseException, so that no `except Exception` (asyncio's callback runner included) eats it."""


def _raise_timeout(*_: object) -> None:
    raise HardTimeout("the benchmark ran past --timeout")


def _raise_interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    args = parse_args()
    from bot.encoders.paths import offline

    offline()
    data_dir = (args.data_dir or Settings().data_dir).resolve()
    defaults = Settings()
    args.history_limit = defaults.sessions.history_limit
    extra_env = {"SUPPORTBOT_GENERATION__BACKEND": "none", "SUPPORTBOT_NLU_RUNTIME": args.nlu_runtime,
                 "SUPPORTBOT_EMBEDDER_RUNTIME": args.embedder_runtime}
    if args.inference_workers is not None:
        extra_env["SUPPORTBOT_INFERENCE_WORKERS"] = str(args.inference_workers)
    rate_note = "no rate limits in this version"
    if "rate_limit" in Settings.model_fields:
        extra_env["SUPPORTBOT_RATE_LIMIT__ENABLED"] = "false"
        rate_note = ("disabled with SUPPORTBOT_RATE_LIMIT__ENABLED=false: every customer here is one "
                     "address, 127.0.0.1")
    signal.signal(signal.SIGALRM, _raise_timeout)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.alarm(int(args.timeout))
    results: dict = {"benchmark": "load", "command": " ".join([Path(sys.executable).name, *sys.argv]),
                     "machine": machine()}
    cluster = LocalCluster(data_dir, replicas=2, database=args.database, torch_threads=args.torch_threads,
                           extra_env=extra_env, keep=args.keep)
    try:
        console.print(f"starting Redis, the database and 2 replicas (temp dir {cluster.tmp}) ...")
        t = time.monotonic()
        cluster.start()
        console.print(f"ready in {time.monotonic() - t:.1f} s; database: {cluster.database_note}")
        manifest = data_dir / "models" / "intent" / "manifest.json"
        results["settings"] = {
            "customers": args.customers, "warmup_s": args.warmup, "duration_s": args.duration,
            "baseline_s": args.baseline_duration, "fault_duration_s": args.fault_duration,
            "think_ms": args.think_ms, "seed": args.seed, "replicas": 2,
            "scripts": SCRIPTS, "mix": MIX,
            "model_mode": json.loads(manifest.read_text()).get("mode") if manifest.exists() else None,
            "redis": "dedicated redis-server, appendonly yes, appendfsync everysec",
            "database": cluster.database_note, "generation": "off (SUPPORTBOT_GENERATION__BACKEND=none)",
            "rate_limits": rate_note, "torch_threads_per_replica": args.torch_threads,
            "inference_workers_per_replica": args.inference_workers or defaults.inference.workers,
            "nlu_runtime": args.nlu_runtime, "embedder_runtime": args.embedder_runtime,
            "inference_max_batch": defaults.inference.max_batch,
            "lock_lease_s": defaults.sessions.lock_lease_s, "redis_retry_s": defaults.redis.retry_s,
            "client": "asyncio + aiohttp, round robin; a failed request is retried on the other "
                      "replica with the same message id",
            "request_timeout_s": args.request_timeout, "message_deadline_s": args.message_deadline,
        }
        asyncio.run(run_all(cluster, args, results))
        results["server_log"] = server_log_summary(cluster)
    finally:
        signal.alarm(0)
        cluster.close()
        if "throughput" in results or "fault" in results:
            results["goals"] = goals(results, args.customers)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results, indent=2, default=str))
    report(results)
    console.print(f"written to {args.out}" + (f"; logs, AOF and client logs kept in {cluster.tmp}"
                                               if args.keep else ""))


if __name__ == "__main__":
    try:
        main()
    except HardTimeout as exc:
        console.print(f"[red]{exc}[/red]; everything it started is stopped and removed")
        sys.exit(124)
    except KeyboardInterrupt:
        console.print("[red]interrupted[/red]; everything it started is stopped and removed")
        sys.exit(130)
