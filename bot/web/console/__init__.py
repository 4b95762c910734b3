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

Modules: `auth` (the cookie, who is calling, CSRF), `session` (pages, log-in, log-out, password),
`conversations` (the queue and the conversations), `admin` (the agents admin API), `live` (the
WebSocket).
"""

from __future__ import annotations

from fastapi import APIRouter

from bot.web.console import admin, analytics, canned, conversations, images, live, session
from bot.web.console.auth import ConsoleCookie, admin_caller

__all__ = ["ConsoleCookie", "admin_caller", "router"]

router = APIRouter()
for _part in (session, conversations, admin, live):  # the order of the paths in /openapi.json
    router.include_router(_part.router)
router.include_router(canned.router)  # canned replies (console dashboard)
router.include_router(analytics.router)  # the analytics page and its API (admins)
router.include_router(images.router)  # customers' photos, for agents who may read the conversation
