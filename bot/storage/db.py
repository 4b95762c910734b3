"""Engine, migrations and the transcript store (SQLite file by default, PostgreSQL by URL).

What is stored of a customer's words is masked first (bot.pii.mask_sensitive: card, IBAN, SSN and
resident ID numbers), whoever calls: turns, replies, form requests and agent messages. Transcripts
are kept for a retention period (`purge`) and erased on request (`erase`)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import bindparam, create_engine, delete, insert, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session as DbSession
from sqlalchemy.orm import sessionmaker

from bot.pii import mask_sensitive
from bot.resolution import ResolutionReport, TurnOutcome, report
from bot.storage import rollup
from bot.storage.models import AgentMessage, Conversation, FormRequest, Rating, TurnRecord
from bot.types import Turn

MIGRATIONS = Path(__file__).parent / "migrations"


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        return create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url, pool_pre_ping=True)


MIGRATION_LOCK = 0x5B07_0001  # PostgreSQL advisory-lock key: one migrating replica at a time


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (idempotent).

    Replicas starting together (a rolling upgrade, `docker compose up` with two apps) would race
    to create the same tables; on PostgreSQL they take a transaction-scoped advisory lock first,
    so the second waits and then finds the schema current. SQLite serialises writers itself."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def _masked(value: Any) -> Any:
    """Form slots and reply fields as stored: every string in them masked, at any depth."""
    if isinstance(value, str):
        return mask_sensitive(value)
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return value


class TranscriptStore:
    """Writes each turn once (a message id redelivered on its channel is ignored by a unique
    constraint; the same id from another channel is another message)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        # Built once, executed with parameters: building `.values(...)` per turn cost about 40 % of
        # record()'s CPU (cProfile against PostgreSQL); one statement object also keeps its cache key.
        upsert = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert
        self._new_conversation = upsert(Conversation).on_conflict_do_nothing(index_elements=["id"])
        self._new_turn = (upsert(TurnRecord)
                          .on_conflict_do_nothing(index_elements=["conversation_id", "channel",
                                                                  "message_id"])
                          .returning(TurnRecord.id))
        self._count_turn = (update(Conversation).where(Conversation.id == bindparam("b_id")).values(
            turns=Conversation.turns + 1, last_message_at=bindparam("b_at"),
            handoff=bindparam("b_handoff"), handoff_reason=bindparam("b_reason")))
        self._new_request = insert(FormRequest)

    def record(self, turn: Turn, handoff: bool = False, handoff_reason: str | None = None) -> None:
        """Four Core statements in one transaction, no ORM unit of work (it was a fifth of a
        replica's CPU under load). The conversation row is created with ON CONFLICT DO NOTHING, so
        two replicas writing a new conversation's first turns never collide, and its turn count
        moves in SQL (`turns + 1`), never by read-modify-write."""
        at = datetime.fromtimestamp(turn.at, UTC)
        parse = turn.parse
        hit = turn.action.faq_hit
        cid = turn.conversation_id
        with self.engine.begin() as conn:
            conn.execute(self._new_conversation, {"id": cid, "channel": turn.channel, "started_at": at,
                                                  "last_message_at": at, "turns": 0, "handoff": False})
            inserted = conn.execute(self._new_turn, {
                "conversation_id": cid, "channel": turn.channel, "message_id": turn.message_id,
                "at": at, "user_text": mask_sensitive(turn.text),
                "intent": parse.intent if parse else None,
                "confidence": parse.confidence if parse else None,
                "out_of_scope": bool(parse and parse.out_of_scope),
                "action": turn.action.kind, "action_name": turn.action.name,
                "understood": turn.action.understood,
                "faq_entry": hit.entry_id if hit else None, "faq_score": hit.score if hit else None,
                "replies": [_masked(r.model_dump()) for r in turn.replies],
                "ranking": [r.model_dump() for r in parse.ranking] if parse else [],
                "latency_ms": turn.latency_ms, "feedback": turn.action.feedback,
            }).first()
            # Not `rowcount`: with the implicit RETURNING of PostgreSQL it reads 1 even when ON
            # CONFLICT inserted nothing, so a redelivered message was counted twice (measured).
            if inserted is None:  # a redelivered message id: already recorded
                return
            conn.execute(self._count_turn, {"b_id": cid, "b_at": at, "b_handoff": handoff,
                                            "b_reason": handoff_reason})
            if turn.action.submitted:
                conn.execute(self._new_request, {
                    "conversation_id": cid, "form": turn.action.submitted["form"],
                    "slots": _masked(turn.action.submitted["slots"]), "created_at": at})

    def record_agent_message(self, conversation_id: str, agent: str, text: str, at: float) -> None:
        with self._sessions.begin() as db:
            db.add(AgentMessage(conversation_id=conversation_id, agent=agent, text=mask_sensitive(text),
                                at=datetime.fromtimestamp(at, UTC)))

    def agent_messages(self, conversation_id: str) -> list[AgentMessage]:
        with DbSession(self.engine) as db:
            return list(db.scalars(select(AgentMessage).where(
                AgentMessage.conversation_id == conversation_id).order_by(AgentMessage.id)))

    def turns(self, conversation_id: str) -> list[TurnRecord]:
        with DbSession(self.engine) as db:
            return list(db.scalars(select(TurnRecord).where(
                TurnRecord.conversation_id == conversation_id).order_by(TurnRecord.id)))

    def set_vote(self, conversation_id: str, message_id: str, vote: str) -> bool:
        """The customer's thumbs ("up"/"down") on the answer to their message `message_id`; False
        when no such turn is recorded."""
        with self.engine.begin() as conn:
            done = conn.execute(update(TurnRecord).where(
                TurnRecord.conversation_id == conversation_id,
                TurnRecord.message_id == message_id).values(vote=vote))
            return bool(done.rowcount)

    def set_customer_email(self, conversation_id: str, email: str, channel: str = "web") -> None:
        """The address the customer left for follow-up."""
        self._update_conversation(conversation_id, channel, customer_email=email)

    def set_handoff(self, conversation_id: str, reason: str, channel: str = "web") -> None:
        """A hand-off that no turn recorded (the customer sent a photo): the conversation's row
        says so, for the console's analytics."""
        self._update_conversation(conversation_id, channel, handoff=True, handoff_reason=reason,
                                  last_message_at=datetime.now(UTC))

    def _update_conversation(self, conversation_id: str, channel: str, **values: Any) -> None:
        """Set `values` on the conversation's row, created first if no turn has been recorded yet."""
        at = datetime.now(UTC)
        with self.engine.begin() as conn:
            conn.execute(self._new_conversation, {"id": conversation_id, "channel": channel, "started_at": at,
                                                  "last_message_at": at, "turns": 0, "handoff": False})
            conn.execute(update(Conversation).where(Conversation.id == conversation_id).values(**values))

    def add_rating(self, conversation_id: str, score: int, comment: str | None, agent: str | None) -> Rating:
        """The customer's CSAT rating (1..5, an optional comment) of a conversation an agent closed."""
        with self._sessions.begin() as db:
            rating = Rating(conversation_id=conversation_id, score=score, agent=agent,
                            comment=mask_sensitive(comment) if comment else None)
            db.add(rating)
        return rating

    def ratings(self, conversation_id: str) -> list[Rating]:
        with DbSession(self.engine) as db:
            return list(db.scalars(select(Rating).where(
                Rating.conversation_id == conversation_id).order_by(Rating.id)))

    def resolution(self, since: datetime | None = None) -> ResolutionReport:
        """The bot's resolution rate (bot.resolution's definition) over the conversations started
        since `since` (all when None)."""
        q = (select(TurnRecord.conversation_id, TurnRecord.action, TurnRecord.action_name,
                    TurnRecord.understood, TurnRecord.feedback)
             .order_by(TurnRecord.conversation_id, TurnRecord.id))
        if since is not None:
            q = q.join(Conversation, Conversation.id == TurnRecord.conversation_id).where(
                Conversation.started_at >= since)
        by_conversation: dict[str, list[TurnOutcome]] = {}
        with self.engine.connect() as conn:
            for cid, action, name, understood, feedback in conn.execute(q):
                by_conversation.setdefault(cid, []).append(TurnOutcome(action, name, understood, feedback))
        return report(by_conversation.values())

    def requests(self, conversation_id: str | None = None) -> list[FormRequest]:
        with DbSession(self.engine) as db:
            q = select(FormRequest).order_by(FormRequest.id)
            if conversation_id:
                q = q.where(FormRequest.conversation_id == conversation_id)
            return list(db.scalars(q))

    def erase(self, conversation_id: str) -> dict[str, int]:
        """The right to erasure: every row of one conversation, in every table; rows per table."""
        tables = (("turns", TurnRecord), ("form_requests", FormRequest), ("agent_messages", AgentMessage),
                  ("ratings", Rating))
        with self.engine.begin() as conn:
            counts = {name: conn.execute(delete(table).where(table.conversation_id == conversation_id)
                                         ).rowcount for name, table in tables}
            counts["conversations"] = conn.execute(
                delete(Conversation).where(Conversation.id == conversation_id)).rowcount
        rollup.refresh(self.engine)  # the analytics rollup forgets it now, not at the next page view
        return counts

    def purge(self, before: datetime) -> dict[str, int]:
        """Retention: delete what was said before `before` (turns, form requests, agent messages)
        and the conversations whose last customer message is older, with all their turns and
        requests; rows per table. By row, not only by conversation: a WhatsApp or Telegram
        conversation never ends, and its old turns must go all the same."""
        stale = select(Conversation.id).where(Conversation.last_message_at < before)
        with self.engine.begin() as conn:
            counts = {
                "turns": conn.execute(delete(TurnRecord).where(
                    or_(TurnRecord.at < before, TurnRecord.conversation_id.in_(stale)))).rowcount,
                "form_requests": conn.execute(delete(FormRequest).where(
                    or_(FormRequest.created_at < before, FormRequest.conversation_id.in_(stale)))).rowcount,
                "agent_messages": conn.execute(delete(AgentMessage).where(AgentMessage.at < before)).rowcount,
                "ratings": conn.execute(delete(Rating).where(Rating.created_at < before)).rowcount,
            }
            counts["conversations"] = conn.execute(
                delete(Conversation).where(Conversation.last_message_at < before)).rowcount
        rollup.refresh(self.engine)
        return counts

    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
            return True
        except Exception:
            return False
