"""The agent console: login, the hand-off queue, conversations, replies, hand-back, admin.

Auth: the `sb_console` cookie (signed, HttpOnly, SameSite=strict, Secure over HTTPS) carries only a
random session id; the session itself (agent, CSRF token) is held in Redis
(bot/handoff/console_sessions.py), so logging out, a password change or a disabled account ends
it at once, copied cookies included. Before log-in the id only backs the log-in form's CSRF token
(derived from it, nothing stored); log-in always starts a new id. Every state-changing call also
needs the X-CSRF-Token header that matches the session's token. Failed log-ins are limited per
address (bot/web/ratelimit.py) and per account (5 in 15 minutes, then 429 with Retry-After).

Agents see and act on conversations waiting in the queue (read, claim) and their own (everything);
admins on all (bot/handoff/service.py `authorize`).

The admin API (`/console/api/agents`) takes either credential: the admin API key
(`Authorization: Bearer <key>` or `X-API-Key: <key>`, `Settings.admin_api_key`, no cookie and no
CSRF token needed) for scripts, or a logged-in admin's console session (plus CSRF on writes) for
the admin page. Without a configured key, API callers get 403 `admin_api_disabled`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter, Depends, Request, Response, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, RedirectResponse
from itsdangerous import BadSignature, Signer
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import HTTPConnection

from bot.handoff.agents import AgentError, AgentInfo, LastAdmin, UnknownAgent
from bot.handoff.console_sessions import ConsoleSession, ConsoleSessions
from bot.handoff.service import Access, HandoffError
from bot.sessions.live import follow
from bot.types import Session
from bot.web.errors import ApiError
from bot.web.schemas import clean_text, error_responses, valid_conversation_id
from bot.web.security import same_host

STATIC = Path(__file__).parent / "static"
router = APIRouter(prefix="/console", responses=error_responses(401, 403, 422))
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
COOKIE = "sb_console"
REVALIDATE_S = 30.0  # an open console WebSocket re-checks its session this often (and on each ping)


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(max_length=64)
    password: str = Field(max_length=256)


class ReplyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=4000)


class AgentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(max_length=64)
    display_name: str = Field(max_length=128)
    password: str = Field(max_length=256)
    role: str = "agent"


class PasswordIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    password: str = Field(max_length=256)


class PasswordChangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    old_password: str = Field(max_length=256)
    new_password: str = Field(max_length=256)


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
    """The session store over the app's Redis client (built again when the app restarted)."""
    services, state = conn.app.state.services, conn.app.state
    held: ConsoleSessions | None = getattr(state, "console_sessions", None)
    if held is None or held.r is not services.store.r:
        held = state.console_sessions = ConsoleSessions(
            services.store.r, services.settings.key_prefix, services.settings.console_session_s)
    return held


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
            agent = await asyncio.to_thread(conn.app.state.services.agents.get, session.agent_id)
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
    configured = request.app.state.services.settings.admin_api_key
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


def _cid(conversation_id: str) -> str:
    if not valid_conversation_id(conversation_id):
        raise ApiError(422, "invalid_conversation_id", "not a conversation id")
    return conversation_id


# --- pages ---------------------------------------------------------------------------
@router.get("", include_in_schema=False)
async def console_page(request: Request):  # type: ignore[no-untyped-def]
    if await session_agent(request) is None:
        return RedirectResponse("/console/login", status_code=303)
    return FileResponse(STATIC / "console.html")


@router.get("/login", include_in_schema=False)
async def login_page() -> FileResponse:
    return FileResponse(STATIC / "login.html")


@router.get("/admin", include_in_schema=False)
async def admin_page(request: Request):  # type: ignore[no-untyped-def]
    agent = await session_agent(request)
    if agent is None:
        return RedirectResponse("/console/login", status_code=303)
    if agent.role != "admin":  # a person in a browser: a page, not a JSON error
        return FileResponse(STATIC / "forbidden.html", status_code=403)
    return FileResponse(STATIC / "admin.html")


# --- session -------------------------------------------------------------------------
@router.get("/api/session")
async def session_info(request: Request, response: Response) -> dict:
    found = await visit(request)
    if found.session is not None and found.agent is not None:
        return {"csrf": found.session.csrf, "agent": public(found.agent)}
    sid = found.sid
    if sid is None:  # a pre-login id: it backs only the log-in form's CSRF token
        sid = secrets.token_urlsafe(32)
        request.app.state.console_cookie.set(response, sid)
    return {"csrf": request.app.state.console_cookie.login_csrf(sid), "agent": None}


def _locked_out(request: Request, retry_after: int) -> ApiError:
    request.app.state.services.metrics.rate_limited.labels("login_account", "console").inc()
    return ApiError(429, "rate_limited",
                    f"too many failed log-ins for this account; retry in {retry_after} s",
                    headers={"Retry-After": str(retry_after)},
                    extra={"retry_after": retry_after, "limit": "login_account"})


