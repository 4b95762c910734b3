"""Drop-in compatibility with Rasa clients: the REST channel, the socket.io channel (the protocol
rasa-webchat and other Rasa widgets speak), and `POST /model/parse`.

The shapes follow Rasa 3's published ones, so an existing widget or script points at supportbot
and works unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import re
import uuid
from typing import Any
from urllib.parse import parse_qs

import socketio
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from bot.background import cancel_and_wait
from bot.channels.base import keyed_conversation_id
from bot.textsafety import InvalidText
from bot.types import Message, Reply
from bot.web.errors import ApiError, as_api_error
from bot.web.schemas import MESSAGE_ID, checked_text, clean_text, error_responses
from bot.web.security import origin_allowed

router = APIRouter(tags=["rasa"])


def conversation_id(sender: str, key: bytes) -> str:
    """Rasa sender ids are free text (often a phone number or a user id): keyed, never shown.
    The REST and socket.io channels share it, as Rasa's tracker would."""
    return keyed_conversation_id(key, "rasa", sender)


def check_channel_token(expected: SecretStr | None, presented: str | None) -> None:
    """The optional shared token of the Rasa channels (`Settings.rasa_channel_token`)."""
    if expected is None:
        return
    if not presented or not hmac.compare_digest(presented.encode("utf-8", "surrogateescape"),
                                                expected.get_secret_value().encode()):
        raise ApiError(401, "bad_token", "this channel needs its token (?token= or Authorization: Bearer)",
                       headers={"WWW-Authenticate": "Bearer"})


def request_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.query_params.get("token")


def inbound(sender: str, text: str, channel: str, max_chars: int, message_id: object = None,
            key: bytes = b"") -> Message:
    if message_id is not None and not (isinstance(message_id, str) and re.fullmatch(MESSAGE_ID, message_id)):
        raise ApiError(422, "invalid_request", [{"field": "metadata.message_id",
                                                 "problem": "1-128 of A-Z a-z 0-9 . _ : -"}])
    text = checked_text(text, max_chars)
    if not text:
        raise ApiError(422, "empty_message", "send some text")
    payload = text if text.startswith("/") else None
    return Message(channel=channel, conversation_id=conversation_id(sender, key),
                   message_id=message_id or uuid.uuid4().hex, text="" if payload else text,
                   payload=payload, sender_id=sender)


class RestIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    sender: str = Field(min_length=1, max_length=256)
    message: str = Field(max_length=100_000)
    metadata: dict[str, Any] | None = None


class ParseIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    text: str = Field(max_length=100_000)
    message_id: str | None = None


@router.post("/webhooks/rest/webhook", summary="Rasa REST channel",
             description="Rate limited per client address and per conversation: 429 with Retry-After.",
             responses=error_responses(400, 413, 422, 429, 503))
async def rest_webhook(request: Request, body: RestIn) -> list[dict]:
    services = request.app.state.services
    check_channel_token(services.settings.rasa_channel_token, request_token(request))
    msg = inbound(body.sender, body.message, "rest", services.settings.max_message_chars,
                  (body.metadata or {}).get("message_id"), request.app.state.conversation_key)
    limiter = getattr(request.app.state, "limiter", None)
    if limiter is not None:  # the address's limit ran in the middleware
        await limiter.check("conversation", msg.conversation_id, "rest")
    replies = await services.pipeline.handle(msg)
    return [rest_reply(body.sender, r) for r in replies]


def rest_reply(recipient: str, reply: Reply) -> dict:
    out: dict[str, Any] = {"recipient_id": recipient, "text": reply.text}
    if reply.buttons:
        out["buttons"] = [{"title": b.title, "payload": b.payload} for b in reply.buttons]
    return out


@router.get("/webhooks/rest/", summary="Rasa REST channel health")
async def rest_health() -> dict:
    return {"status": "ok"}


@router.post("/model/parse", summary="Rasa NLU parse",
             description="Rate limited per client address: 429 with Retry-After.",
             responses=error_responses(400, 413, 422, 429, 503))
