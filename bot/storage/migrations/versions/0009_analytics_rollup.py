"""analytics rollup: per-day aggregates for the analytics page and the triggers that mark changed days

The tables are bot/storage/rollup.py's (why that shape: its docstring). The triggers write the UTC day
of every change to the transcripts that the page counts — a turn's day and its conversation's start
day — into `rollup_dirty_days`, in the writer's transaction: SQLite row triggers, PostgreSQL statement
triggers over transition tables (a purge or a COPY of a million rows is one INSERT of its days) and a
row trigger for conversation updates that change a counted column. The upgrade backfills the rollup
from the transcripts already stored (`bot.storage.rollup.rebuild_in`, the code the page trusts).

SQLite drops a table's triggers when a batch migration re-creates the table: a later migration that
alters `turns`, `conversations`, `agent_messages` or `ratings` in batch mode calls `create_triggers`
of this module again afterwards.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

DIMS = (("day", sa.Date, False), ("channel", sa.String(32), False), ("language", sa.String(8), True))
TABLES: dict[str, list[tuple[str, Any, bool]]] = {
    "rollup_conversations": [("started", sa.Integer, False), ("conversations", sa.Integer, False),
                             ("resolved", sa.Integer, False), ("handed_off", sa.Integer, False),
                             ("confirmed", sa.Integer, False)],
    "rollup_handoffs": [("reason", sa.String(64), False), ("conversations", sa.Integer, False)],
    "rollup_ratings": [("score", sa.Integer, False), ("ratings", sa.Integer, False)],
    "rollup_agent_times": [("conversation_id", sa.String(128), False), ("agent", sa.String(128), False),
                           ("first_s", sa.Float, True), ("handling_s", sa.Float, True)],
    "rollup_turns": [("messages", sa.Integer, False), ("up", sa.Integer, False), ("down", sa.Integer, False),
                     ("yes", sa.Integer, False), ("no", sa.Integer, False)],
    "rollup_intents": [("intent", sa.String(64), False), ("turns", sa.Integer, False)],
    "rollup_faq": [("entry", sa.String(128), False), ("uses", sa.Integer, False), ("down", sa.Integer, False),
                   ("no", sa.Integer, False)],
    "rollup_unanswered": [("question_key", sa.Text, False), ("turns", sa.Integer, False),
                          ("sample", sa.Text, False)],
}

# (table, event): the days it marks, as SELECTs over `{rows}` (SQLite: NEW/OLD; PostgreSQL: the
# transition table). `{day}` turns a timestamp into its UTC day in the dialect.
START = ("SELECT {day}(c.started_at) AS d FROM conversations c "
         "WHERE c.id IN (SELECT conversation_id FROM {rows})")
MARKS: dict[str, str] = {
    "turns": "SELECT {day}(r.at) AS d FROM {rows} r UNION " + START,
    "agent_messages": START,
    "ratings": START,
    # its turns' days too: they take their language from it (none when it is gone)
    "conversations": ("SELECT {day}(r.started_at) AS d FROM {rows} r UNION "
                      "SELECT {day}(t.at) FROM turns t WHERE t.conversation_id IN (SELECT id FROM {rows})"),
}
# A conversation update changes the page only through these columns; the language also moves its turns.
COUNTED = ("id", "channel", "language", "started_at", "handoff", "handoff_reason")


def _sqlite_triggers() -> list[str]:
    out = []
    for table, days in MARKS.items():
        for event, rows in (("INSERT", ["NEW"]), ("UPDATE", ["OLD", "NEW"]), ("DELETE", ["OLD"])):
            if table == "conversations" and event == "UPDATE":
                continue
            selects = []
            for r in rows:  # SQLite: the row's values stand in for a one-row table
                cols = {"turns": ("at", "conversation_id"), "conversations": ("started_at", "id")}.get(
                    table, ("conversation_id",))
                one = "(SELECT " + ", ".join(f"{r}.{c} AS {c}" for c in cols) + ")"
                selects.append(days.format(day="date", rows=one))
            out.append(f"CREATE TRIGGER rollup_mark_{table}_{event.lower()} AFTER {event} ON {table} "
                       f"BEGIN {_sqlite_mark(' UNION '.join(selects))} END")
    changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in COUNTED)
    days = ("SELECT date(OLD.started_at) AS d UNION SELECT date(NEW.started_at) UNION SELECT date(t.at) "
            "FROM turns t WHERE (OLD.language IS NOT NEW.language OR OLD.id IS NOT NEW.id) "
            "AND t.conversation_id IN (OLD.id, NEW.id)")
    out.append(f"CREATE TRIGGER rollup_mark_conversations_update AFTER UPDATE ON conversations "
               f"WHEN {changed} BEGIN {_sqlite_mark(days)} END")
    return out


def _sqlite_mark(days: str) -> str:
    """One mark per day: SQLite has one writer at a time, so a committed mark covers this change too."""
    return (f"INSERT INTO rollup_dirty_days (day) SELECT d FROM ({days}) "
            "WHERE d IS NOT NULL AND NOT EXISTS (SELECT 1 FROM rollup_dirty_days m WHERE m.day = d);")


PG_DAY = "rollup_utc_day"


def _pg_mark(days: str) -> str:
    """Append-only: concurrent writers never wait on a shared mark (duplicates go at the next refresh)."""
    return f"INSERT INTO rollup_dirty_days (day) SELECT DISTINCT d FROM ({days}) AS s WHERE d IS NOT NULL;"


def _pg_triggers() -> list[str]:
    out = [f"CREATE FUNCTION {PG_DAY}(ts timestamptz) RETURNS date LANGUAGE sql IMMUTABLE PARALLEL SAFE "
           "AS $$ SELECT (ts AT TIME ZONE 'UTC')::date $$"]
    for table, days in MARKS.items():
        for event, ref in (("INSERT", "NEW"), ("UPDATE", None), ("DELETE", "OLD")):
            if table == "conversations" and event == "UPDATE":
                continue
            name = f"rollup_mark_{table}_{event.lower()}"
            if ref is None:
                body = " UNION ".join(days.format(day=PG_DAY, rows=rows) for rows in ("old_rows", "new_rows"))
                referencing = "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"
            else:
                body = days.format(day=PG_DAY, rows=f"{ref.lower()}_rows")
                referencing = f"REFERENCING {ref} TABLE AS {ref.lower()}_rows"
            out.append(f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                       f"{_pg_mark(body)} RETURN NULL; END $$")
            out.append(f"CREATE TRIGGER {name} AFTER {event} ON {table} {referencing} FOR EACH STATEMENT "
                       f"EXECUTE FUNCTION {name}()")
    changed = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in COUNTED)
    days = (f"SELECT {PG_DAY}(OLD.started_at) AS d UNION SELECT {PG_DAY}(NEW.started_at) UNION "
            f"SELECT {PG_DAY}(t.at) FROM turns t WHERE (OLD.language IS DISTINCT FROM NEW.language "
            "OR OLD.id IS DISTINCT FROM NEW.id) AND t.conversation_id IN (OLD.id, NEW.id)")
    out.append("CREATE FUNCTION rollup_mark_conversations_update() RETURNS trigger LANGUAGE plpgsql AS $$ "
               f"BEGIN {_pg_mark(days)} RETURN NULL; END $$")
    out.append(f"CREATE TRIGGER rollup_mark_conversations_update AFTER UPDATE ON conversations FOR EACH ROW "
               f"WHEN ({changed}) EXECUTE FUNCTION rollup_mark_conversations_update()")
    return out


def _trigger_names() -> list[tuple[str, str]]:
    return [(f"rollup_mark_{t}_{e}", t) for t in MARKS for e in ("insert", "update", "delete")]


def create_triggers(ops: Any) -> None:
    dialect = ops.get_bind().dialect.name
    for ddl in _pg_triggers() if dialect == "postgresql" else _sqlite_triggers():
        ops.execute(sa.text(ddl))


def drop_triggers(ops: Any) -> None:
    dialect = ops.get_bind().dialect.name
    for name, table in _trigger_names():
        if dialect == "postgresql":
            ops.execute(sa.text(f"DROP TRIGGER IF EXISTS {name} ON {table}"))
            ops.execute(sa.text(f"DROP FUNCTION IF EXISTS {name}()"))
        else:
            ops.execute(sa.text(f"DROP TRIGGER IF EXISTS {name}"))
    if dialect == "postgresql":
        ops.execute(sa.text(f"DROP FUNCTION IF EXISTS {PG_DAY}(timestamptz)"))


def upgrade() -> None:
    op.create_table("rollup_dirty_days", sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                    sa.Column("day", sa.Date, nullable=False))
    op.create_index("ix_rollup_dirty_days_day", "rollup_dirty_days", ["day"])
    for table, columns in TABLES.items():
        op.create_table(table, *(sa.Column(n, t, nullable=null) for n, t, null in (*DIMS, *columns)))
        op.create_index(f"ix_{table}_day_channel", table, ["day", "channel"])
    create_triggers(op)
    from bot.storage.rollup import rebuild_in

    rebuild_in(op.get_bind())


def downgrade() -> None:
    drop_triggers(op)
    for table in reversed(TABLES):
        op.drop_index(f"ix_{table}_day_channel", table_name=table)
        op.drop_table(table)
    op.drop_index("ix_rollup_dirty_days_day", table_name="rollup_dirty_days")
    op.drop_table("rollup_dirty_days")