async def _start_session(request: Request, response: Response, agent: AgentInfo) -> dict:
    """A new session id and CSRF token (never the one the browser had before: no fixation)."""
    sid, csrf = await console_sessions(request).create(agent.id, agent.stamp)
    request.app.state.console_cookie.set(response, sid)
    return {"csrf": csrf, "agent": public(agent)}


@router.post("/api/login", dependencies=[Depends(check_csrf)], responses=error_responses(429))
async def login(request: Request, response: Response, body: LoginIn) -> dict:
    sessions = console_sessions(request)
    retry_after = await sessions.login_attempt(body.username)  # counted before the password is checked
    if retry_after:
        raise _locked_out(request, retry_after)
    agents = request.app.state.services.agents
    agent = await asyncio.to_thread(agents.authenticate, body.username, body.password)
    if agent is None:
        raise ApiError(401, "bad_credentials", "wrong username or password")
    await sessions.login_succeeded(body.username)
    found = await visit(request)
    if found.sid is not None:
        await sessions.delete(found.sid)  # the pre-login id, or an earlier session of this browser
    return await _start_session(request, response, agent)


@router.post("/api/logout")
async def logout(request: Request, response: Response) -> dict:
    """Ends the session in Redis at once: the cookie, or any copy of it, is worthless after this."""
    found = await visit(request)
    if found.session is not None and found.sid is not None:
        await check_csrf(request)
        services = request.app.state.services
        await services.queue.offline(str(found.session.agent_id))
        await console_sessions(request).delete(found.sid)
        await _announce_ended(request, found.session.agent_id)
    request.app.state.console_cookie.clear(response)
    return {"ok": True}


@router.post("/api/password", responses=error_responses(429))
async def change_password(request: Request, response: Response, body: PasswordChangeIn,
                          agent: AgentInfo = Depends(acting_agent)) -> dict:
    """The logged-in agent's own password: every other session ends, this one gets a new id."""
    services = request.app.state.services
    sessions = console_sessions(request)
    retry_after = await sessions.login_attempt(agent.username)  # no guessing through a stolen session
    if retry_after:
        raise _locked_out(request, retry_after)
    if await asyncio.to_thread(services.agents.authenticate, agent.username, body.old_password) is None:
        raise ApiError(403, "wrong_password", "the current password is wrong")
    await sessions.login_succeeded(agent.username)
    try:
        changed = await asyncio.to_thread(services.agents.set_password, agent.id, body.new_password)
    except AgentError as exc:
        raise ApiError(422, "invalid_password", str(exc)) from exc
    await sessions.end_all_for(agent.id)
    await _announce_ended(request, agent.id)
    return await _start_session(request, response, changed)


async def _announce_ended(request: Request, agent_id: int) -> None:
    """Open console WebSockets of that agent re-check their session and close if it is over."""
    await request.app.state.services.queue.announce({"type": "sessions_ended", "agent": str(agent_id)})


# --- queue and conversations ----------------------------------------------------------
@router.get("/api/queue")
async def queue(request: Request, agent: AgentInfo = Depends(current_agent)) -> dict:
    services = request.app.state.services
    await services.queue.heartbeat(str(agent.id))
    return {"waiting": await services.queue.waiting(),
            "mine": await services.queue.assigned_to(str(agent.id)),
            "agents_online": len(await services.queue.agents_online())}


async def _handoff(coro):  # type: ignore[no-untyped-def]
    """HandoffError to HTTP: unknown 404, someone else's 403, a state conflict 409."""
    try:
        return await coro
    except HandoffError as exc:
        status = {"unknown_conversation": 404, "not_your_conversation": 403}.get(exc.code, 409)
        raise ApiError(status, exc.code, str(exc)) from exc


async def _access(request: Request, conversation_id: str, agent: AgentInfo, action: Access) -> Session:
    handoff = request.app.state.services.handoff
    return await _handoff(handoff.access(_cid(conversation_id), str(agent.id), agent.role == "admin", action))


