"""Agent accounts: argon2-hashed passwords, two roles (agent, admin)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session as DbSession

from bot.storage.models import Agent

ROLES = ("agent", "admin")
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")


@dataclass(frozen=True)
class AgentInfo:
    id: int
    username: str
    display_name: str
    role: str


class AgentError(ValueError):
    pass


class AgentStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.hasher = PasswordHasher()
        self._dummy = self.hasher.hash("timing-equaliser")

    def create(self, username: str, display_name: str, password: str, role: str = "agent") -> AgentInfo:
        username = username.strip().lower()
        if not _USERNAME.match(username):
            raise AgentError("usernames are 2-64 characters: letters, digits, '.', '_' or '-'")
        if role not in ROLES:
            raise AgentError(f"role must be one of {ROLES}")
        if len(password) < 10:
            raise AgentError("passwords need at least 10 characters")
        if not display_name.strip():
            raise AgentError("a display name is required")
        agent = Agent(username=username, display_name=display_name.strip()[:128],
                      password_hash=self.hasher.hash(password), role=role, active=True)
        try:
            with DbSession(self.engine, expire_on_commit=False) as db, db.begin():
                db.add(agent)
        except IntegrityError as exc:
            raise AgentError(f"username {username!r} is taken") from exc
        return _info(agent)

    def authenticate(self, username: str, password: str) -> AgentInfo | None:
        with DbSession(self.engine) as db:
            agent = db.scalar(select(Agent).where(Agent.username == username.strip().lower()))
        try:
            if agent is None or not agent.active:
                self.hasher.verify(self._dummy, password + "x")  # same cost for unknown users
                return None
            self.hasher.verify(agent.password_hash, password)
        except (VerificationError, InvalidHashError):
            return None
        return _info(agent)

    def get(self, agent_id: int) -> AgentInfo | None:
        with DbSession(self.engine) as db:
            agent = db.get(Agent, agent_id)
            return _info(agent) if agent and agent.active else None

    def all(self) -> list[AgentInfo]:
        with DbSession(self.engine) as db:
            return [_info(a) for a in db.scalars(select(Agent).order_by(Agent.id))]

    def count_admins(self) -> int:
        with DbSession(self.engine) as db:
            return len(list(db.scalars(select(Agent.id).where(Agent.role == "admin"))))


def _info(agent: Agent) -> AgentInfo:
    return AgentInfo(agent.id, agent.username, agent.display_name, agent.role)
