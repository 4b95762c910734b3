"""Agent accounts: argon2-hashed passwords, two roles (agent, admin), and a switch that disables
an account without deleting it (its name stays taken and its messages keep their author)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

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
    active: bool = True
    # Changes with every password change (a digest of the salted hash): a console session made
    # with another stamp is over, whoever changed the password and however.
    stamp: str = field(default="", repr=False)


class AgentError(ValueError):
    pass


class UnknownAgent(AgentError):
    pass


class LastAdmin(AgentError):
    """Disabling this account would leave nobody who can manage agents from the console."""


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
        _check_password(password)
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
        """A usable agent: None for an unknown or disabled account."""
        with DbSession(self.engine) as db:
            agent = db.get(Agent, agent_id)
            return _info(agent) if agent and agent.active else None

    def by_username(self, username: str) -> AgentInfo | None:
        """Any account, disabled ones too (for admins, who enable them again)."""
        with DbSession(self.engine) as db:
            agent = db.scalar(select(Agent).where(Agent.username == username.strip().lower()))
            return _info(agent) if agent else None

    def set_password(self, agent_id: int, new: str) -> AgentInfo:
        """A new password (the caller ends the agent's console sessions; the stamp changes too)."""
        _check_password(new)
        password_hash = self.hasher.hash(new)
        with DbSession(self.engine, expire_on_commit=False) as db, db.begin():
            agent = db.get(Agent, agent_id)
            if agent is None:
                raise UnknownAgent(f"no agent {agent_id}")
            agent.password_hash = password_hash
        return _info(agent)

    def set_active(self, agent_id: int, active: bool) -> AgentInfo:
        """Disable (no log-in, `get` gives None) or enable an account; the last active admin stays."""
        with DbSession(self.engine, expire_on_commit=False) as db, db.begin():
            agent = db.get(Agent, agent_id)
            if agent is None:
                raise UnknownAgent(f"no agent {agent_id}")
            if not active and agent.active and agent.role == "admin":
                admins = db.scalars(select(Agent.id).where(Agent.role == "admin", Agent.active.is_(True))
                                     .with_for_update())  # two admins disabling each other
                if len(list(admins)) <= 1:
                    raise LastAdmin("this is the last active admin: make another admin first")
            agent.active = active
        return _info(agent)

    def all(self) -> list[AgentInfo]:
        with DbSession(self.engine) as db:
            return [_info(a) for a in db.scalars(select(Agent).order_by(Agent.id))]

    def count_admins(self) -> int:
        with DbSession(self.engine) as db:
            return len(list(db.scalars(select(Agent.id).where(Agent.role == "admin"))))


def _check_password(password: str) -> None:
    if len(password) < 10:
        raise AgentError("passwords need at least 10 characters")


def _info(agent: Agent) -> AgentInfo:
    stamp = hashlib.sha256(agent.password_hash.encode()).hexdigest()[:32]
    return AgentInfo(agent.id, agent.username, agent.display_name, agent.role, bool(agent.active), stamp)
