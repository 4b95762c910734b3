"""The analytics page's queries over the rollup (bot/storage/rollup.py) instead of the transcripts.

Same report, same shapes: each query of `Analytics` is overridden to sum the per-day rollup rows
(a few thousand at a million turns) rather than scan the turns; the page's assembly is inherited.
`report` first refreshes the days changed since the last refresh. A test checks that this report
equals `Analytics`' (the reference SQL over the transcripts) on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Table, func, select
from sqlalchemy.engine import Connection

from bot.storage import rollup
from bot.storage.analytics import TOP, Analytics, Filters, Report


def _bucket(day: date, unit: str) -> str:
    """The day, or the Monday of its ISO week, as 'YYYY-MM-DD' (what the SQL buckets give)."""
    return (day if unit == "day" else day - timedelta(days=day.weekday())).isoformat()


class RollupAnalytics(Analytics):
    """`Analytics` read from the rollup tables; refreshed before each report."""

    def report(self, f: Filters) -> Report:
        rollup.refresh(self.engine)
        return super().report(f)

    def _where(self, table: Table, f: Filters) -> list[ColumnElement[bool]]:
        where = [table.c.day >= f.start, table.c.day <= f.end]
        if f.channel:
            where.append(table.c.channel == f.channel)
        if f.language:
            where.append(table.c.language == f.language)
        return where

    def _by_bucket(self, conn: Connection, table: Table, f: Filters, names: tuple[str, ...]
                   ) -> dict[str, dict[str, int]]:
        """Sums of `names` per bucket: the database sums per day, the buckets are summed here."""
        q = (select(table.c.day, *(func.sum(table.c[n]) for n in names)).where(*self._where(table, f))
             .group_by(table.c.day))
        out: dict[str, dict[str, int]] = {}
        for day, *sums in conn.execute(q):
            row = out.setdefault(_bucket(day, f.bucket), dict.fromkeys(names, 0))
            for n, v in zip(names, sums, strict=True):
                row[n] += int(v or 0)
        return out

    def conversations_by_bucket(self, conn: Connection, f: Filters) -> dict[str, dict[str, int]]:
        t = rollup.conversations
        got = self._by_bucket(conn, t, f, ("conversations", "resolved", "handed_off", "confirmed"))
        return {b: v for b, v in got.items() if v["conversations"]}

    def turns_by_bucket(self, conn: Connection, f: Filters) -> dict[str, dict[str, int]]:
        return self._by_bucket(conn, rollup.turns, f, ("messages", "up", "down", "yes", "no"))

    def handoff_reasons(self, conn: Connection, f: Filters) -> list[tuple[str, int]]:
        t = rollup.handoffs
        n = func.sum(t.c.conversations)
        q = (select(t.c.reason, n).where(*self._where(t, f)).group_by(t.c.reason)
             .order_by(n.desc(), t.c.reason))
        return [(r, int(c)) for r, c in conn.execute(q)]

    def rating_counts(self, conn: Connection, f: Filters) -> dict[int, int]:
        t = rollup.ratings
        q = select(t.c.score, func.sum(t.c.ratings)).where(*self._where(t, f)).group_by(t.c.score)
        return {int(s): int(n) for s, n in conn.execute(q)}

    def agent_rows(self, f: Filters) -> Any:
        t = rollup.agent_times
        return (select(t.c.conversation_id.label("cid"), t.c.agent.label("agent"), t.c.first_s.label("first"),
                       t.c.handling_s.label("handling")).where(*self._where(t, f))).subquery()

    def top_intents(self, conn: Connection, f: Filters, limit: int = TOP) -> list[tuple[str, int]]:
        t = rollup.intents
        n = func.sum(t.c.turns)
        q = (select(t.c.intent, n).where(*self._where(t, f)).group_by(t.c.intent)
             .order_by(n.desc(), t.c.intent).limit(limit))
        return [(i, int(c)) for i, c in conn.execute(q)]

    def unanswered_groups(self, conn: Connection, f: Filters) -> list[tuple[str, int, str]]:
        t = rollup.unanswered
        n = func.sum(t.c.turns)
        q = (select(t.c.question_key, n, func.min(t.c.sample)).where(*self._where(t, f))
             .group_by(t.c.question_key).order_by(n.desc(), t.c.question_key).limit(500))
        return [(k, int(c), sample) for k, c, sample in conn.execute(q)]

    def faq_usage(self, conn: Connection, f: Filters) -> list[tuple[str, int, int, int]]:
        t = rollup.faq
        q = (select(t.c.entry, func.sum(t.c.uses), func.sum(t.c.down), func.sum(t.c.no))
             .where(*self._where(t, f)).group_by(t.c.entry))
        return [(e, int(u), int(d), int(no)) for e, u, d, no in conn.execute(q)]

    def options(self, conn: Connection) -> tuple[list[str], list[str]]:
        t = rollup.conversations
        channels = [r for (r,) in conn.execute(select(t.c.channel).distinct().order_by(t.c.channel)) if r]
        languages = [r for (r,) in conn.execute(select(t.c.language).where(t.c.language.is_not(None))
                                                .distinct().order_by(t.c.language)) if r]
        return channels, languages


__all__ = ["RollupAnalytics"]
