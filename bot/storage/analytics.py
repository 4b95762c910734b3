"""The console's analytics: what a support lead reads every morning, as SQL over the transcripts.

Every number is an aggregate computed by the database (SQLite or PostgreSQL), per day or per ISO
week (UTC, weeks start on Monday), filtered by date range, channel and language:

- conversations (by the day they started) and customer messages (turns, by the day they were sent);
- the bot's automated resolution rate: `bot.resolution`'s definition, written as one aggregate per
  conversation (`resolved_sql`) so that it runs in the database; a test checks that it agrees with
  `TranscriptStore.resolution` on the same data;
- hand-off rate by reason; thumbs (`turns.vote`) and "Did that answer your question?" (`turns.feedback`);
  CSAT ratings (`ratings`, 1..5) when there are any;
- agents' median first response and handling time: from the conversation's hand-off (its first
  `handoff` turn) to the agent's first and last message;
- top intents, top unanswered questions (not understood, out of scope or handed off; grouped by
  their normalised text), the FAQ entries most used and those with the most negative feedback.

These queries over the transcripts are the reference: the console reads the same report from the
per-day rollup (bot/storage/analytics_rollup.py, bot/storage/rollup.py), and a test checks that the two
agree. The indexes they use are created by migration 0008 (benchmarks/analytics.py measures both).
"""

from __future__ import annotations

import re
import statistics
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, cast, func, or_, select, text
from sqlalchemy import Float as SaFloat
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql import Select

from bot.storage.models import AgentMessage, Conversation, Rating, TurnRecord

BUCKETS = ("day", "week")
DEFAULT_DAYS = 30
MAX_DAYS = 366 * 3
TOP = 10

# Written on the page and in docs/analytics.md; bot/resolution.py is the one definition.
RESOLUTION_DEFINITION = (
    "A conversation is resolved by the bot when no turn of it was handed off to a person and either "
    "the customer confirmed an answer (\"Did that answer your question?\" → yes) after the last answer "
    "they rejected, or the bot answered at least once (an FAQ entry, a composed answer or a submitted "
    "form), no answer was rejected (\"no\") or asked for again (the same FAQ entry twice in a row), and "
    "the customer's last message was understood. Rate = resolved ÷ conversations started in the period.")


# (question, count) pairs -> (question, count, other phrasings) clusters, biggest first.
GroupQuestions = Callable[[list[tuple[str, int]]], list[tuple[str, int, list[str]]]]


@dataclass(frozen=True)
class Filters:
    """What the page asks for: `start`..`end` (dates, both included, UTC), one channel and one language
    (None: all), and the bucket ("day" or "week")."""

    start: date
    end: date
    channel: str | None = None
    language: str | None = None
    bucket: str = "day"

    @classmethod
    def default(cls, today: date | None = None, **kw: Any) -> Filters:
        today = today or datetime.now(UTC).date()
        return cls(start=today - timedelta(days=DEFAULT_DAYS - 1), end=today, **kw)

    @property
    def since(self) -> datetime:
        return datetime.combine(self.start, time.min, UTC)

    @property
    def until(self) -> datetime:  # exclusive
        return datetime.combine(self.end + timedelta(days=1), time.min, UTC)


@dataclass
class Report:
    filters: dict[str, Any]
    definition: str
    totals: dict[str, Any]
    series: list[dict[str, Any]]
    handoff_reasons: list[dict[str, Any]]
    satisfaction: dict[str, Any]
    ratings: dict[str, Any]
    agents: dict[str, Any]
    top_intents: list[dict[str, Any]]
    unanswered: list[dict[str, Any]]
    faq_most_used: list[dict[str, Any]]
    faq_most_negative: list[dict[str, Any]]
    channels: list[str] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- SQL building blocks ----------------------------------------------------------------------
def _bucket(col: Any, unit: str, dialect: str) -> ColumnElement[Any]:
    """The day (or the Monday of the ISO week) of a timestamp, as 'YYYY-MM-DD', in UTC."""
    if dialect == "postgresql":
        return func.to_char(func.date_trunc(unit, func.timezone("UTC", col)), "YYYY-MM-DD")
    if unit == "week":
        return func.date(col, "-6 days", "weekday 1")
    return func.date(col)


