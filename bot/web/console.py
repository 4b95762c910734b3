"""The agent console: login, the hand-off queue, conversations, replies, hand-back, admin.

Auth is a signed session cookie (SameSite=strict, HttpOnly); every state-changing call also needs
the X-CSRF-Token header that matches the token kept in that session.

The admin API (`/console/api/agents`) takes either credential: the admin API key
(`Authorization: Bearer <key>` or `X-API-Key: <key>`, `Settings.admin_api_key`, no cookie and no
CSRF token needed) for scripts, or a logged-in admin's console session (plus CSRF on writes) for
the admin page. Without a configured key, API callers get 403 `admin_api_disabled`.
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
from pathlib import Path

from fastapi import APIRouter, Depends, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, RedirectResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import HTTPConnection

from bot.handoff.agents import AgentError, AgentInfo
from bot.handoff.service import HandoffError
from bot.sessions.live import follow
from bot.web.errors import ApiError
from bot.web.schemas import clean_text, error_responses, valid_conversation_id
from bot.web.security import same_host

STATIC = Path(__file__).parent / "static"
router = APIRouter(prefix="/console", responses=error_responses(401, 403, 422))
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


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


def _csrf(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = secrets.token_urlsafe(32)
    return token


def check_csrf(request: Request) -> None:
    sent = request.headers.get("x-csrf-token", "")
    expected = request.session.get("csrf", "")
    if not expected or not hmac.compare_digest(sent, expected):
        raise ApiError(403, "csrf_failed", "missing or wrong X-CSRF-Token header")


def session_agent(conn: HTTPConnection) -> AgentInfo | None:
    """The logged-in agent of this request or WebSocket, if the account still exists."""
    agent_id = conn.session.get("agent_id")
    return conn.app.state.services.agents.get(agent_id) if isinstance(agent_id, int) else None


def public(agent: AgentInfo) -> dict[str, str]:
    return {"username": agent.username, "name": agent.display_name, "role": agent.role}


def current_agent(request: Request) -> AgentInfo:
    agent = session_agent(request)
    if agent is None:
        raise ApiError(401, "login_required", "log in to the console first")
    return agent


def presented_api_key(conn: HTTPConnection) -> str | None:
    """The key an API client sent: `Authorization: Bearer <key>` or `X-API-Key: <key>`."""
    auth = conn.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return conn.headers.get("x-api-key") or None


def admin_caller(request: Request) -> AgentInfo | None:
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
    agent = session_agent(request)
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
        check_csrf(request)
    return agent


def _cid(conversation_id: str) -> str:
    if not valid_conversation_id(conversation_id):
        raise ApiError(422, "invalid_conversation_id", "not a conversation id")
    return conversation_id


# --- pages ---------------------------------------------------------------------------
@router.get("", include_in_schema=False)
async def console_page(request: Request):  # type: ignore[no-untyped-def]
    if request.session.get("agent_id") is None:
        return RedirectResponse("/console/login", status_code=303)
    return FileResponse(STATIC / "console.html")


@router.get("/login", include_in_schema=False)
async def login_page() -> FileResponse:
    return FileResponse(STATIC / "login.html")


@router.get("/admin", include_in_schema=False)
async def admin_page(request: Request):  # type: ignore[no-untyped-def]
    agent = session_agent(request)
    if agent is None:
        return RedirectResponse("/console/login", status_code=303)
    if agent.role != "admin":
        raise ApiError(403, "forbidden", "admins only")
    return FileResponse(STATIC / "admin.html")


# --- session -------------------------------------------------------------------------
@router.get("/api/session")
async def session_info(request: Request) -> dict:
    agent = session_agent(request)
    return {"csrf": _csrf(request), "agent": None if agent is None else public(agent)}


@router.post("/api/login", dependencies=[Depends(check_csrf)])
async def login(request: Request, body: LoginIn) -> dict:
    agents = request.app.state.services.agents
    agent = await asyncio.to_thread(agents.authenticate, body.username, body.password)
    if agent is None:
        raise ApiError(401, "bad_credentials", "wrong username or password")
    request.session.clear()
    request.session.update({"agent_id": agent.id, "csrf": secrets.token_urlsafe(32)})
    return {"csrf": request.session["csrf"], "agent": public(agent)}


@router.post("/api/logout", dependencies=[Depends(check_csrf)])
async def logout(request: Request) -> dict:
    agent_id = request.session.get("agent_id")
    if agent_id is not None:
        await request.app.state.services.queue.offline(str(agent_id))
    request.session.clear()
    return {"ok": True}


# --- queue and conversations ----------------------------------------------------------
@router.get("/api/queue")
async def queue(request: Request, agent: AgentInfo = Depends(current_agent)) -> dict:
    services = request.app.state.services
    await services.queue.heartbeat(str(agent.id))
    return {"waiting": await services.queue.waiting(),
            "mine": await services.queue.assigned_to(str(agent.id)),
            "agents_online": len(await services.queue.agents_online())}


@router.get("/api/conversations/{conversation_id}")
async def conversation(request: Request, conversation_id: str,
                       agent: AgentInfo = Depends(current_agent)) -> dict:
    services = request.app.state.services
    cid = _cid(conversation_id)
    session = await services.store.get(cid)
    if session is None:
        raise ApiError(404, "unknown_conversation", f"no conversation {cid!r}")
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


def _handoff_call(coro):  # type: ignore[no-untyped-def]
    async def run():  # type: ignore[no-untyped-def]
        try:
            return await coro
        except HandoffError as exc:
            status = 404 if exc.code == "unknown_conversation" else 409
            raise ApiError(status, exc.code, str(exc)) from exc
    return run()


@router.post("/api/conversations/{conversation_id}/claim", dependencies=[Depends(check_csrf)])
async def claim(request: Request, conversation_id: str,
                agent: AgentInfo = Depends(current_agent)) -> dict:
    services = request.app.state.services
    await _handoff_call(services.handoff.claim(_cid(conversation_id), str(agent.id), agent.display_name))
    return {"ok": True}


@router.post("/api/conversations/{conversation_id}/messages", dependencies=[Depends(check_csrf)])
async def agent_reply(request: Request, conversation_id: str, body: ReplyIn,
                      agent: AgentInfo = Depends(current_agent)) -> dict:
    text = clean_text(body.text)
    if not text:
        raise ApiError(422, "empty_message", "write something first")
    services = request.app.state.services
    cid = _cid(conversation_id)
    event = await _handoff_call(services.handoff.agent_message(cid, str(agent.id), agent.display_name, text))
    await asyncio.to_thread(services.transcripts.record_agent_message, cid, agent.display_name, text,
                            event.at)
    return {"ok": True, "at": event.at}


@router.post("/api/conversations/{conversation_id}/typing", dependencies=[Depends(check_csrf)])
async def typing(request: Request, conversation_id: str,
                agent: AgentInfo = Depends(current_agent)) -> dict:
    services = request.app.state.services
    cid = _cid(conversation_id)
    await services.queue.set_typing(cid, str(agent.id))
    await services.queue.to_customer(cid, {"type": "agent_typing", "agent": agent.display_name})
    return {"ok": True}


@router.post("/api/conversations/{conversation_id}/handback", dependencies=[Depends(check_csrf)])
async def hand_back(request: Request, conversation_id: str,
                agent: AgentInfo = Depends(current_agent)) -> dict:
    handoff = request.app.state.services.handoff
    await _handoff_call(handoff.hand_back(_cid(conversation_id), str(agent.id)))
    return {"ok": True}


@router.post("/api/conversations/{conversation_id}/close", dependencies=[Depends(check_csrf)])
async def close(request: Request, conversation_id: str,
                agent: AgentInfo = Depends(current_agent)) -> dict:
    await _handoff_call(request.app.state.services.handoff.hand_back(
        _cid(conversation_id), str(agent.id), close=True))
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


# --- live updates --------------------------------------------------------------------
@router.websocket("/ws")
async def console_socket(websocket: WebSocket) -> None:
    """Every turn and queue change, live, to logged-in agents (via Redis pub/sub: all replicas)."""
    services = websocket.app.state.services
    origin = websocket.headers.get("origin")
    if origin and not same_host(origin, websocket.headers.get("host")):
        await websocket.close(code=1008, reason="origin not allowed")  # cross-site WebSocket hijacking
        return
    agent = session_agent(websocket)
    if agent is None:
        await websocket.close(code=1008, reason="login required")
        return
    agent_id = agent.id
    await websocket.accept()
    await services.queue.heartbeat(str(agent_id))

    async def forward(event: dict) -> None:
        if event.get("type") == "turn":
            event = {"type": "turn", "conversation_id": event["conversation_id"]}
        await websocket.send_json(event)

    task = asyncio.create_task(follow(services.store.r, [services.queue.console_channel,
                                                         services.store.channel], forward))
    try:
        while True:
            await websocket.receive_text()  # pings keep the agent marked online
            await services.queue.heartbeat(str(agent_id))
    except WebSocketDisconnect:
        pass
    finally:
        task.cancel()
