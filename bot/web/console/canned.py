"""Canned replies: every agent lists them (and inserts one with `/shortcut` in the reply box);
admins (or the admin API key) create, edit and delete them, with the CSRF token as on every write."""

from __future__ import annotations

import asyncio
import re

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from bot.handoff.agents import AgentInfo
from bot.storage.canned import CannedRecord, CannedReplies, NoSuchReply, ShortcutTaken
from bot.web.console.admin import ADMIN_AUTH
from bot.web.console.auth import admin_caller, current_agent
from bot.web.errors import ApiError
from bot.web.schemas import checked_text, error_responses
from bot.web.state import services_of

router = APIRouter(prefix="/console", responses=error_responses(401, 403, 422))
REPLY_ID = Path(ge=1, le=2**31 - 1)
SHORTCUT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


class CannedIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    shortcut: str = Field(max_length=64)
    title: str = Field(max_length=256)
    text: str = Field(max_length=8000)


def canned_store(request: Request) -> CannedReplies:
    """The app's canned replies (bot/storage/canned.py), on the app's database engine."""
    store: CannedReplies | None = getattr(request.app.state, "canned_replies", None)
    if store is None:
        store = request.app.state.canned_replies = CannedReplies(services_of(request).transcripts.engine)
    return store


def _public(r: CannedRecord) -> dict:
    return {"id": r.id, "shortcut": r.shortcut, "title": r.title, "text": r.text,
            "updated_by": r.updated_by, "updated_at": r.updated_at.isoformat()}


def _valid(body: CannedIn) -> tuple[str, str, str]:
    shortcut = body.shortcut.strip().lstrip("/").lower()
    if not SHORTCUT.match(shortcut):
        raise ApiError(422, "invalid_shortcut",
                       "shortcuts are 1-32 characters: lower-case letters, digits, '_' or '-'")
    title = checked_text(body.title, 128).strip()
    text = checked_text(body.text, 4000).strip()
    if not title or not text:
        raise ApiError(422, "invalid_canned_reply", "a title and a text are required")
    return shortcut, title, text


def _author(agent: AgentInfo | None) -> str:
    return agent.username if agent is not None else "admin-api"


@router.get("/api/canned")
async def list_canned(request: Request, _: AgentInfo = Depends(current_agent)) -> list[dict]:
    return [_public(r) for r in await asyncio.to_thread(canned_store(request).all)]


@router.post("/api/canned", status_code=201, description=ADMIN_AUTH, responses=error_responses(409))
async def create_canned(request: Request, body: CannedIn,
                        agent: AgentInfo | None = Depends(admin_caller)) -> dict:
    shortcut, title, text = _valid(body)
    try:
        made = await asyncio.to_thread(canned_store(request).add, shortcut, title, text, _author(agent))
    except ShortcutTaken as exc:
        raise ApiError(409, "shortcut_taken", f"/{shortcut} is taken") from exc
    return _public(made)


@router.put("/api/canned/{reply_id}", description=ADMIN_AUTH, responses=error_responses(404, 409))
async def edit_canned(request: Request, reply_id: int = REPLY_ID, *, body: CannedIn,
                      agent: AgentInfo | None = Depends(admin_caller)) -> dict:
    shortcut, title, text = _valid(body)
    try:
        changed = await asyncio.to_thread(canned_store(request).update, reply_id, shortcut, title, text,
                                          _author(agent))
    except NoSuchReply as exc:
        raise ApiError(404, "unknown_canned_reply", f"no canned reply {reply_id}") from exc
    except ShortcutTaken as exc:
        raise ApiError(409, "shortcut_taken", f"/{shortcut} is taken") from exc
    return _public(changed)


@router.delete("/api/canned/{reply_id}", description=ADMIN_AUTH, responses=error_responses(404))
async def delete_canned(request: Request, reply_id: int = REPLY_ID,
                        _: AgentInfo | None = Depends(admin_caller)) -> dict:
    try:
        await asyncio.to_thread(canned_store(request).delete, reply_id)
    except NoSuchReply as exc:
        raise ApiError(404, "unknown_canned_reply", f"no canned reply {reply_id}") from exc
    return {"ok": True}
