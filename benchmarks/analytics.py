"""Analytics benchmark: the console's analytics page on PostgreSQL with 100k and 1M synthetic turns,
read from the rollup (bot/storage/analytics_rollup.py, migration 0009) and from the transcripts by the
reference SQL (bot/storage/analytics.py, with migration 0008's indexes), in the same run on the same
data; and what the rollup's triggers add to writing a turn (`TranscriptStore.record`), on SQLite and
PostgreSQL, with and without them.

A temporary database is created on the PostgreSQL server (SUPPORTBOT_TEST_PG, as the tests'
`pg_url` fixture does) and dropped at the end. The data are generated here (a fixed seed): 5 turns per
conversation on average, 90 days, 4 channels, 4 languages, a mix of FAQ answers, composed answers,
forms, fallbacks and hand-offs, thumbs and "did that answer" feedback, agent messages after
hand-offs and CSAT ratings. They are loaded by COPY (the triggers mark the days), then the rollup is
rebuilt (timed). Each query runs once to warm the cache, then `--repeat` times; the median is
reported. Two page views: the default (the last 30 days, every channel, per day) and the whole 90
days per week for one channel; for the rollup also "a day changed": the last day is marked as
changed before each run, so the page pays for recomputing it (what a page view costs while turns
arrive). PostgreSQL is asked for at most one parallel worker per query (two processes: the "2 cores"
of the goal). The load average is read before and after.

    .venv/bin/python benchmarks/analytics.py [--sizes 100000 1000000] [--repeat 5] [--write-turns 3000]
"""
from __future__ import annotations

import importlib.util
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alembic.migration import MigrationContext  # noqa: E402
from alembic.operations import Operations  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402
from sqlalchemy import create_engine, event, text  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402

from benchmarks.common import RESULTS, arg_parser  # noqa: E402
from bot.storage import rollup  # noqa: E402
from bot.storage.analytics import Analytics, Filters  # noqa: E402
from bot.storage.analytics_rollup import RollupAnalytics  # noqa: E402
from bot.storage.db import TranscriptStore, make_engine, migrate  # noqa: E402
from bot.types import Action, Hit, Parse, Turn  # noqa: E402

