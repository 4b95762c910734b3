"""The console's pages and its session routes: log-in, log-out, the agent's own password."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import FileResponse, RedirectResponse
from pydantic import BaseModel, ConfigDict, Field

from bot.handoff.agents import AgentError, AgentInfo
from bot.web.console.auth import (
    acting_agent,
    announce_ended,
    check_csrf,
    console_sessions,
    public,
    session_agent,
    visit,
)
from bot.web.errors import ApiError
from bot.web.schemas import error_responses
from bot.web.state import services_of

STATIC = Path(__file__).parent.parent / "static"
router = APIRouter(prefix="/console", responses=error_responses(401, 403, 422))


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(max_length=64)
    password: str = Field(max_length=256)


class PasswordChangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    old_password: str = Field(max_length=256)
    new_password: str = Field(max_length=256)


# --- pages ---------------------------------------------------------------------------
@router.get("", include_in_schema=False)
async def console_page(request: Request) -> Response:
    if await session_agent(request) is None:
        return RedirectResponse("/console/login", status_code=303)
    return FileResponse(STATIC / "console.html")


@router.get("/login", include_in_schema=False)
async def login_page() -> FileResponse:
    return FileResponse(STATIC / "login.html")


@router.get("/admin", include_in_schema=False)
async def admin_page(request: Request) -> Response:
    agent = await session_agent(request)
    if agent is None:
        return RedirectResponse("/console/login", status_code=303)
    if agent.role != "admin":  # the page, unless the client asked for JSON only
        accept = request.headers.get("accept", "")
        if "application/json" in accept and "text/html" not in accept:
            raise ApiError(403, "forbidden", "admins only")
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
    services_of(request).metrics.rate_limited.labels("login_account", "console").inc()
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
    agents = services_of(request).agents
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
        services = services_of(request)
        await services.queue.offline(str(found.session.agent_id))
        await console_sessions(request).delete(found.sid)
        await announce_ended(request, found.session.agent_id)
    request.app.state.console_cookie.clear(response)
    return {"ok": True}


@router.post("/api/password", responses=error_responses(429))
async def change_password(request: Request, response: Response, body: PasswordChangeIn,
                          agent: AgentInfo = Depends(acting_agent)) -> dict:
    """The logged-in agent's own password: every other session ends, this one gets a new id."""
    services = services_of(request)
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
    await announce_ended(request, agent.id)
    return await _start_session(request, response, changed)
