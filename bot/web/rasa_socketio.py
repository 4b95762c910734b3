"""Rasa's socket.io channel (the protocol rasa-webchat and other Rasa widgets speak):
session_request -> session_confirm, user_uttered -> bot_uttered.

Browsers may connect from this site and from `widget_origins` (python-engineio checks the Origin of
polling requests and of the WebSocket handshake). A packet (or a polling POST) over `max_bytes` is
refused by engineio. Each user_uttered counts against the rate limits; over one, the client gets an
`error` event `{"error": "rate_limited", "retry_after", ...}` and stays connected.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any
from urllib.parse import parse_qsl

import socketio

from bot.background import cancel_and_wait
from bot.channels import rasa
from bot.channels.base import ChannelError
from bot.textsafety import InvalidText
from bot.web.errors import ApiError, as_api_error
from bot.web.rasa_routes import api_error, inbound
from bot.web.security import origin_allowed
from bot.web.state import app_services


class RasaSocketIO:
    """The event handlers of one app's socket.io server (`self.sio`)."""

    def __init__(self, app: Any, widget_origins: list[str], max_bytes: int) -> None:
        def allowed(origin: str | None, environ: dict[str, Any]) -> bool:
            return origin_allowed(origin, environ.get("HTTP_HOST"), widget_origins)

        self.app = app
        self.sio = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins=allowed,
                                        max_http_buffer_size=max_bytes)
        self.sio.on("connect", self.connect)
        self.sio.on("session_request", self.session_request)
        self.sio.on("user_uttered", self.user_uttered)

    async def connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        """With `Settings.web.rasa_channel_token` set, only clients that present it connect."""
        expected = app_services(self.app).settings.web.rasa_channel_token
        if expected is None:
            return
        query: dict[str, str] = {}
        for name, value in parse_qsl(environ.get("QUERY_STRING", "")):
            query.setdefault(name, value)  # the first ?token=, as Rasa's clients send one
        try:
            rasa.check_channel_token(expected, rasa.connect_token(auth, query))
        except ChannelError as exc:
            raise socketio.exceptions.ConnectionRefusedError(api_error(exc).body()) from exc

    async def session_request(self, sid: str, data: Any) -> None:
        session_id = data.get("session_id") if isinstance(data, dict) else None
        if not isinstance(session_id, str) or not session_id:
            session_id = uuid.uuid4().hex
        await self.sio.save_session(sid, {"session_id": session_id})
        await self.sio.enter_room(sid, session_id)
        await self.sio.emit("session_confirm", session_id, room=sid)

    async def user_uttered(self, sid: str, data: Any) -> None:
        """python-socketio runs each event in a task of its own that nothing ends or waits for at
        shutdown: the turn runs as a task of the app's (`app.state.tasks`) instead, which the
        shutdown lets finish, then cancels."""
        await self.app.state.tasks.spawn(self.utter(sid, data), name="socketio-turn")

    async def utter(self, sid: str, data: Any) -> None:
        services = app_services(self.app)
        if not isinstance(data, dict) or not isinstance(data.get("message"), str):
            await self.sio.emit("error", {"error": "invalid_payload",
                                          "detail": "expected {message, session_id}"}, room=sid)
            return
        session_id = data.get("session_id") or (await self.sio.get_session(sid)).get("session_id") or sid
        try:
            msg = inbound(str(session_id), data["message"], "socketio",
                          services.settings.limits.max_message_chars, key=self.app.state.conversation_key)
            limiter = getattr(self.app.state, "limiter", None)
            if limiter is not None:
                scope = (self.sio.get_environ(sid) or {}).get("asgi.scope") or {}
                await limiter.message(limiter.client_address(scope), msg.conversation_id, "socketio")
            replies = await services.pipeline.handle(msg)
        except (ApiError, InvalidText) as refused:  # InvalidText: the pipeline's payload check
            exc = as_api_error(refused)
            services.metrics.errors.labels(exc.code).inc()
            await self.sio.emit("error", exc.body(), room=sid)
            return
        for reply in replies:
            await self.sio.emit("bot_uttered", rasa.bot_uttered(reply), room=sid)


def socketio_server(app: Any, widget_origins: list[str], max_bytes: int) -> socketio.AsyncServer:
    """The server, remembered as `app.state.socketio` for the app's shutdown (`close_socketio`)."""
    sio = RasaSocketIO(app, widget_origins, max_bytes).sio
    app.state.socketio = sio
    return sio


async def close_socketio(sio: socketio.AsyncServer, timeout_s: float = 5.0) -> None:
    """Shutdown: end the Engine.IO sessions still open (a session outlives its connection until
    its ping times out; uvicorn has closed the WebSockets themselves) and stop python-engineio's
    service task, which would otherwise run on until asyncio's runner cancels it."""
    eio = sio.eio
    for session in list(getattr(eio, "sockets", {}).values()):
        if not (session.closed or session.closing):
            with contextlib.suppress(Exception):  # a session already half gone
                await session.close(wait=False)  # its reason: "server disconnect"
    if getattr(eio, "service_task_handle", None) is None:
        return
    stopping = asyncio.get_running_loop().create_task(sio.shutdown(), name="socketio-shutdown")
    await asyncio.wait({stopping}, timeout=timeout_s)
    await cancel_and_wait({stopping}, timeout_s)