PG_ADMIN = os.environ.get("SUPPORTBOT_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
VERSIONS = Path(__file__).resolve().parents[1] / "bot/storage/migrations/versions"
END = date(2026, 12, 6)  # the last day of the synthetic data
DAYS = 90
GOAL_MS = 300.0

CHANNELS = [("web", 0.55), ("whatsapp", 0.2), ("telegram", 0.15), ("slack", 0.1)]
LANGUAGES = [("en", 0.6), ("de", 0.2), ("fr", 0.12), ("zh", 0.08)]
REASONS = ["customer_asked", "low_confidence", "complaint", "repeated_failure", "out_of_hours"]
AGENTS = [f"agent{i:02d}" for i in range(12)]
INTENTS = [f"intent_{i:02d}" for i in range(40)]
FAQ = [f"faq-{i:03d}" for i in range(60)]
TOPICS = ["my order", "the refund", "a parcel", "my invoice", "the warranty", "my account", "a voucher",
          "the delivery date", "my subscription", "the kettle", "a return label", "the discount code"]
ASKS = ["where is", "how do I change", "can you cancel", "why was I charged for", "I want to complain about",
        "nobody answered about", "what happened to", "I need help with", "is there news on", "explain"]
QUESTIONS = [f"{a} {t}" for a in ASKS for t in TOPICS]  # 120 distinct questions


def pick(rng: random.Random, weighted: list[tuple[str, float]]) -> str:
    return rng.choices([w[0] for w in weighted], [w[1] for w in weighted])[0]


def question(rng: random.Random) -> str:
    """One of the questions, as customers type it: case, punctuation and spaces vary."""
    q = QUESTIONS[min(int(rng.paretovariate(1.2)) - 1, len(QUESTIONS) - 1)]
    variant = rng.random()
    if variant < 0.3:
        q = q.capitalize() + "?"
    elif variant < 0.45:
        q = q.upper() + "!!"
    elif variant < 0.55:
        q = "  " + q + " ?"
    return q


def generate(n_turns: int, seed: int = 7) -> tuple[list[tuple], Iterator[tuple], list[tuple], list[tuple]]:
    """Conversations, turns (a generator), agent messages and ratings."""
    rng = random.Random(seed)
    start = datetime.combine(END - timedelta(days=DAYS - 1), datetime.min.time(), UTC)
    conversations: list[tuple] = []
    plans: list[tuple[str, str, datetime, int, int | None]] = []
    agent_messages: list[tuple] = []
    ratings: list[tuple] = []
    made = 0
    i = 0
    while made < n_turns:
        cid = f"c{i:08d}"
        i += 1
        n = min(max(1, int(rng.expovariate(1 / 5))), n_turns - made)
        made += n
        channel, language = pick(rng, CHANNELS), pick(rng, LANGUAGES)
        at = start + timedelta(seconds=rng.uniform(0, DAYS * 86400 - 3600))
        handoff_at = rng.randrange(n) if rng.random() < 0.12 else None
        reason = rng.choice(REASONS) if handoff_at is not None else None
        last = at + timedelta(seconds=30 * (n - 1))
        conversations.append((cid, channel, at, last, n, handoff_at is not None, reason, language))
        plans.append((cid, channel, at, n, handoff_at))
        if handoff_at is not None and rng.random() < 0.85:
            t0 = at + timedelta(seconds=30 * handoff_at)
            agent = rng.choice(AGENTS)
            t = t0 + timedelta(seconds=rng.lognormvariate(4.5, 1.0))
            for _ in range(rng.randint(1, 6)):
                agent_messages.append((cid, agent, "synthetic agent reply", t))
                t += timedelta(seconds=rng.lognormvariate(4.0, 0.8))
        if rng.random() < 0.1:
            ratings.append((cid, rng.choices([1, 2, 3, 4, 5], [1, 1, 2, 4, 6])[0], None, None,
                            last + timedelta(minutes=2)))

    def turns() -> Iterator[tuple]:
        r = random.Random(seed + 1)
        for cid, channel, at, n, handoff_at in plans:
            for k in range(n):
                when = at + timedelta(seconds=30 * k)
                intent = INTENTS[min(int(r.paretovariate(1.1)) - 1, len(INTENTS) - 1)]
                roll = r.random()
                faq = None
                if handoff_at == k:
                    action, name, understood = "handoff", "handoff", True
                elif roll < 0.55:
                    action, name, understood = "faq_answer", "faq", True
                    faq = FAQ[min(int(r.paretovariate(1.0)) - 1, len(FAQ) - 1)]
                elif roll < 0.65:
                    action, name, understood = "generate", "answered", True
                elif roll < 0.7:
                    action, name, understood = "fill_form", "address_change:submitted", True
                elif roll < 0.85:
                    action, name, understood = "respond", "utter_greet", True
                else:
                    action, name, understood = "respond", "utter_default", False
                oos = not understood and r.random() < 0.4
                f = r.random()
                feedback = "yes" if f < 0.05 else "no" if f < 0.07 else "repeated" if f < 0.08 else None
                v = r.random()
                vote = "up" if v < 0.05 else "down" if v < 0.07 else None
                yield (cid, channel, f"m{k}", when, question(r), None if oos else intent,
                       round(r.uniform(0.3, 1.0), 3), oos, action, name, understood, faq,
                       0.7 if faq else None, "[]", "[]", 12.5, feedback, vote)

    return conversations, turns(), agent_messages, ratings


TURN_COLUMNS = ("conversation_id, channel, message_id, at, user_text, intent, confidence, out_of_scope, "
                "action, action_name, understood, faq_entry, faq_score, replies, ranking, latency_ms, "
                "feedback, vote")


def load(engine: Engine, n_turns: int) -> dict[str, int]:
    conversations, turns, agent_messages, ratings = generate(n_turns)
    raw = engine.raw_connection()
    try:
        conn: Any = raw.driver_connection
        with conn.cursor() as cur:
            cur.execute("TRUNCATE turns, form_requests, conversations, agent_messages, ratings "
                        "RESTART IDENTITY")
            with cur.copy("COPY conversations (id, channel, started_at, last_message_at, turns, handoff, "
                          "handoff_reason, language) FROM STDIN") as copy:
                for row in conversations:
                    copy.write_row(row)
            with cur.copy(f"COPY turns ({TURN_COLUMNS}) FROM STDIN") as copy:
                for row in turns:
                    copy.write_row(row)
            with cur.copy("COPY agent_messages (conversation_id, agent, text, at) FROM STDIN") as copy:
                for row in agent_messages:
                    copy.write_row(row)
            with cur.copy("COPY ratings (conversation_id, score, comment, agent, created_at) "
                          "FROM STDIN") as copy:
                for row in ratings:
                    copy.write_row(row)
        conn.commit()
    finally:
        raw.close()
    vacuum(engine)
    return {"conversations": len(conversations), "turns": n_turns, "agent_messages": len(agent_messages),
            "ratings": len(ratings)}


def vacuum(engine: Engine) -> None:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))