def seconds_between(later: Any, earlier: Any, dialect: str) -> ColumnElement[Any]:
    if dialect == "postgresql":
        return func.extract("epoch", later - earlier)
    return (func.julianday(later) - func.julianday(earlier)) * 86400.0


def answered_sql() -> ColumnElement[bool]:
    """bot.resolution.TurnOutcome.answered, in SQL."""
    t = TurnRecord
    return or_(t.action == "faq_answer", and_(t.action == "generate", t.action_name == "answered"),
               and_(t.action == "fill_form", t.action_name.like("%:submitted")))


def resolution_columns() -> tuple[ColumnElement[Any], ColumnElement[Any], ColumnElement[Any]]:
    """Aggregates over one conversation's turns (ordered by id): handed off, resolved by the bot,
    confirmed by a "yes" (each 0 or 1).

    bot.resolution.resolved in SQL: not handed off, and (the last "yes" comes after the last
    "no"/"repeated", or there is no rejection, some turn answered and the last turn was understood)."""
    t = TurnRecord
    last_yes = func.coalesce(func.max(case((t.feedback == "yes", t.id))), -1)
    last_bad = func.coalesce(func.max(case((t.feedback.in_(("no", "repeated")), t.id))), -1)
    handed = func.max(case((t.action == "handoff", 1), else_=0))
    answered = func.max(case((answered_sql(), 1), else_=0))
    last_understood = func.max(case((t.understood.is_(True), t.id))) == func.max(t.id)
    resolved = case((and_(handed == 0, or_(last_yes > last_bad,
                                           and_(last_bad == -1, answered == 1, last_understood))), 1),
                    else_=0)
    return handed, resolved, func.max(case((t.feedback == "yes", 1), else_=0))


def resolution_per_conversation() -> Select[Any]:
    """One row per conversation that has turns: `cid`, `handed`, `resolved`, `confirmed`."""
    handed, resolved, confirmed = resolution_columns()
    return (select(TurnRecord.conversation_id.label("cid"), handed.label("handed"),
                   resolved.label("resolved"), confirmed.label("confirmed"))
            .group_by(TurnRecord.conversation_id))


UNANSWERED_SQL = "(NOT turns.understood OR turns.out_of_scope OR turns.action = 'handoff')"
_PUNCT = re.compile(r"[^\w\s]+", re.UNICODE)
_SPACE = re.compile(r"\s+")


def normalise(question: str) -> str:
    """The grouping key of an unanswered question: case, accents' width forms, punctuation and
    runs of spaces do not matter."""
    folded = unicodedata.normalize("NFKC", question).casefold()
    return _SPACE.sub(" ", _PUNCT.sub(" ", folded)).strip()


