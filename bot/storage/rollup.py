"""The analytics rollup: per-day aggregates that the console's analytics page reads instead of the turns.

Why this shape. Every fact on the page belongs to one UTC day: a turn's (messages, thumbs, intents,
FAQ entries, unanswered questions) or its conversation's start day (volume, resolution, hand-offs,
ratings, agents' times). So the rollup is one table per kind of fact, keyed by day, channel and
language, and a day is recomputed whole from the transcripts when anything of it changed — a vote,
a rating, an agent message or a turn days later, a purge. Recomputing a day cannot drift the way
incremental +1/-1 counters can, and it reuses the reference SQL's own expressions (resolution,
unanswered, the agents' medians' inputs), so the rollup equals the raw report exactly.

Which days changed is written by database triggers (migration 0009) into `rollup_dirty_days`: they
see every writer — `TranscriptStore`, the console, retention, erasure, a bulk COPY, a test's INSERT —
in the writer's own transaction, at the cost of one small INSERT per statement (PostgreSQL) or row
(SQLite). On PostgreSQL the marks are append-only (no unique key), so concurrent writers never wait on
a shared row, and each mark commits with its change; SQLite has one writer at a time and keeps one
mark per day. `refresh` (before each report; serialised by an advisory lock on PostgreSQL) takes the
committed marks and recomputes those days, so a change still in flight keeps its mark for the next
refresh. Today is usually marked, so a page view pays for recomputing about one day: "today live".
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Date,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    case,
    cast,
    delete,
    func,
    insert,
    select,
    text,
    union,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql import Select

from bot.storage.analytics import UNANSWERED_SQL, resolution_columns, seconds_between
from bot.storage.models import AgentMessage, Conversation, Rating, TurnRecord

metadata = MetaData()
REFRESH_LOCK = 0x5B07_0009  # PostgreSQL advisory-lock key: one refresh at a time


def _dims() -> list[Column[Any]]:
    return [Column("day", Date, nullable=False), Column("channel", String(32), nullable=False),
            Column("language", String(8), nullable=True)]


dirty_days = Table("rollup_dirty_days", metadata,
                   Column("id", Integer, primary_key=True, autoincrement=True),
                   Column("day", Date, nullable=False))
# By the conversation's start day and channel: every conversation (`started`), those with turns
# (`conversations`, the page's count) and the resolution aggregates of the latter.
conversations = Table("rollup_conversations", metadata, *_dims(),
                      Column("started", Integer, nullable=False),
                      Column("conversations", Integer, nullable=False),
                      Column("resolved", Integer, nullable=False),
                      Column("handed_off", Integer, nullable=False),
                      Column("confirmed", Integer, nullable=False))
handoffs = Table("rollup_handoffs", metadata, *_dims(), Column("reason", String(64), nullable=False),
                 Column("conversations", Integer, nullable=False))
ratings = Table("rollup_ratings", metadata, *_dims(), Column("score", Integer, nullable=False),
                Column("ratings", Integer, nullable=False))
# One row per handed-off conversation and agent: medians cannot be summed, so their inputs are kept.
agent_times = Table("rollup_agent_times", metadata, *_dims(),
                    Column("conversation_id", String(128), nullable=False),
                    Column("agent", String(128), nullable=False),
                    Column("first_s", Float, nullable=True), Column("handling_s", Float, nullable=True))
# By the turn's day and channel (the language is its conversation's).
turns = Table("rollup_turns", metadata, *_dims(), Column("messages", Integer, nullable=False),
              Column("up", Integer, nullable=False), Column("down", Integer, nullable=False),
              Column("yes", Integer, nullable=False), Column("no", Integer, nullable=False))
intents = Table("rollup_intents", metadata, *_dims(), Column("intent", String(64), nullable=False),
                Column("turns", Integer, nullable=False))
faq = Table("rollup_faq", metadata, *_dims(), Column("entry", String(128), nullable=False),
            Column("uses", Integer, nullable=False), Column("down", Integer, nullable=False),
            Column("no", Integer, nullable=False))
unanswered = Table("rollup_unanswered", metadata, *_dims(), Column("question_key", Text, nullable=False),
                   Column("turns", Integer, nullable=False), Column("sample", Text, nullable=False))

ROLLUPS = (conversations, handoffs, ratings, agent_times, turns, intents, faq, unanswered)
for _t in ROLLUPS:
    Index(f"ix_{_t.name}_day_channel", _t.c.day, _t.c.channel)
Index("ix_rollup_dirty_days_day", dirty_days.c.day)


# --- from the transcripts --------------------------------------------------------------------------
def day_of(col: Any, dialect: str) -> ColumnElement[Any]:
    """The UTC day of a timestamp, as a DATE (what the triggers of migration 0009 write)."""
    if dialect == "postgresql":
        return cast(func.timezone("UTC", col), Date)
    return func.date(col)


def _n(cond: ColumnElement[bool]) -> ColumnElement[Any]:
    return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)


def _conversation_sources(dialect: str, since: datetime, until: datetime) -> dict[Table, Select[Any]]:
    """The rows of the tables by start day, for the conversations started in [since, until)."""
    c, t, m, r = Conversation, TurnRecord, AgentMessage, Rating
    started = [c.started_at >= since, c.started_at < until]
    cday = day_of(c.started_at, dialect).label("day")
    handed, resolved, confirmed = resolution_columns()
    per = (select(cday, c.channel, c.language, func.count(t.id).label("n"), handed.label("handed"),
                  resolved.label("resolved"), confirmed.label("confirmed"))
           .select_from(c).outerjoin(t, t.conversation_id == c.id).where(*started)
           .group_by(c.id, c.started_at, c.channel, c.language)).subquery()
    dims = (per.c.day, per.c.channel, per.c.language)
    out: dict[Table, Select[Any]] = {
        conversations: select(*dims, func.count(), _n(per.c.n > 0),
                              *(func.coalesce(func.sum(col), 0) for col in (per.c.resolved, per.c.handed,
                                                                            per.c.confirmed)))
        .group_by(*dims)}
    reason = func.coalesce(c.handoff_reason, "unknown")
    out[handoffs] = (select(cday, c.channel, c.language, reason, func.count())
                     .where(c.handoff.is_(True), *started).group_by(cday, c.channel, c.language, reason))
    out[ratings] = (select(cday, c.channel, c.language, r.score, func.count()).select_from(r)
                    .join(c, c.id == r.conversation_id).where(*started)
                    .group_by(cday, c.channel, c.language, r.score))
    ho = (select(t.conversation_id.label("cid"), cday, c.channel.label("channel"),
                 c.language.label("language"), func.min(t.at).label("at"))
          .join(c, c.id == t.conversation_id).where(t.action == "handoff", *started)
          .group_by(t.conversation_id, c.started_at, c.channel, c.language)).subquery()
    out[agent_times] = (select(ho.c.day, ho.c.channel, ho.c.language, m.conversation_id, m.agent,
                               seconds_between(func.min(m.at), ho.c.at, dialect),
                               seconds_between(func.max(m.at), ho.c.at, dialect))
                        .join(ho, ho.c.cid == m.conversation_id).where(m.at >= ho.c.at)
                        .group_by(ho.c.day, ho.c.channel, ho.c.language, m.conversation_id, m.agent, ho.c.at))
    return out


def _turn_facts(dialect: str, since: datetime, until: datetime) -> Select[Any]:
    """The turns sent in [since, until) with what the tables by turn day count: joined once to their
    conversation (its language), then aggregated four ways."""
    c, t = Conversation, TurnRecord
    missed = text(UNANSWERED_SQL)
    return (select(day_of(t.at, dialect).label("day"), t.channel.label("channel"),
                   c.language.label("language"), t.vote.label("vote"), t.feedback.label("feedback"),
                   t.intent.label("intent"), t.faq_entry.label("faq_entry"),
                   case((missed, func.lower(func.trim(t.user_text)))).label("question_key"),
                   case((missed, t.user_text)).label("sample"))
            .select_from(t).outerjoin(c, c.id == t.conversation_id).where(t.at >= since, t.at < until))


def _turn_sources(d: Any) -> dict[Table, Select[Any]]:
    """The rows of the tables by turn day, from `_turn_facts` (a subquery or a CTE `d`)."""
    dims = (d.c.day, d.c.channel, d.c.language)

    def agg(*cols: Any, where: Any = None, by: tuple[Any, ...] = ()) -> Select[Any]:
        q = select(*dims, *cols).group_by(*dims, *by)
        return q if where is None else q.where(where)

    return {
        turns: agg(func.count(), _n(d.c.vote == "up"), _n(d.c.vote == "down"), _n(d.c.feedback == "yes"),
                   _n(d.c.feedback == "no")),
        intents: agg(d.c.intent, func.count(), where=d.c.intent.is_not(None), by=(d.c.intent,)),
        faq: agg(d.c.faq_entry, func.count(), _n(d.c.vote == "down"), _n(d.c.feedback == "no"),
                 where=d.c.faq_entry.is_not(None), by=(d.c.faq_entry,)),
        unanswered: agg(d.c.question_key, func.count(), func.min(d.c.sample),
                        where=d.c.question_key.is_not(None), by=(d.c.question_key,)),
    }


def _columns(table: Table) -> list[str]:
    return [col.name for col in table.columns]


def _recompute(conn: Connection, first: date, last: date) -> None:
    """Replace the rollup rows of the days first..last (included) with the transcripts' aggregates."""
    dialect = conn.dialect.name
    since = datetime.combine(first, time.min, UTC)
    until = datetime.combine(last + timedelta(days=1), time.min, UTC)
    for table in ROLLUPS:
        conn.execute(delete(table).where(table.c.day >= first, table.c.day <= last))
    for table, source in _conversation_sources(dialect, since, until).items():
        conn.execute(insert(table).from_select(_columns(table), source))
    facts = _turn_facts(dialect, since, until)
    if dialect != "postgresql":
        for table, source in _turn_sources(facts.subquery()).items():
            conn.execute(insert(table).from_select(_columns(table), source))
        return
    # PostgreSQL: one statement, the day's turns scanned and joined once (a CTE), four INSERTs from it
    inserts = [insert(table).from_select(_columns(table), source)
               for table, source in _turn_sources(facts.cte("day_turns")).items()]
    *first_three, last_one = inserts
    conn.execute(last_one.add_cte(*(i.cte(f"i{n}") for n, i in enumerate(first_three))))