def migration(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"migration_{name}", VERSIONS / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def set_triggers(engine: Engine, present: bool) -> None:
    """Migration 0009's triggers on or off (the write path's before/after)."""
    m = migration("0009_analytics_rollup")
    with engine.begin() as conn:
        ops = Operations(MigrationContext.configure(conn))
        m.drop_triggers(ops)
        if present:
            m.create_triggers(ops)


def timed(fn: Callable[[], Any], repeat: int) -> float:
    fn()  # warm the cache
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - t0) * 1000)
    return round(statistics.median(runs), 1)


def views() -> dict[str, Filters]:
    return {"30 days, all channels, per day": Filters(start=END - timedelta(days=29), end=END),
            "90 days, web, per week": Filters(start=END - timedelta(days=DAYS - 1), end=END, channel="web",
                                              bucket="week")}


PARTS: dict[str, Callable[[Analytics, Any, Filters], Any]] = {
    "volume + resolution": lambda a, c, f: a.conversations_by_bucket(c, f),
    "messages + satisfaction": lambda a, c, f: a.turns_by_bucket(c, f),
    "hand-off reasons": lambda a, c, f: a.handoff_reasons(c, f),
    "ratings": lambda a, c, f: a.ratings(c, f),
    "agent times": lambda a, c, f: a.agent_times(c, f),
    "top intents": lambda a, c, f: a.top_intents(c, f),
    "unanswered": lambda a, c, f: a.unanswered(c, f),
    "faq usage": lambda a, c, f: a.faq_usage(c, f),
}
PAGE = "whole page (report)"