@router.get("/api/conversations/{conversation_id}", responses=error_responses(404))
async def conversation(request: Request, conversation_id: str,
                       agent: AgentInfo = Depends(current_agent)) -> dict:
    services = request.app.state.services
    session = await _access(request, conversation_id, agent, "read")
    cid = session.conversation_id
    turns = await asyncio.to_thread(services.transcripts.turns, cid)
    understood = {t.message_id: {"intent": t.intent, "confidence": t.confidence, "action": t.action_name,
                                 "faq_entry": t.faq_entry, "faq_score": t.faq_score} for t in turns}
    last_user = next((e.text for e in reversed(session.history) if e.role == "user"), "")
    hits = await services.pool.run(services.knowledge.search, last_user, 3) if last_user else []
    state = await services.queue.state(cid)
    return {
        "conversation_id": cid, "channel": session.channel, "handoff": session.handoff,
        "language": session.language, "handoff_reason": session.handoff_reason,
        "assigned_to_me": session.agent == str(agent.id),
        "assigned": bool(session.agent), "status": state.get("status"),
        "history": [{**e.model_dump(include={"role", "text", "at", "agent"}),
                     "understood": understood.get(e.message_id or "")} for e in session.history],
        "suggestions": [{"entry_id": h.entry_id, "question": h.question, "answer": h.answer,
                         "score": h.score} for h in hits],
    }


@router.post("/api/conversations/{conversation_id}/claim", responses=error_responses(404, 409))
async def claim(request: Request, conversation_id: str, agent: AgentInfo = Depends(acting_agent)) -> dict:
    services = request.app.state.services
    await _handoff(services.handoff.claim(_cid(conversation_id), str(agent.id), agent.display_name,
                                          admin=agent.role == "admin"))
    return {"ok": True}


@router.post("/api/conversations/{conversation_id}/messages", responses=error_responses(404, 409))
async def agent_reply(request: Request, conversation_id: str, body: ReplyIn,
                      agent: AgentInfo = Depends(acting_agent)) -> dict:
    text = clean_text(body.text)
    if not text:
        raise ApiError(422, "empty_message", "write something first")
    services = request.app.state.services
    cid = _cid(conversation_id)
    event = await _handoff(services.handoff.agent_message(cid, str(agent.id), agent.display_name, text,
                                                          admin=agent.role == "admin"))
    await asyncio.to_thread(services.transcripts.record_agent_message, cid, agent.display_name, text,
                            event.at)
    return {"ok": True, "at": event.at}


@router.post("/api/conversations/{conversation_id}/typing", responses=error_responses(404))
async def typing(request: Request, conversation_id: str, agent: AgentInfo = Depends(acting_agent)) -> dict:
    services = request.app.state.services
    cid = (await _access(request, conversation_id, agent, "act")).conversation_id
    await services.queue.set_typing(cid, str(agent.id))
    await services.queue.to_customer(cid, {"type": "agent_typing", "agent": agent.display_name})
    return {"ok": True}


@router.post("/api/conversations/{conversation_id}/handback", responses=error_responses(404, 409))
async def hand_back(request: Request, conversation_id: str, agent: AgentInfo = Depends(acting_agent)) -> dict:
    handoff = request.app.state.services.handoff
    await _handoff(handoff.hand_back(_cid(conversation_id), str(agent.id), admin=agent.role == "admin"))
    return {"ok": True}


@router.post("/api/conversations/{conversation_id}/close", responses=error_responses(404, 409))
async def close(request: Request, conversation_id: str, agent: AgentInfo = Depends(acting_agent)) -> dict:
    handoff = request.app.state.services.handoff
    await _handoff(handoff.hand_back(_cid(conversation_id), str(agent.id), close=True,
                                     admin=agent.role == "admin"))
    return {"ok": True}


# --- admin ---------------------------------------------------------------------------
ADMIN_AUTH = ("Admin API: `Authorization: Bearer <admin API key>` (or `X-API-Key`), or a logged-in "
              "admin's console session (with X-CSRF-Token on writes). No key configured: 403 "
              "`admin_api_disabled` for API callers.")


@router.get("/api/agents", description=ADMIN_AUTH)
async def list_agents(request: Request, _: AgentInfo | None = Depends(admin_caller)) -> list[dict]:
    agents = await asyncio.to_thread(request.app.state.services.agents.all)
    return [public(a) for a in agents]


@router.post("/api/agents", status_code=201, description=ADMIN_AUTH)
async def create_agent(request: Request, body: AgentIn, _: AgentInfo | None = Depends(admin_caller)) -> dict:
    try:
        agent = await asyncio.to_thread(request.app.state.services.agents.create, body.username,
                                        body.display_name, body.password, body.role)
    except AgentError as exc:
        raise ApiError(422, "invalid_agent", str(exc)) from exc
    return public(agent)


async def _end_sessions(request: Request, agent_id: int) -> None:
    """Every console session of that agent ends now (and it drops out of the online list)."""
    services = request.app.state.services
    await console_sessions(request).end_all_for(agent_id)
    await services.queue.offline(str(agent_id))
    await _announce_ended(request, agent_id)


async def _account(request: Request, username: str) -> AgentInfo:
    found = await asyncio.to_thread(request.app.state.services.agents.by_username, username)
    if found is None:
        raise ApiError(404, "unknown_agent", f"no agent {username!r}")
    return found


