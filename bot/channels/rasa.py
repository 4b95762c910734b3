"""Drop-in compatibility with Rasa clients: the REST channel, the socket.io channel (the protocol
rasa-webchat and other Rasa widgets speak), and `POST /model/parse`.

The shapes follow Rasa 3's published ones, so an existing widget or script points at supportbot
and works unchanged.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from typing import Any

import socketio
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from bot.types import Message, Reply
from bot.web.errors import ApiError
from bot.web.schemas import checked_text, clean_text

router = APIRouter(tags=["rasa"])


def conversation_id(sender: str) -> str:
    """Rasa sender ids are free text; ours are [A-Za-z0-9_-]{1,64}."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "", sender)
    if safe == sender and len(sender) <= 58:
        return f"rasa-{sender}"
    return "rasa-" + hashlib.sha1(sender.encode()).hexdigest()


def inbound(sender: str, text: str, channel: str, max_chars: int, message_id: str | None = None) -> Message:
    text = checked_text(text, max_chars)
    if not text:
        raise ApiError(422, "empty_message", "send some text")
    payload = text if text.startswith("/") else None
    return Message(channel=channel, conversation_id=conversation_id(sender),
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


@router.post("/webhooks/rest/webhook", summary="Rasa REST channel")
async def rest_webhook(request: Request, body: RestIn) -> list[dict]:
    services = request.app.state.services
    msg = inbound(body.sender, body.message, "rest", services.settings.max_message_chars,
                  (body.metadata or {}).get("message_id"))
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


@router.post("/model/parse", summary="Rasa NLU parse")
async def model_parse(request: Request, body: ParseIn) -> dict:
    services = request.app.state.services
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


def socketio_server(app: Any, cors_origins: list[str] | None) -> socketio.AsyncServer:
    """Rasa's socket.io protocol: session_request -> session_confirm, user_uttered -> bot_uttered."""
    sio = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins=cors_origins or [],
                               max_http_buffer_size=64_000)

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
        services = app.state.services
        if not isinstance(data, dict) or not isinstance(data.get("message"), str):
            await sio.emit("error", {"error": "invalid_payload", "detail": "expected {message, session_id}"},
                           room=sid)
            return
        session_id = data.get("session_id") or (await sio.get_session(sid)).get("session_id") or sid
        try:
            msg = inbound(str(session_id), data["message"], "socketio", services.settings.max_message_chars)
            replies = await services.pipeline.handle(msg)
        except ApiError as exc:
            await sio.emit("error", {"error": exc.code, "detail": exc.detail}, room=sid)
            return
        for reply in replies:
            out: dict[str, Any] = {"text": reply.text}
            if reply.buttons:
                out["quick_replies"] = [{"content_type": "text", "title": b.title, "payload": b.payload}
                                        for b in reply.buttons]
            await sio.emit("bot_uttered", out, room=sid)

    return sio
