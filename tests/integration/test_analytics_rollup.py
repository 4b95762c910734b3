"""The analytics rollup (bot/storage/rollup.py) against the reference SQL over the transcripts
(bot/storage/analytics.py), on SQLite and PostgreSQL: varied random transcripts written through
`TranscriptStore` and by plain INSERTs, conversations that go on for days, votes, ratings and agent
messages that arrive later, a language that changes, an erasure and a retention purge — after each
step the rollup's report equals the raw report for several page views, and a rebuild changes nothing."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Engine

from bot.storage import rollup
from bot.storage.analytics import Analytics, Filters
from bot.storage.analytics_rollup import RollupAnalytics
from bot.storage.db import TranscriptStore, make_engine, migrate
from bot.storage.models import Conversation, Rating, TurnRecord
from bot.types import Action, Hit, Parse, Turn

pytestmark = pytest.mark.integration
START = date(2026, 10, 26)  # a Monday
DAYS = 21
CHANNELS = ["web", "telegram", "whatsapp"]
LANGUAGES = ["en", "de", None]
KINDS = [("faq_answer", "faq"), ("generate", "answered"), ("generate", "refused"),
         ("fill_form", "address_change:submitted"), ("respond", "utter_greet"), ("respond", "utter_default"),
         ("handoff", "handoff")]
TEXTS = ["Where is my parcel?", "where is my parcel", "  WHERE is my parcel!! ", "refund", "Refund.",
         "I want a person", "ｗｈｅｒｅ is my parcel", "Kündigung", "KÜNDIGUNG", "你好"]


def views() -> list[Filters]:
    end = START + timedelta(days=DAYS + 3)
    return [Filters(start=START, end=end),
            Filters(start=START + timedelta(days=3), end=end - timedelta(days=9)),
            Filters(start=START, end=end, bucket="week"), Filters(start=START, end=end, channel="web"),
            Filters(start=START + timedelta(days=1), end=end, channel="telegram", language="de",
                    bucket="week"),
            Filters(start=START, end=end, language="en"), Filters(start=START, end=end, channel="nope")]


def assert_same(engine: Engine) -> None:
    raw, rolled = Analytics(engine), RollupAnalytics(engine)
    for f in views():
        got, want = rolled.report(f).as_dict(), raw.report(f).as_dict()
        for key in want:
            assert got[key] == want[key], (f, key)
    assert not rollup.pending(engine)


def at(day: int, seconds: float) -> datetime:
    midnight = datetime.combine(START + timedelta(days=day), datetime.min.time(), UTC)
    return midnight + timedelta(seconds=seconds)


def random_turn(rng: random.Random, cid: str, channel: str, k: int, when: datetime) -> Turn:
    action, name = rng.choices(KINDS, [5, 2, 1, 1, 3, 2, 1])[0]
    understood = name != "utter_default" and rng.random() < 0.9
    oos = not understood and rng.random() < 0.5
    intent = None if oos else rng.choice(["delivery", "refund", "human", "address", "greet"])
    feedback = rng.choice([None, None, None, "yes", "no", "repeated"])
    entry = rng.choice(["faq-ship", "faq-refund", "faq-a"])
    hit = (Hit(entry_id=entry, question="q", answer="a", category="c", score=0.7)
           if action == "faq_answer" else None)
    act = Action(kind=action, name=name, understood=understood, feedback=feedback, faq_hit=hit)
    text = rng.choice(TEXTS)
    parse = Parse(text=text, intent=intent, confidence=0.8, out_of_scope=oos)
    return Turn(conversation_id=cid, channel=channel, message_id=f"m{k}", text=text, parse=parse,
                action=act, replies=[], latency_ms=3.0, at=when.timestamp())


def write(engine: Engine, rng: random.Random, n: int, prefix: str) -> None:
    """Conversations through `TranscriptStore.record` (their language set by SQL after), thumbs
    through `set_vote`, agent messages through `record_agent_message`, ratings by INSERT."""
    store = TranscriptStore(engine)
    for i in range(n):
        cid = f"{prefix}{i}"
        channel = rng.choice(CHANNELS)
        day = rng.randrange(DAYS)
        when = at(day, rng.uniform(0, 86000))
        handed_at = None
        for k in range(rng.randint(1, 6)):
            turn = random_turn(rng, cid, channel, k, when)
            handed = turn.action.kind == "handoff"
            if handed and handed_at is None:
                handed_at = when
            store.record(turn, handoff=handed, handoff_reason=rng.choice([None, "customer_asked"]) if handed
                         else None)
            when += timedelta(seconds=rng.choice([20, 600, 40_000, 100_000]))  # over midnight, days later
        with engine.begin() as conn:
            conn.execute(update(Conversation).where(Conversation.id == cid)
                         .values(language=rng.choice(LANGUAGES)))
        if rng.random() < 0.4:
            store.set_vote(cid, f"m{rng.randrange(3)}", rng.choice(["up", "down"]))
        if handed_at is not None:
            for _ in range(rng.randint(0, 3)):
                sent = handed_at + timedelta(seconds=rng.uniform(-30, 90_000))
                store.record_agent_message(cid, rng.choice(["ana", "ben"]), "hello", sent.timestamp())
        if rng.random() < 0.2:
            with engine.begin() as conn:
                conn.execute(insert(Rating).values(conversation_id=cid, score=rng.randint(1, 5),
                                                   created_at=when))


def test_the_rollup_report_equals_the_raw_report_through_every_kind_of_change(engine: Engine) -> None:
    rng = random.Random(11)
    write(engine, rng, 120, "a")
    assert_same(engine)
    # later: more conversations, votes and ratings on old ones, a language that changes
    write(engine, rng, 60, "b")
    store = TranscriptStore(engine)
    for cid in ("a1", "a5", "a9", "a17"):
        store.set_vote(cid, "m0", "down")
        store.record_agent_message(cid, "cat", "late", at(DAYS, 5).timestamp())
    with engine.begin() as conn:
        conn.execute(update(Conversation).where(Conversation.id.in_(["a2", "a3"])).values(language="fr"))
        conn.execute(insert(Rating).values(conversation_id="a4", score=5, created_at=at(DAYS, 1)))
    assert_same(engine)
    if engine.dialect.name == "sqlite":  # no foreign keys: turns written before their conversation, and
        with engine.begin() as conn:  # a conversation deleted under its turns
            conn.execute(insert(TurnRecord).values(
                conversation_id="early", channel="web", message_id="m0", at=at(3, 50), user_text="refund",
                intent="refund", action="respond", action_name="utter_default", understood=False,
                replies=[], ranking=[], latency_ms=1.0))
        assert_same(engine)
        with engine.begin() as conn:
            conn.execute(insert(Conversation).values(id="early", channel="web", language="de",
                                                     started_at=at(2, 10), last_message_at=at(3, 50)))
            conn.execute(delete(Conversation).where(Conversation.id == "a8"))
        assert_same(engine)
    # erasure and retention
    store.erase("a6")
    store.erase("b7")
    counts = store.purge(at(7, 0))
    assert counts["turns"] > 0 and counts["conversations"] > 0
    assert_same(engine)
    with engine.connect() as conn:
        before = {t.name: sorted(map(repr, conn.execute(select(t)))) for t in rollup.ROLLUPS}
    assert rollup.rebuild(engine) is not None
    with engine.connect() as conn:
        after = {t.name: sorted(map(repr, conn.execute(select(t)))) for t in rollup.ROLLUPS}
    assert before == after


def test_the_migration_backfills_what_was_stored_before_it(tmp_path) -> None:
    from alembic import command
    from alembic.config import Config

    from bot.storage.db import MIGRATIONS

    engine = make_engine(f"sqlite:///{tmp_path}/old.db")
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0008")
    write(engine, random.Random(3), 40, "o")  # written before the rollup existed: no triggers yet
    migrate(engine)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(rollup.conversations)).scalar_one() > 0
    assert_same(engine)
    engine.dispose()


def test_a_rebuild_on_an_empty_database_is_a_no_op(tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/empty.db")
    migrate(engine)
    assert rollup.rebuild(engine) is None and rollup.refresh(engine) == []
    engine.dispose()


def test_the_cli_rebuilds_a_rollup_written_without_its_triggers(tmp_path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from bot.cli import app as cli

    url = f"sqlite:///{tmp_path}/cli.db"
    engine = make_engine(url)
    migrate(engine)
    with engine.begin() as conn:  # as if written while the triggers were missing: no marks, a stale row
        conn.exec_driver_sql("DROP TRIGGER rollup_mark_turns_insert")
        conn.execute(insert(rollup.intents).values(day=START, channel="web", language="en", intent="x",
                                                    turns=9))
    write(engine, random.Random(5), 20, "c")
    raw = Analytics(engine).report(views()[0]).as_dict()
    assert RollupAnalytics(engine).report(views()[0]).as_dict() != raw
    monkeypatch.setenv("SUPPORTBOT_DATABASE_URL", url)
    result = CliRunner().invoke(cli, ["analytics", "rebuild"])
    assert result.exit_code == 0, result.output
    assert RollupAnalytics(engine).report(views()[0]).as_dict() == raw
    result = CliRunner().invoke(cli, ["analytics", "refresh"])
    assert result.exit_code == 0 and "refreshed 0 day(s)" in result.output, result.output
    engine.dispose()


async def test_the_server_folds_changes_in_without_anyone_opening_the_page(tmp_path) -> None:
    """The background refresh (bot.services) takes the day marks as they come, so they never pile up."""
    from bot.config import Settings
    from bot.services import refresh_analytics_periodically

    eng = make_engine(f"sqlite:///{tmp_path}/bg.db")
    migrate(eng)
    write(eng, random.Random(5), 20, "bg")
    assert rollup.pending(eng)
    settings = Settings(data_dir=tmp_path).updated({"storage.analytics_refresh_every_s": 1})
    task = asyncio.create_task(refresh_analytics_periodically(settings, eng))
    try:
        for _ in range(100):
            await asyncio.sleep(0.1)
            if not rollup.pending(eng):
                break
        assert not rollup.pending(eng)
        assert_same(eng)
    finally:
        task.cancel()
        eng.dispose()


def test_erasing_a_conversation_removes_its_words_from_the_rollup_at_once(tmp_path) -> None:
    """Right to erasure: the unanswered questions kept per day go with the transcripts, not at the
    next refresh."""
    eng = make_engine(f"sqlite:///{tmp_path}/erase.db")
    migrate(eng)
    store = TranscriptStore(eng)
    rng = random.Random(3)
    for k in range(3):
        turn = random_turn(rng, "secret", "web", k, at(1, k * 60))
        unanswered = turn.action.model_copy(update={"understood": False})
        store.record(turn.model_copy(update={"text": "my name is Zebedee Quux and I want a person",
                                             "action": unanswered}))
    rollup.refresh(eng)
    with eng.connect() as conn:
        kept = [q for (q,) in conn.execute(select(rollup.unanswered.c.question_key))]
    store.erase("secret")
    with eng.connect() as conn:
        left = [q for (q,) in conn.execute(select(rollup.unanswered.c.question_key))]
    assert not rollup.pending(eng)
    assert all("zebedee" not in q for q in left)
    assert any("zebedee" in q for q in kept)  # it was there before
    eng.dispose()