def _runs(days: list[date]) -> list[tuple[date, date]]:
    """Sorted days as runs of consecutive days: one set of statements per run."""
    out: list[tuple[date, date]] = []
    for d in sorted(set(days)):
        if out and d == out[-1][1] + timedelta(days=1):
            out[-1] = (out[-1][0], d)
        else:
            out.append((d, d))
    return out


def _lock(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_advisory_xact_lock(REFRESH_LOCK)))


def refresh_in(conn: Connection) -> list[date]:
    """Recompute the days marked since the last refresh (inside the caller's transaction); the days."""
    _lock(conn)
    taken = delete(dirty_days).returning(dirty_days.c.day)
    if conn.dialect.name == "postgresql":  # marks are appended there: only the distinct days come back
        marks = taken.cte("taken")
        days = sorted(d for (d,) in conn.execute(select(marks.c.day).distinct()))
    else:
        days = sorted({d for (d,) in conn.execute(taken)})
    for first, last in _runs(days):
        _recompute(conn, first, last)
    return days


def rebuild_in(conn: Connection) -> tuple[date, date] | None:
    """Recompute the whole rollup from the transcripts (idempotent); the span of days it holds."""
    _lock(conn)
    conn.execute(delete(dirty_days))
    for table in ROLLUPS:
        conn.execute(delete(table))
    dialect = conn.dialect.name
    spans = union(select(func.min(TurnRecord.at).label("lo"), func.max(TurnRecord.at).label("hi")),
                  select(func.min(Conversation.started_at), func.max(Conversation.started_at))).subquery()
    lo, hi = conn.execute(select(func.min(day_of(spans.c.lo, dialect)),
                                 func.max(day_of(spans.c.hi, dialect)))).one()
    if lo is None:
        return None
    first, last = _as_date(lo), _as_date(hi)
    _recompute(conn, first, last)
    return first, last


def refresh(engine: Engine) -> list[date]:
    """`refresh_in` in its own transaction; without a write (nor SQLite's write lock) when nothing changed."""
    if not pending(engine):
        return []
    with engine.begin() as conn:
        return refresh_in(conn)


def rebuild(engine: Engine) -> tuple[date, date] | None:
    with engine.begin() as conn:
        return rebuild_in(conn)


def pending(engine: Engine) -> bool:
    """Whether marks wait for the next refresh (committed ones: a refresh in flight still shows its own)."""
    with engine.connect() as conn:
        return conn.execute(select(dirty_days.c.id).limit(1)).first() is not None


def _as_date(value: Any) -> date:
    """SQLite's date() is text; PostgreSQL's a date."""
    return value if isinstance(value, date) else date.fromisoformat(str(value))


__all__ = ["ROLLUPS", "agent_times", "conversations", "day_of", "dirty_days", "faq", "handoffs", "intents",
           "metadata", "pending", "ratings", "rebuild", "rebuild_in", "refresh", "refresh_in", "turns",
           "unanswered"]
