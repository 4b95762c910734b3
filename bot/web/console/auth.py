"""Who is calling the console: the cookie, the Redis-held session behind it, the CSRF check, and
the admin API's key. The FastAPI dependencies of every console route."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from fastapi import Request, Response
from itsdangerous import BadSignature, Signer
from starlette.requests import HTTPConnection

from bot.handoff.agents import AgentInfo
from bot.handoff.console_sessions import ConsoleSession, ConsoleSessions
from bot.web.errors import ApiError
from bot.web.state import services_of

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
COOKIE = "sb_console"


class ConsoleCookie:
    """The console cookie: a signed random session id and nothing else. Signed so that a forged
    id is refused without asking Redis; the id alone means nothing without its Redis record."""

    def __init__(self, secret: str, max_age: int, secure: bool) -> None:
        self.signer = Signer(secret, salt="supportbot.console.session-id")
        self.csrf_key = hashlib.sha256(f"supportbot.console.login-csrf:{secret}".encode()).digest()
        self.max_age = max_age
        self.secure = secure

    def read(self, conn: HTTPConnection) -> str | None:
        raw = conn.cookies.get(COOKIE)
        if not raw:
            return None
        try:
            return self.signer.unsign(raw).decode()
        except (BadSignature, UnicodeDecodeError):
            return None  # forged, or an old SessionMiddleware cookie: not logged in

    def set(self, response: Response, sid: str) -> None:
        response.set_cookie(COOKIE, self.signer.sign(sid).decode(), max_age=self.max_age, path="/",
                            httponly=True, samesite="strict", secure=self.secure)

    def clear(self, response: Response) -> None:
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict", secure=self.secure)

    def login_csrf(self, sid: str) -> str:
        """The log-in form's CSRF token: derived from the pre-login id, so nothing is stored for
        visitors who are not logged in."""
        mac = hmac.new(self.csrf_key, sid.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")


@dataclass(frozen=True)
class Visit:
    """What this request's cookie amounts to: its id, and the live session and agent behind it."""

    sid: str | None
    session: ConsoleSession | None
    agent: AgentInfo | None


def console_sessions(conn: HTTPConnection) -> ConsoleSessions:
    """The console sessions (bot/handoff/console_sessions.py), built with the app's services."""
    return services_of(conn).console_sessions


async def visit(conn: HTTPConnection, fresh: bool = False) -> Visit:
    """Resolve the cookie once per request (`fresh`: ask again, for long-lived WebSockets). A
    session whose agent is gone, disabled or has another password since is deleted here."""
    cached: Visit | None = getattr(conn.state, "console_visit", None)
    if cached is not None and not fresh:
        return cached
    sid = conn.app.state.console_cookie.read(conn)
    session = agent = None
    if sid is not None:
        sessions = console_sessions(conn)
        session = await sessions.get(sid)
        if session is not None:
            agent = await asyncio.to_thread(services_of(conn).agents.get, session.agent_id)
            if agent is None or not hmac.compare_digest(agent.stamp, session.stamp):
                await sessions.delete(sid)
                session = agent = None
    conn.state.console_visit = found = Visit(sid, session, agent)
    return found


def _expected_csrf(request: Request, found: Visit) -> str:
    if found.session is not None:
        return found.session.csrf
    return request.app.state.console_cookie.login_csrf(found.sid) if found.sid else ""


async def check_csrf(request: Request) -> None:
    sent = request.headers.get("x-csrf-token", "")
    expected = _expected_csrf(request, await visit(request))
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise ApiError(403, "csrf_failed", "missing or wrong X-CSRF-Token header")


async def session_agent(conn: HTTPConnection) -> AgentInfo | None:
    """The logged-in agent of this request or WebSocket, if the session and the account are live."""
    return (await visit(conn)).agent


def public(agent: AgentInfo) -> dict[str, object]:
    return {"username": agent.username, "name": agent.display_name, "role": agent.role,
            "active": agent.active}


async def current_agent(request: Request) -> AgentInfo:
    agent = await session_agent(request)
    if agent is None:
        raise ApiError(401, "login_required", "log in to the console first")
    return agent


async def acting_agent(request: Request) -> AgentInfo:
    """A state-changing call: logged in (else 401), then the CSRF token (else 403)."""
    agent = await current_agent(request)
    await check_csrf(request)
    return agent


def presented_api_key(conn: HTTPConnection) -> str | None:
    """The key an API client sent: `Authorization: Bearer <key>` or `X-API-Key: <key>`."""
    auth = conn.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return conn.headers.get("x-api-key") or None


async def admin_caller(request: Request) -> AgentInfo | None:
    """An admin API call: the admin API key (returns None), else a logged-in admin agent's session
    with the CSRF token on writes (returns the agent)."""
    key = presented_api_key(request)
    configured = services_of(request).settings.console.admin_api_key
    expected = configured.get_secret_value() if configured is not None else ""
    if key is not None:
        if not expected:
            raise ApiError(403, "admin_api_disabled",
                           "the admin API is off: no admin API key is configured (SUPPORTBOT_ADMIN_API_KEY)")
        if not secrets.compare_digest(key.encode("utf-8", "surrogateescape"), expected.encode()):
            raise ApiError(401, "bad_api_key", "wrong admin API key", headers={"WWW-Authenticate": "Bearer"})
        return None
    agent = await session_agent(request)
    if agent is None:
        if not expected:
            raise ApiError(403, "admin_api_disabled",
                           "no admin API key is configured (SUPPORTBOT_ADMIN_API_KEY); "
                           "log in to the console as an admin instead")
        raise ApiError(401, "login_required", "send the admin API key (Authorization: Bearer) or log in "
                                              "to the console as an admin",
                       headers={"WWW-Authenticate": "Bearer"})
    if agent.role != "admin":
        raise ApiError(403, "forbidden", "admins only")
    if request.method not in SAFE_METHODS:
        await check_csrf(request)
    return agent


async def announce_ended(request: Request, agent_id: int) -> None:
    """Open console WebSockets of that agent re-check their session and close if it is over."""
    await services_of(request).queue.announce({"type": "sessions_ended", "agent": str(agent_id)})