class Analytics:
    """The queries behind /console/analytics, over one engine."""

    def __init__(self, engine: Engine, group: GroupQuestions | None = None) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self.group = group  # merges phrasings of one question (the web layer's embedder); None: by text

    # Filters ------------------------------------------------------------------------------
    def _conversation_filter(self, f: Filters) -> list[ColumnElement[bool]]:
        c = Conversation
        where = [c.started_at >= f.since, c.started_at < f.until]
        if f.channel:
            where.append(c.channel == f.channel)
        if f.language:
            where.append(c.language == f.language)
        return where

    def _turns(self, f: Filters, *cols: Any, where: list[Any] | None = None) -> Select[Any]:
        """Turns sent in the period, on the channel; joined to their conversation for the language."""
        t = TurnRecord
        q = select(*cols).select_from(t).where(t.at >= f.since, t.at < f.until, *(where or []))
        if f.channel:
            q = q.where(t.channel == f.channel)
        if f.language:
            q = (q.join(Conversation, Conversation.id == t.conversation_id)
                 .where(Conversation.language == f.language))
        return q

    # Queries --------------------------------------------------------------------------------
    def conversations_by_bucket(self, conn: Connection, f: Filters) -> dict[str, dict[str, int]]:
        """Conversations started, resolved, confirmed and handed off, per bucket of their start: the
        conversations of the period first (an index range), then only their turns. A conversation row
        without turns (never written: `record` creates it with its first turn) is not counted, as in
        `TranscriptStore.resolution`."""
        c, t = Conversation, TurnRecord
        handed, resolved, confirmed = resolution_columns()
        b = _bucket(c.started_at, f.bucket, self.dialect).label("b")
        per = (select(b, handed.label("handed"), resolved.label("resolved"), confirmed.label("confirmed"))
               .select_from(c).join(t, t.conversation_id == c.id)
               .where(*self._conversation_filter(f)).group_by(c.id, c.started_at)).subquery()
        q = (select(per.c.b, func.count(), func.coalesce(func.sum(per.c.resolved), 0),
                    func.coalesce(func.sum(per.c.handed), 0), func.coalesce(func.sum(per.c.confirmed), 0))
             .group_by(per.c.b))
        return {row[0]: {"conversations": row[1], "resolved": int(row[2]), "handed_off": int(row[3]),
                         "confirmed": int(row[4])} for row in conn.execute(q)}

    def turns_by_bucket(self, conn: Connection, f: Filters) -> dict[str, dict[str, int]]:
        t = TurnRecord
        b = _bucket(t.at, f.bucket, self.dialect).label("b")

        def n(cond: ColumnElement[bool]) -> Any:
            return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)

        q = self._turns(f, b, func.count(), n(t.vote == "up"), n(t.vote == "down"),
                        n(t.feedback == "yes"), n(t.feedback == "no")).group_by(b)
        return {row[0]: {"messages": row[1], "up": int(row[2]), "down": int(row[3]), "yes": int(row[4]),
                         "no": int(row[5])} for row in conn.execute(q)}

    def handoff_reasons(self, conn: Connection, f: Filters) -> list[tuple[str, int]]:
        c = Conversation
        reason = func.coalesce(c.handoff_reason, "unknown")
        q = (select(reason, func.count()).where(c.handoff.is_(True), *self._conversation_filter(f))
             .group_by(reason).order_by(func.count().desc(), reason))
        return [(r, n) for r, n in conn.execute(q)]

    def rating_counts(self, conn: Connection, f: Filters) -> dict[int, int]:
        """Ratings per score of the conversations started in the period."""
        r = Rating
        q = (select(r.score, func.count()).select_from(r)
             .join(Conversation, Conversation.id == r.conversation_id)
             .where(*self._conversation_filter(f)).group_by(r.score))
        return {int(s): int(n) for s, n in conn.execute(q)}

    def ratings(self, conn: Connection, f: Filters) -> dict[str, Any]:
        counts = self.rating_counts(conn, f)
        total = sum(counts.values())
        average = round(sum(s * n for s, n in counts.items()) / total, 2) if total else None
        return {"count": total, "average": average,
                "distribution": {str(s): counts.get(s, 0) for s in range(1, 6)}}

    def agent_rows(self, f: Filters) -> Any:
        """One row per handed-off conversation of the period and agent: `cid`, `agent`, `first` and
        `handling` (seconds from the conversation's first `handoff` turn to the agent's first and last
        message), as a subquery."""
        t, m = TurnRecord, AgentMessage
        handoffs = (select(t.conversation_id.label("cid"), func.min(t.at).label("at"))
                    .join(Conversation, Conversation.id == t.conversation_id)
                    .where(t.action == "handoff", *self._conversation_filter(f))
                    .group_by(t.conversation_id)).subquery()
        per_agent = (select(m.conversation_id.label("cid"), m.agent.label("agent"),
                            seconds_between(func.min(m.at), handoffs.c.at, self.dialect).label("first"),
                            seconds_between(func.max(m.at), handoffs.c.at, self.dialect).label("handling"))
                     .join(handoffs, handoffs.c.cid == m.conversation_id)
                     .where(m.at >= handoffs.c.at)
                     .group_by(m.conversation_id, m.agent, handoffs.c.at)).subquery()
        return per_agent

    def agent_times(self, conn: Connection, f: Filters) -> dict[str, Any]:
        """Median seconds from the hand-off (the conversation's first `handoff` turn) to the first and
        the last agent message, overall and per agent (the agent of the messages)."""
        per_agent = self.agent_rows(f)
        per_conv = (select(per_agent.c.cid, func.min(per_agent.c.first).label("first"),
                           func.max(per_agent.c.handling).label("handling"))
                    .group_by(per_agent.c.cid)).subquery()
        if self.dialect == "postgresql":
            def med(col: Any) -> Any:
                return func.percentile_cont(0.5).within_group(cast(col, SaFloat))
            overall = conn.execute(select(func.count(), med(per_conv.c.first),
                                          med(per_conv.c.handling))).one()
            rows = conn.execute(select(per_agent.c.agent, func.count(), med(per_agent.c.first),
                                       med(per_agent.c.handling)).group_by(per_agent.c.agent)
                                .order_by(per_agent.c.agent)).all()
            agents = [(a, n, fr, h) for a, n, fr, h in rows]
            total = (overall[0], overall[1], overall[2])
        else:  # SQLite has no percentile: the durations come back, one per conversation (and agent)
            convs = conn.execute(select(per_conv.c.first, per_conv.c.handling)).all()
            total = (len(convs), _median([r[0] for r in convs]), _median([r[1] for r in convs]))
            by: dict[str, list[tuple[float, float]]] = {}
            for a, fr, h in conn.execute(select(per_agent.c.agent, per_agent.c.first, per_agent.c.handling)):
                by.setdefault(a, []).append((fr, h))
            agents = [(a, len(v), _median([x[0] for x in v]), _median([x[1] for x in v]))
                      for a, v in sorted(by.items())]

        def secs(v: Any) -> float | None:
            return None if v is None else round(float(v), 1)

        return {"conversations": total[0], "median_first_response_s": secs(total[1]),
                "median_handling_s": secs(total[2]),
                "by_agent": [{"agent": a, "conversations": n, "median_first_response_s": secs(fr),
                              "median_handling_s": secs(h)} for a, n, fr, h in agents]}

    def top_intents(self, conn: Connection, f: Filters, limit: int = TOP) -> list[tuple[str, int]]:
        t = TurnRecord
        q = (self._turns(f, t.intent, func.count(), where=[t.intent.is_not(None)])
             .group_by(t.intent).order_by(func.count().desc(), t.intent).limit(limit))
        return [(i, n) for i, n in conn.execute(q)]

    def unanswered_groups(self, conn: Connection, f: Filters) -> list[tuple[str, int, str]]:
        """The 500 biggest groups of unanswered turns by lower-cased text: key, turns, an example."""
        t = TurnRecord
        key = func.lower(func.trim(t.user_text))
        q = (self._turns(f, key, func.count(), func.min(t.user_text), where=[text(UNANSWERED_SQL)])
             .group_by(key).order_by(func.count().desc(), key).limit(500))
        return [(k, int(n), sample) for k, n, sample in conn.execute(q)]

    def unanswered(self, conn: Connection, f: Filters, limit: int = TOP) -> list[dict[str, Any]]:
        """The review stream grouped: the database groups by lower-cased text (the 500 biggest groups
        come back), then `normalise` merges what differs only in punctuation, spacing or width."""
        groups: Counter[str] = Counter()
        example: dict[str, str] = {}
        for _, n, sample in self.unanswered_groups(conn, f):
            k = normalise(sample)
            groups[k] += n
            example.setdefault(k, sample)
        if self.group is not None:  # then by meaning: the clusters a support lead reads
            merged = self.group([(example[k], n) for k, n in groups.items()])
            return [{"question": q, "count": n, "similar": similar} for q, n, similar in merged[:limit]]
        ranked = sorted(groups.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
        return [{"question": example[k], "count": n, "similar": []} for k, n in ranked]

    def faq_usage(self, conn: Connection, f: Filters) -> list[tuple[str, int, int, int]]:
        t = TurnRecord
        q = self._turns(f, t.faq_entry, func.count(),
                        func.coalesce(func.sum(case((t.vote == "down", 1), else_=0)), 0),
                        func.coalesce(func.sum(case((t.feedback == "no", 1), else_=0)), 0),
                        where=[t.faq_entry.is_not(None)]).group_by(t.faq_entry)
        return [(e, n, int(d), int(no)) for e, n, d, no in conn.execute(q)]

    def options(self, conn: Connection) -> tuple[list[str], list[str]]:
        c = Conversation
        channels = [r for (r,) in conn.execute(select(c.channel).distinct().order_by(c.channel)) if r]
        languages = [r for (r,) in conn.execute(select(c.language).where(c.language.is_not(None))
                                                .distinct().order_by(c.language)) if r]
        return channels, languages

    # The page -------------------------------------------------------------------------------
    def report(self, f: Filters) -> Report:
        """The whole page, from the transcripts (the reference; the console reads
        bot.storage.analytics_rollup's subclass, which overrides the queries)."""
        with self.engine.connect() as conn:
            convs = self.conversations_by_bucket(conn, f)
            turns = self.turns_by_bucket(conn, f)
            reasons = self.handoff_reasons(conn, f)
            ratings = self.ratings(conn, f)
            agents = self.agent_times(conn, f)
            intents = self.top_intents(conn, f)
            unanswered = self.unanswered(conn, f)
            faq = self.faq_usage(conn, f)
            channels, languages = self.options(conn)
        series: list[dict[str, Any]] = []
        for b in _buckets(f):
            cv = convs.get(b, {})
            tv = turns.get(b, {})
            n = cv.get("conversations", 0)
            done, handed = cv.get("resolved", 0), cv.get("handed_off", 0)
            series.append({"bucket": b, "conversations": n, "messages": tv.get("messages", 0),
                           "resolved": done, "resolution_rate": _rate(done, n),
                           "handed_off": handed, "handoff_rate": _rate(handed, n),
                           "confirmed": cv.get("confirmed", 0),
                           "up": tv.get("up", 0), "down": tv.get("down", 0), "yes": tv.get("yes", 0),
                           "no": tv.get("no", 0)})
        counted = ("conversations", "messages", "resolved", "handed_off", "confirmed",
                   "up", "down", "yes", "no")
        total: dict[str, int] = {k: sum(int(s[k]) for s in series) for k in counted}
        n = total["conversations"]
        totals = {**total, "resolution_rate": _rate(total["resolved"], n),
                  "handoff_rate": _rate(total["handed_off"], n)}
        votes = total["up"] + total["down"]
        answers = total["yes"] + total["no"]
        satisfaction = {"up": total["up"], "down": total["down"], "thumbs_up_rate": _rate(total["up"], votes),
                        "yes": total["yes"], "no": total["no"],
                        "answered_yes_rate": _rate(total["yes"], answers)}
        used = sorted(faq, key=lambda r: (-r[1], r[0]))[:TOP]
        negative = sorted((r for r in faq if r[2] + r[3]), key=lambda r: (-(r[2] + r[3]), -r[1], r[0]))[:TOP]
        return Report(
            filters={"from": f.start.isoformat(), "to": f.end.isoformat(), "channel": f.channel,
                     "language": f.language, "bucket": f.bucket},
            definition=RESOLUTION_DEFINITION, totals=totals, series=series,
            handoff_reasons=[{"reason": r, "conversations": c, "rate": _rate(c, n)} for r, c in reasons],
            satisfaction=satisfaction, ratings=ratings, agents=agents,
            top_intents=[{"intent": i, "turns": c} for i, c in intents], unanswered=unanswered,
            faq_most_used=[{"entry": e, "uses": u, "down": d, "no": no} for e, u, d, no in used],
            faq_most_negative=[{"entry": e, "uses": u, "down": d, "no": no, "negative": d + no}
                               for e, u, d, no in negative],
            channels=channels, languages=languages)


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _median(values: list[Any]) -> float | None:
    vals = [float(v) for v in values if v is not None]
    return statistics.median(vals) if vals else None


def _buckets(f: Filters) -> list[str]:
    """Every bucket of the period, empty ones included (a chart without gaps)."""
    day = f.start if f.bucket == "day" else f.start - timedelta(days=f.start.weekday())
    step = timedelta(days=1 if f.bucket == "day" else 7)
    out = []
    while day <= f.end:
        out.append(day.isoformat())
        day += step
    return out


__all__ = ["BUCKETS", "DEFAULT_DAYS", "MAX_DAYS", "RESOLUTION_DEFINITION", "UNANSWERED_SQL", "Analytics",
           "Filters", "Report", "normalise", "resolution_columns", "seconds_between"]
