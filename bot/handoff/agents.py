"""Agent accounts: argon2-hashed passwords, two roles (agent, admin), and a switch that disables
an account without deleting it (its name stays taken and its messages keep their author). The
accounts themselves are kept by an `AgentRecords` (bot/storage/agents.py: SQL)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Protocol

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from bot.storage.agents import AgentRecord, LastActiveAdmin, NoSuchAgent, UsernameTaken

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


class AgentRecords(Protocol):
    """Where accounts are kept (bot/storage/agents.py: the SQL table)."""

    def add(self, username: str, display_name: str, password_hash: str, role: str) -> AgentRecord: ...
    def get(self, agent_id: int) -> AgentRecord | None: ...
    def by_username(self, username: str) -> AgentRecord | None: ...
    def set_password_hash(self, agent_id: int, password_hash: str) -> AgentRecord: ...
    def set_active(self, agent_id: int, active: bool) -> AgentRecord: ...
    def all(self) -> list[AgentRecord]: ...
    def count_admins(self) -> int: ...


class AgentStore:
    def __init__(self, records: AgentRecords) -> None:
        self.records = records
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
        try:
            agent = self.records.add(username, display_name.strip()[:128], self.hasher.hash(password), role)
        except UsernameTaken as exc:
            raise AgentError(f"username {username!r} is taken") from exc
        return _info(agent)

    def authenticate(self, username: str, password: str) -> AgentInfo | None:
        agent = self.records.by_username(username.strip().lower())
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
        agent = self.records.get(agent_id)
        return _info(agent) if agent and agent.active else None

    def by_username(self, username: str) -> AgentInfo | None:
        """Any account, disabled ones too (for admins, who enable them again)."""
        agent = self.records.by_username(username.strip().lower())
        return _info(agent) if agent else None

    def set_password(self, agent_id: int, new: str) -> AgentInfo:
        """A new password (the caller ends the agent's console sessions; the stamp changes too)."""
        _check_password(new)
        try:
            return _info(self.records.set_password_hash(agent_id, self.hasher.hash(new)))
        except NoSuchAgent as exc:
            raise UnknownAgent(f"no agent {agent_id}") from exc

    def set_active(self, agent_id: int, active: bool) -> AgentInfo:
        """Disable (no log-in, `get` gives None) or enable an account; the last active admin stays."""
        try:
            return _info(self.records.set_active(agent_id, active))
        except NoSuchAgent as exc:
            raise UnknownAgent(f"no agent {agent_id}") from exc
        except LastActiveAdmin as exc:
            raise LastAdmin("this is the last active admin: make another admin first") from exc

    def all(self) -> list[AgentInfo]:
        return [_info(a) for a in self.records.all()]

    def count_admins(self) -> int:
        return self.records.count_admins()


def _check_password(password: str) -> None:
    if len(password) < 10:
        raise AgentError("passwords need at least 10 characters")


def _info(agent: AgentRecord) -> AgentInfo:
    stamp = hashlib.sha256(agent.password_hash.encode()).hexdigest()[:32]
    return AgentInfo(agent.id, agent.username, agent.display_name, agent.role, agent.active, stamp)
