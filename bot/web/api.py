"""The conversation API: REST and WebSocket over the same pipeline."""

from __future__ import annotations

import asyncio
import json
import uuid

from fastapi import APIRouter, Path, Request, WebSocket, WebSocketDisconnect
from pydantic import ValidationError

from bot.types import Message
from bot.web.errors import ApiError
from bot.web.schemas import (
    CONVERSATION_ID,
    ConversationOut,
    MessageIn,
    MessageOut,
    checked_text,
    valid_conversation_id,
)

router = APIRouter(prefix="/api/v1")
ConversationId = Path(pattern=CONVERSATION_ID, description="Chosen by the client (the widget: a random id).")


def to_message(conversation_id: str, body: MessageIn, max_chars: int, channel: str = "web") -> Message:
    """Validate one inbound message the same way for REST and WebSocket."""
    text = checked_text(body.text or "", max_chars)
    payload = (body.payload or "").strip() or None
    if not text and not payload:
        raise ApiError(422, "empty_message", "send some text or a button payload")
    return Message(channel=channel, conversation_id=conversation_id,
                   message_id=body.message_id or uuid.uuid4().hex, text=text, payload=payload)


@router.post("/conversations/{conversation_id}/messages", response_model=MessageOut,
             summary="Send a customer message and get the bot's replies")
async def post_message(request: Request, body: MessageIn,
                       conversation_id: str = ConversationId) -> MessageOut:
    services = request.app.state.services
    msg = to_message(conversation_id, body, services.settings.max_message_chars)
    replies = await services.pipeline.handle(msg)
    return MessageOut(conversation_id=conversation_id, message_id=msg.message_id, replies=replies)


@router.get("/conversations/{conversation_id}", response_model=ConversationOut,
            summary="A conversation's state and history (the widget restores itself from it)")
async def get_conversation(request: Request, conversation_id: str = ConversationId) -> ConversationOut:
    session = await request.app.state.services.store.get(conversation_id)
    if session is None:
        raise ApiError(404, "unknown_conversation", f"no conversation {conversation_id!r}")
    return ConversationOut(conversation_id=conversation_id, handoff=session.handoff,
                           language=session.language,
                           history=[e.model_dump() for e in session.history])


@router.get("/widget", summary="The widget's own strings (from the domain file)")
async def widget_strings(request: Request) -> dict[str, str]:
    return request.app.state.services.domain.widget.model_dump()


@router.websocket("/conversations/{conversation_id}/ws")
async def conversation_socket(websocket: WebSocket, conversation_id: str) -> None:
    """Send `{"text": ...}` frames; get `{"type": "typing"}`, for a generated answer
    `{"type": "delta", "text": ...}` frames as it is written (each a checked sentence), then
    `{"type": "replies", ...}` with the final text and its sources (what a retry gets too)."""
    services = websocket.app.state.services
    settings = services.settings
    if not valid_conversation_id(conversation_id):
        await websocket.close(code=1008, reason="invalid conversation id")
        return
    await websocket.accept()
    pushes = asyncio.create_task(_push_conversation_events(websocket, services, conversation_id))
    try:
        while True:
            raw = await websocket.receive_text()
            try:
                if len(raw.encode()) > settings.max_body_bytes:
                    raise ApiError(413, "body_too_large",
                                   f"frames are limited to {settings.max_body_bytes} bytes")
                try:
                    data = json.loads(raw)
                except json.JSONDecodeError as exc:
                    raise ApiError(400, "invalid_json", "the frame is not valid JSON") from exc
                try:
                    body = MessageIn.model_validate(data)
                except ValidationError as exc:
                    raise ApiError(422, "invalid_request",
                                   [{"field": ".".join(map(str, e["loc"])), "problem": e["msg"]}
                                    for e in exc.errors()]) from exc
                msg = to_message(conversation_id, body, settings.max_message_chars)
                await websocket.send_json({"type": "typing", "message_id": msg.message_id})

                async def delta(text: str, message_id: str = msg.message_id) -> None:
                    await websocket.send_json({"type": "delta", "message_id": message_id, "text": text})

                replies = await services.pipeline.handle(msg, on_delta=delta)
                await websocket.send_json({"type": "replies", "message_id": msg.message_id,
                                           "replies": [r.model_dump() for r in replies]})
            except ApiError as exc:
                services.metrics.errors.labels(exc.code).inc()
                await websocket.send_json({"type": "error", "error": exc.code, "detail": exc.detail})
    except WebSocketDisconnect:
        return
    finally:
        pushes.cancel()


async def _push_conversation_events(websocket: WebSocket, services, conversation_id: str) -> None:  # type: ignore[no-untyped-def]
    """Agent joined / agent message / typing / back to the bot, live, from any replica."""
    pubsub = services.store.r.pubsub()
    await pubsub.subscribe(services.queue.conversation_channel(conversation_id))
    try:
        async for msg in pubsub.listen():
            if msg.get("type") == "message":
                await websocket.send_json(json.loads(msg["data"]))
    finally:
        await pubsub.unsubscribe()
        await pubsub.aclose()
