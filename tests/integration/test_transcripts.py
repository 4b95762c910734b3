"""Transcripts in SQL, migrated by Alembic: SQLite by default, PostgreSQL by URL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.orm import Session as DbSession

from bot.storage.db import TranscriptStore, make_engine, migrate
from bot.storage.models import Conversation
from bot.types import Action, Hit, IntentScore, Parse, Reply, Turn

pytestmark = pytest.mark.integration


def turn(cid: str, mid: str, submitted: dict | None = None, action: Action | None = None) -> Turn:
    hit = Hit(entry_id="e1", question="q", answer="a", category="c", score=0.9)
    return Turn(conversation_id=cid, channel="web", message_id=mid, text="hello",
                parse=Parse(text="hello", intent="greet", confidence=0.9,
                            ranking=[IntentScore(name="greet", confidence=0.9)]),
                action=action or Action(kind="faq_answer", name="e1", faq_hit=hit, submitted=submitted),
                replies=[Reply(text="hi")], latency_ms=12.5)


def exercise(store: TranscriptStore) -> None:
    store.record(turn("c1", "m1"))
    store.record(turn("c1", "m1"))  # redelivery: ignored
    store.record(turn("c1", "m2", {"form": "cancel_order", "slots": {"order_number": "KK-1"}}),
                 handoff=True, handoff_reason="complaint")
    turns = store.turns("c1")
    assert [t.message_id for t in turns] == ["m1", "m2"]
    assert turns[0].faq_entry == "e1" and turns[0].ranking[0]["name"] == "greet"
    assert [r.slots for r in store.requests("c1")] == [{"order_number": "KK-1"}]
    with DbSession(store.engine) as db:  # the redelivery was not counted; the last turn's flags stand
        conv = db.get(Conversation, "c1")
        assert conv is not None and conv.channel == "web"
        assert (conv.turns, conv.handoff, conv.handoff_reason) == (2, True, "complaint")
    store.record(turn("c2", "m1"))
    with DbSession(store.engine) as db:
        assert (db.get(Conversation, "c2").turns, db.get(Conversation, "c1").turns) == (1, 2)
    # The resolution rate reads each turn's feedback and hand-offs (bot.resolution's definition).
    store.record(turn("c3", "m1"))
    store.record(turn("c3", "m2", action=Action(kind="respond", name="feedback:yes", feedback="yes")))
    store.record(turn("c4", "m1"))
    store.record(turn("c4", "m2", action=Action(kind="clarify", name="feedback:no", understood=False,
                                                 feedback="no")))
    store.record(turn("c5", "m1", action=Action(kind="handoff", name="complaint")))
    assert store.turns("c3")[1].feedback == "yes"
    got = store.resolution()
    assert (got.conversations, got.resolved, got.confirmed, got.rejected, got.handed_off) == (5, 3, 1, 1, 1)
    assert store.resolution(since=datetime.now(UTC) + timedelta(days=1)).conversations == 0
    assert store.ping()


def test_sqlite_file(tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/db/transcripts.db")
    migrate(engine)
    migrate(engine)  # idempotent
    tables = set(inspect(engine).get_table_names())
    expected = {"conversations", "turns", "form_requests", "agents", "agent_messages", "alembic_version"}
    assert expected <= tables
    exercise(TranscriptStore(engine))


def test_postgresql(pg_url: str) -> None:
    engine = make_engine(pg_url)
    migrate(engine)
    exercise(TranscriptStore(engine))
    engine.dispose()


@pytest.mark.timeout(90)
def test_replicas_migrating_at_once_do_not_collide(pg_url: str) -> None:
    """Replicas starting together: without the advisory lock they race to CREATE the same tables
    and block each other (measured: still waiting after 200 s) or fail on a duplicate."""
    from concurrent.futures import ThreadPoolExecutor

    engines = [make_engine(pg_url) for _ in range(4)]
    with ThreadPoolExecutor(len(engines)) as pool:
        list(pool.map(migrate, engines))  # re-raises any replica's failure
    with engines[0].connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    for engine in engines:
        engine.dispose()