async def model_parse(request: Request, body: ParseIn) -> dict:
    services = request.app.state.services
    check_channel_token(services.settings.rasa_channel_token, request_token(request))
    text = clean_text(body.text)
    parse = await services.pool.run(services.nlu.parse, text)
    entities = []
    for name, pattern in services.domain.entities.items():
        for m in re.finditer(pattern, text):
            entities.append({"entity": name, "value": m.group(0), "start": m.start(), "end": m.end(),
                             "confidence_entity": 1.0, "extractor": "RegexEntityExtractor"})
    return {
        "text": text,
        "intent": {"name": parse.intent, "confidence": parse.confidence},
        "intent_ranking": [{"name": r.name, "confidence": r.confidence} for r in parse.ranking],
        "entities": entities,
        "out_of_scope": parse.out_of_scope,
    }


def socketio_server(app: Any, widget_origins: list[str], max_bytes: int) -> socketio.AsyncServer:
    """Rasa's socket.io protocol: session_request -> session_confirm, user_uttered -> bot_uttered.

    Browsers may connect from this site and from `widget_origins` (python-engineio checks the
    Origin of polling requests and of the WebSocket handshake). A packet (or a polling POST) over
    `max_bytes` is refused by engineio. Each user_uttered counts against the rate limits; over one,
    the client gets an `error` event `{"error": "rate_limited", "retry_after", ...}` and stays
    connected."""

    def allowed(origin: str | None, environ: dict[str, Any]) -> bool:
        return origin_allowed(origin, environ.get("HTTP_HOST"), widget_origins)

    sio = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins=allowed,
                               max_http_buffer_size=max_bytes)
    app.state.socketio = sio  # for the app's shutdown: `close_socketio`

    @sio.on("connect")
    async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        """With `Settings.rasa_channel_token` set, only clients that present it connect."""
        expected = app.state.services.settings.rasa_channel_token
        if expected is None:
            return
        presented = auth.get("token") if isinstance(auth, dict) else None
        if presented is None:
            presented = (parse_qs(environ.get("QUERY_STRING", "")).get("token") or [None])[0]
        try:
            check_channel_token(expected, presented if isinstance(presented, str) else None)
        except ApiError as exc:
            raise socketio.exceptions.ConnectionRefusedError(exc.body()) from exc

    @sio.on("session_request")
    async def session_request(sid: str, data: Any) -> None:
        session_id = data.get("session_id") if isinstance(data, dict) else None
        if not isinstance(session_id, str) or not session_id:
            session_id = uuid.uuid4().hex
        await sio.save_session(sid, {"session_id": session_id})
        await sio.enter_room(sid, session_id)
        await sio.emit("session_confirm", session_id, room=sid)

    @sio.on("user_uttered")
    async def user_uttered(sid: str, data: Any) -> None:
        """python-socketio runs each event in a task of its own that nothing ends or waits for at
        shutdown: the turn runs as a task of the app's (`app.state.tasks`) instead, which the
        shutdown lets finish, then cancels."""
        await app.state.tasks.spawn(utter(sid, data), name="socketio-turn")

    async def utter(sid: str, data: Any) -> None:
        services = app.state.services
        if not isinstance(data, dict) or not isinstance(data.get("message"), str):
            await sio.emit("error", {"error": "invalid_payload", "detail": "expected {message, session_id}"},
                           room=sid)
            return
        session_id = data.get("session_id") or (await sio.get_session(sid)).get("session_id") or sid
        try:
            msg = inbound(str(session_id), data["message"], "socketio", services.settings.max_message_chars,
                          key=app.state.conversation_key)
            limiter = getattr(app.state, "limiter", None)
            if limiter is not None:
                scope = (sio.get_environ(sid) or {}).get("asgi.scope") or {}
                await limiter.message(limiter.client_address(scope), msg.conversation_id, "socketio")
            replies = await services.pipeline.handle(msg)
        except (ApiError, InvalidText) as refused:  # InvalidText: the pipeline's payload check
            exc = as_api_error(refused)
            services.metrics.errors.labels(exc.code).inc()
            await sio.emit("error", exc.body(), room=sid)
            return
        for reply in replies:
            out: dict[str, Any] = {"text": reply.text}
            if reply.buttons:
                out["quick_replies"] = [{"content_type": "text", "title": b.title, "payload": b.payload}
                                        for b in reply.buttons]
            await sio.emit("bot_uttered", out, room=sid)

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