@router.post("/api/agents/{username}/password", description=ADMIN_AUTH + " Ends the agent's sessions.",
             responses=error_responses(404))
async def set_agent_password(request: Request, username: str, body: PasswordIn,
                             _: AgentInfo | None = Depends(admin_caller)) -> dict:
    target = await _account(request, username)
    try:
        changed = await asyncio.to_thread(request.app.state.services.agents.set_password, target.id,
                                          body.password)
    except UnknownAgent as exc:
        raise ApiError(404, "unknown_agent", f"no agent {username!r}") from exc
    except AgentError as exc:
        raise ApiError(422, "invalid_password", str(exc)) from exc
    await _end_sessions(request, target.id)
    return public(changed)


async def _set_active(request: Request, username: str, active: bool) -> dict:
    target = await _account(request, username)
    try:
        changed = await asyncio.to_thread(request.app.state.services.agents.set_active, target.id, active)
    except UnknownAgent as exc:
        raise ApiError(404, "unknown_agent", f"no agent {username!r}") from exc
    except LastAdmin as exc:
        raise ApiError(409, "last_admin", str(exc)) from exc
    if not active:
        await _end_sessions(request, target.id)
    return public(changed)


@router.post("/api/agents/{username}/disable", description=ADMIN_AUTH + " Ends the agent's sessions.",
             responses=error_responses(404, 409))
async def disable_agent(request: Request, username: str, _: AgentInfo | None = Depends(admin_caller)) -> dict:
    return await _set_active(request, username, False)


@router.post("/api/agents/{username}/enable", description=ADMIN_AUTH, responses=error_responses(404))
async def enable_agent(request: Request, username: str, _: AgentInfo | None = Depends(admin_caller)) -> dict:
    return await _set_active(request, username, True)


# --- live updates --------------------------------------------------------------------
async def _still_logged_in(websocket: WebSocket) -> bool:
    return (await visit(websocket, fresh=True)).agent is not None


async def _watch(websocket: WebSocket, ended: asyncio.Event) -> None:
    """Backstop for a missed `sessions_ended` event, and sessions that simply expire."""
    while not ended.is_set():
        await asyncio.sleep(REVALIDATE_S)
        if not await _still_logged_in(websocket):
            ended.set()


async def _pings(websocket: WebSocket, agent_id: int, ended: asyncio.Event) -> None:
    """Pings keep the agent marked online, while the session lasts; returns when the client goes."""
    queue = websocket.app.state.services.queue
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            if (await websocket.receive())["type"] == "websocket.disconnect":  # any frame is a ping
                return
            if not await _still_logged_in(websocket):
                ended.set()
                return
            await queue.heartbeat(str(agent_id))


@router.websocket("/ws")
async def console_socket(websocket: WebSocket) -> None:
    """Every turn and queue change, live, to logged-in agents (via Redis pub/sub: all replicas),
    for as long as the session lasts: a logout, password change or disabled account closes it."""
    services = websocket.app.state.services
    origin = websocket.headers.get("origin")
    if origin and not same_host(origin, websocket.headers.get("host")):
        await websocket.close(code=1008, reason="origin not allowed")  # cross-site WebSocket hijacking
        return
    agent = await session_agent(websocket)
    if agent is None:
        await websocket.close(code=1008, reason="login required")
        return
    await websocket.accept()
    await services.queue.heartbeat(str(agent.id))
    ended = asyncio.Event()

    async def forward(event: dict) -> None:
        if event.get("type") == "sessions_ended":  # for the server side only
            if event.get("agent") == str(agent.id) and not await _still_logged_in(websocket):
                ended.set()
            return
        if event.get("type") == "turn":
            event = {"type": "turn", "conversation_id": event["conversation_id"]}
        await websocket.send_json(event)

    # The app owns these tasks (bot.background): they are ended at shutdown whatever happens here.
    owner, gone = websocket.app.state.tasks, (WebSocketDisconnect, RuntimeError, OSError)
    tasks = [owner.spawn(follow(services.store.r, [services.queue.console_channel, services.store.channel],
                                forward), name="console-pushes", quiet=gone, endless=True),
             owner.spawn(_watch(websocket, ended), name="console-watch", quiet=gone, endless=True)]
    pings = owner.spawn(_pings(websocket, agent.id, ended), name="console-pings", quiet=gone, endless=True)
    stop = owner.spawn(ended.wait(), name="console-ended", endless=True)
    try:
        await asyncio.wait({pings, stop}, return_when=asyncio.FIRST_COMPLETED)
        if ended.is_set():  # (the client may have gone at the same moment)
            with contextlib.suppress(RuntimeError, WebSocketDisconnect, OSError):
                await websocket.close(code=1008, reason="session ended")
    finally:
        await owner.stop(*tasks, pings, stop)  # cancelled and awaited: the pub/sub connection is closed
