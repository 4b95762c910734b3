"""The agents admin API: list, create, new password, disable, enable (admins and API key only)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from bot.handoff.agents import AgentError, AgentInfo, LastAdmin, UnknownAgent
from bot.web.console.auth import admin_caller, announce_ended, console_sessions, public
from bot.web.errors import ApiError
from bot.web.schemas import error_responses
from bot.web.state import services_of

router = APIRouter(prefix="/console", responses=error_responses(401, 403, 422))


class AgentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(max_length=64)
    display_name: str = Field(max_length=128)
    password: str = Field(max_length=256)
    role: str = "agent"


class PasswordIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    password: str = Field(max_length=256)


# --- admin ---------------------------------------------------------------------------
ADMIN_AUTH = ("Admin API: `Authorization: Bearer <admin API key>` (or `X-API-Key`), or a logged-in "
              "admin's console session (with X-CSRF-Token on writes). No key configured: 403 "
              "`admin_api_disabled` for API callers.")


@router.get("/api/agents", description=ADMIN_AUTH)
async def list_agents(request: Request, _: AgentInfo | None = Depends(admin_caller)) -> list[dict]:
    agents = await asyncio.to_thread(services_of(request).agents.all)
    return [public(a) for a in agents]


@router.post("/api/agents", status_code=201, description=ADMIN_AUTH)
async def create_agent(request: Request, body: AgentIn, _: AgentInfo | None = Depends(admin_caller)) -> dict:
    try:
        agent = await asyncio.to_thread(services_of(request).agents.create, body.username,
                                        body.display_name, body.password, body.role)
    except AgentError as exc:
        raise ApiError(422, "invalid_agent", str(exc)) from exc
    return public(agent)


async def _end_sessions(request: Request, agent_id: int) -> None:
    """Every console session of that agent ends now (and it drops out of the online list)."""
    services = services_of(request)
    await console_sessions(request).end_all_for(agent_id)
    await services.queue.offline(str(agent_id))
    await announce_ended(request, agent_id)


async def _account(request: Request, username: str) -> AgentInfo:
    found = await asyncio.to_thread(services_of(request).agents.by_username, username)
    if found is None:
        raise ApiError(404, "unknown_agent", f"no agent {username!r}")
    return found


@router.post("/api/agents/{username}/password", description=ADMIN_AUTH + " Ends the agent's sessions.",
             responses=error_responses(404))
async def set_agent_password(request: Request, username: str, body: PasswordIn,
                             _: AgentInfo | None = Depends(admin_caller)) -> dict:
    target = await _account(request, username)
    try:
        changed = await asyncio.to_thread(services_of(request).agents.set_password, target.id,
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
        changed = await asyncio.to_thread(services_of(request).agents.set_active, target.id, active)
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