def measure(engine: Engine, repeat: int) -> dict[str, dict[str, dict[str, float]]]:
    """Per view: each query and the whole page from the transcripts (`raw`) and from the rollup;
    the rollup's page again with the last day marked as changed before each run."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for view, f in views().items():
        row: dict[str, dict[str, float]] = {}
        for name, a in (("raw", Analytics(engine)), ("rollup", RollupAnalytics(engine))):
            times: dict[str, float] = {}
            with engine.connect() as conn:
                for part, q in PARTS.items():
                    times[part] = timed(lambda q=q, a=a, conn=conn, f=f: q(a, conn, f), repeat)
            times[PAGE] = timed(lambda a=a, f=f: a.report(f), repeat)
            row[name] = times
        rolled = RollupAnalytics(engine)

        def changed_day(f: Filters = f, rolled: RollupAnalytics = rolled) -> Any:
            with engine.begin() as conn:
                conn.execute(rollup.dirty_days.insert().values(day=END))
            return rolled.report(f)

        row["rollup, a day changed"] = {PAGE: timed(changed_day, repeat)}
        assert rolled.report(f).as_dict() == Analytics(engine).report(f).as_dict(), view
        out[view] = row
    return out


def turn(rng: random.Random, cid: str, k: int) -> Turn:
    """A turn as the pipeline hands it to the transcript store."""
    text = question(rng)
    faq = rng.random() < 0.55
    hit = Hit(entry_id=rng.choice(FAQ), question="q", answer="a", category="c", score=0.7) if faq else None
    action = Action(kind="faq_answer" if faq else "respond", name="faq" if faq else "utter_greet",
                    faq_hit=hit)
    return Turn(conversation_id=cid, channel="web", message_id=f"m{k}", text=text,
                parse=Parse(text=text, intent=rng.choice(INTENTS), confidence=0.9), action=action,
                replies=[], latency_ms=10.0)


def write_cost(without_url: str, with_url: str, n: int) -> dict[str, Any]:
    """Median ms of `TranscriptStore.record` per turn (5 turns per conversation) on two databases, one
    without the rollup's triggers and one with them, alternating turn by turn (so load from other work
    falls on both alike)."""
    stores: dict[str, TranscriptStore] = {}
    for variant, url in (("without triggers", without_url), ("with triggers", with_url)):
        engine = make_engine(url)
        migrate(engine)
        set_triggers(engine, present=variant == "with triggers")
        stores[variant] = TranscriptStore(engine)
    rng = random.Random(3)
    runs: dict[str, list[float]] = {v: [] for v in stores}
    for i in range(n // 5):
        for k in range(5):
            t = turn(rng, f"w{i}", k)
            for variant in (sorted(stores) if (i + k) % 2 else sorted(stores, reverse=True)):
                t0 = time.perf_counter()
                stores[variant].record(t)
                runs[variant].append((time.perf_counter() - t0) * 1000)
    for store in stores.values():
        store.engine.dispose()
    before, after = (statistics.median(runs[v]) for v in ("without triggers", "with triggers"))
    return {"turns_per_variant": len(runs["with triggers"]),
            "median_ms_without_triggers": round(before, 3), "median_ms_with_triggers": round(after, 3),
            "added_ms": round(after - before, 3), "ratio": round(after / before, 3)}


def two_workers(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _limit(dbapi_conn: Any, _: Any) -> None:
        with dbapi_conn.cursor() as cur:
            cur.execute("SET max_parallel_workers_per_gather = 1")
        dbapi_conn.commit()


def main() -> None:
    parser = arg_parser(__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--write-turns", type=int, default=3000, help="turns per variant")
    args = parser.parse_args()
    console = Console()
    load_before = [round(x, 2) for x in os.getloadavg()]
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    name = f"sbbench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    engine = create_engine(url)
    two_workers(engine)
    results: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": platform.platform(),
                               "cpus": os.cpu_count(), "goal_ms_at_1m": GOAL_MS,
                               "load_average_before": load_before, "sizes": {}}
    try:
        with engine.connect() as conn:
            results["postgresql"] = conn.execute(text("SHOW server_version")).scalar()
        migrate(engine)
        for size in args.sizes:
            t0 = time.perf_counter()
            counts = load(engine, size)
            loaded_s = round(time.perf_counter() - t0, 1)
            t0 = time.perf_counter()
            rollup.rebuild(engine)
            vacuum(engine)
            rebuild_s = round(time.perf_counter() - t0, 1)
            console.print(f"{size:,} turns loaded in {loaded_s} s, rollup rebuilt in {rebuild_s} s: {counts}")
            ms = measure(engine, args.repeat)
            results["sizes"][str(size)] = {
                "rows": counts, "load_s": loaded_s, "rollup_rebuild_s": rebuild_s, "ms": ms,
                "page_ratio_raw_to_rollup": {v: round(r["raw"][PAGE] / r["rollup"][PAGE], 1)
                                             for v, r in ms.items()}}
            console.print(results["sizes"][str(size)]["page_ratio_raw_to_rollup"])
        engine.dispose()
        with tempfile.TemporaryDirectory() as tmp:
            with admin.connect() as conn:
                for db in ("w0", "w1"):
                    conn.execute(text(f'CREATE DATABASE "{name}_{db}"'))
            results["write_path"] = {
                "sqlite": write_cost(f"sqlite:///{tmp}/w0.db", f"sqlite:///{tmp}/w1.db", args.write_turns),
                "postgresql": write_cost(f"{url}_w0", f"{url}_w1", args.write_turns)}
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            for db in ("w0", "w1"):
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}_{db}" WITH (FORCE)'))
        admin.dispose()
    results["load_average_after"] = [round(x, 2) for x in os.getloadavg()]

    table = Table(title="Analytics page on PostgreSQL (median ms): the reference SQL over the transcripts "
                        "vs the rollup")
    for col in ("turns", "view", "query", "raw", "rollup", "rollup, a day changed"):
        table.add_column(col, justify="right" if col.startswith(("raw", "rollup")) else "left")
    for size, r in results["sizes"].items():
        for view, row in r["ms"].items():
            for q, raw_ms in row["raw"].items():
                changed = row["rollup, a day changed"].get(q)
                table.add_row(f"{int(size):,}", view, q, f"{raw_ms:.1f}", f"{row['rollup'][q]:.1f}",
                              "" if changed is None else f"{changed:.1f}")
    console.print(table)
    for db, w in results.get("write_path", {}).items():
        console.print(f"TranscriptStore.record on {db}: {w}")
    console.print(f"load average before {load_before}, after {results['load_average_after']}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "analytics.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
