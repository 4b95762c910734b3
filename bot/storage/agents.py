"""Agent accounts in SQL: the `agents` table read and written, nothing else. Password hashing, name
and role rules live in bot/handoff/agents.py, which calls this."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session as DbSession

from bot.storage.models import Agent


@dataclass(frozen=True)
class AgentRecord:
    """One row of `agents`, detached from the database."""

    id: int
    username: str
    display_name: str
    password_hash: str
    role: str
    active: bool


class UsernameTaken(ValueError):
    pass


class NoSuchAgent(LookupError):
    pass


class LastActiveAdmin(RuntimeError):
    """Disabling this account would leave no active admin."""


class AgentRecords:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(self, username: str, display_name: str, password_hash: str, role: str) -> AgentRecord:
        agent = Agent(username=username, display_name=display_name, password_hash=password_hash,
                      role=role, active=True)
        try:
            with DbSession(self.engine, expire_on_commit=False) as db, db.begin():
                db.add(agent)
        except IntegrityError as exc:
            raise UsernameTaken(username) from exc
        return _record(agent)

    def get(self, agent_id: int) -> AgentRecord | None:
        with DbSession(self.engine) as db:
            agent = db.get(Agent, agent_id)
            return _record(agent) if agent else None

    def by_username(self, username: str) -> AgentRecord | None:
        with DbSession(self.engine) as db:
            agent = db.scalar(select(Agent).where(Agent.username == username))
            return _record(agent) if agent else None

    def set_password_hash(self, agent_id: int, password_hash: str) -> AgentRecord:
        with DbSession(self.engine, expire_on_commit=False) as db, db.begin():
            agent = db.get(Agent, agent_id)
            if agent is None:
                raise NoSuchAgent(agent_id)
            agent.password_hash = password_hash
        return _record(agent)

    def set_active(self, agent_id: int, active: bool) -> AgentRecord:
        """Disable or enable an account; LastActiveAdmin instead of disabling the last active admin
        (checked under row locks: two admins disabling each other cannot both succeed)."""
        with DbSession(self.engine, expire_on_commit=False) as db, db.begin():
            agent = db.get(Agent, agent_id)
            if agent is None:
                raise NoSuchAgent(agent_id)
            if not active and agent.active and agent.role == "admin":
                admins = db.scalars(select(Agent.id).where(Agent.role == "admin", Agent.active.is_(True))
                                     .with_for_update())
                if len(list(admins)) <= 1:
                    raise LastActiveAdmin(agent_id)
            agent.active = active
        return _record(agent)

    def all(self) -> list[AgentRecord]:
        with DbSession(self.engine) as db:
            return [_record(a) for a in db.scalars(select(Agent).order_by(Agent.id))]

    def count_admins(self) -> int:
        with DbSession(self.engine) as db:
            return len(list(db.scalars(select(Agent.id).where(Agent.role == "admin"))))


def _record(agent: Agent) -> AgentRecord:
    return AgentRecord(agent.id, agent.username, agent.display_name, agent.password_hash, agent.role,
                       bool(agent.active))
