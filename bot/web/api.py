"""The conversation API: REST and WebSocket over the same pipeline."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Path, Query, Request, Response, WebSocket, WebSocketDisconnect
from pydantic import ValidationError

from bot.textsafety import InvalidText
from bot.types import Event, Message, Session
from bot.web import ownership
from bot.web.errors import ApiError, as_api_error, invalid_request
from bot.web.schemas import (
    CONVERSATION_ID,
    EMAIL,
    Availability,
    ContactIn,
    ContactOut,
    ConversationCreated,
    ConversationIn,
    ConversationOut,
    MessageIn,
    MessageOut,
    RatingIn,
    RatingOut,
    VoteIn,
    checked_text,
    error_responses,
    valid_conversation_id,
)
from bot.web.security import origin_allowed
from bot.web.state import services_of

router = APIRouter(prefix="/api/v1")
ConversationId = Path(pattern=CONVERSATION_ID,
                      description="From `POST /conversations`, or chosen by the client (a random id) on its "
                                  "first message; later calls send its `X-Conversation-Token`.")


def to_message(conversation_id: str, body: MessageIn, max_chars: int, channel: str = "web") -> Message:
    """Validate one inbound message the same way for REST and WebSocket."""
    text = checked_text(body.text or "", max_chars)
    payload = checked_text(body.payload or "", max_chars) or None
    if not text and not payload:
        raise ApiError(422, "empty_message", "send some text or a button payload")
    if text and payload:
        raise ApiError(422, "text_with_payload", "send either text or a button payload, not both")
    return Message(channel=channel, conversation_id=conversation_id,
                   message_id=body.message_id or uuid.uuid4().hex, text=text, payload=payload)


@router.post("/conversations/{conversation_id}/messages", response_model=MessageOut,
             summary="Send a customer message and get the bot's replies",
             description="Rate limited per client address and per conversation "
                         "(`Settings.rate_limit`): over a limit, 429 with `Retry-After`.",
             responses=error_responses(400, 404, 413, 415, 422, 429, 503))
async def post_message(request: Request, body: MessageIn,
                       conversation_id: str = ConversationId) -> MessageOut:
    services = services_of(request)
    msg = to_message(conversation_id, body, services.settings.limits.max_message_chars)
    limiter = getattr(request.app.state, "limiter", None)
    if limiter is not None:  # the address's limit ran in the middleware, before the body was read
        await limiter.check("conversation", conversation_id, "web")
    token = await ownership.open_or_authorize(services.store, conversation_id,
                                              ownership.presented_token(request))
    try:
        replies = await services.pipeline.handle(msg)
    except BaseException:
        if token is not None:  # the client never saw the token: let its retry create it again
            await services.store.disown(conversation_id)
        raise
    return MessageOut(conversation_id=conversation_id, message_id=msg.message_id, replies=replies,
                      conversation_token=token,
                      rateable=await _rateable(services.store, conversation_id, msg.message_id))


ANSWERS = ("faq_answer", "generate")


async def _rateable(store: Any, conversation_id: str, message_id: str) -> bool:
    """Whether the bot answered message `message_id` (an FAQ entry or a generated answer): what the
    widget offers a thumbs up/down on."""
    session = await store.get(conversation_id)
    if session is None:
        return False
    for i in range(len(session.history) - 1, -1, -1):
        event = session.history[i]
        if event.role == "user" and event.message_id == message_id:
            after = session.history[i + 1:i + 2]
            return bool(after) and after[0].role == "bot" and after[0].action in ANSWERS
    return False


@router.post("/conversations", response_model=ConversationCreated, status_code=201,
             summary="Start a conversation: a server-chosen id and the token that owns it",
             responses=error_responses(404, 422, 429, 503))
async def create_conversation(request: Request, body: ConversationIn | None = None) -> ConversationCreated:
    """The id is the server's choice unless the client names a new one (an id in use is a 404)."""
    conversation_id = body.conversation_id if body and body.conversation_id else uuid.uuid4().hex
    token = await ownership.create(services_of(request).store, conversation_id)
    return ConversationCreated(conversation_id=conversation_id, conversation_token=token)


@router.get("/conversations/{conversation_id}", response_model=ConversationOut,
            summary="A conversation's state and history (the widget restores itself from it)",
            responses=error_responses(404, 422, 503))
async def get_conversation(request: Request, conversation_id: str = ConversationId) -> ConversationOut:
    store = services_of(request).store
    await ownership.authorize(store, conversation_id, ownership.presented_token(request))
    session = await store.get(conversation_id)
    if session is None:  # created, nothing said yet
        return ConversationOut(conversation_id=conversation_id, handoff=False, history=[])
    return ConversationOut(conversation_id=conversation_id, handoff=session.handoff,
                           language=session.language, contact_email=session.contact_email,
                           rating_requested=session.rating_requested, rating_agent=session.rating_agent,
                           history=_history(session.history))


def _history(events: list[Event]) -> list[dict[str, Any]]:
    """The history as the widget reads it: each bot reply names the customer message it answers
    (the turn a vote is about)."""
    out, turn = [], None
    for event in events:
        row = event.model_dump()
        if event.role == "user":
            turn = event.message_id
        elif event.role == "bot":
            row["message_id"] = turn
        else:
            row["message_id"] = None
        out.append(row)
    return out


@router.post("/conversations/{conversation_id}/votes", status_code=204,
             summary="A thumbs up or down on the bot's answer to one of the customer's messages",
             responses=error_responses(404, 422, 503))
async def vote(request: Request, body: VoteIn, conversation_id: str = ConversationId) -> Response:
    """Only the conversation's owner votes (its token; otherwise the same 404 as for an unknown id);
    a message the transcripts do not have is 404 `unknown_message`. Voting again replaces the vote."""
    services = services_of(request)
    await ownership.authorize(services.store, conversation_id, ownership.presented_token(request))
    transcripts = services.transcripts
    found = await asyncio.to_thread(transcripts.set_vote, conversation_id, body.message_id, body.vote)
    if not found:
        raise ApiError(404, "unknown_message", f"no answered message {body.message_id!r}")
    return Response(status_code=204)


@router.post("/conversations/{conversation_id}/rating", response_model=RatingOut, status_code=201,
             summary="The customer's rating (1-5, a comment) after an agent closed the conversation",
             responses=error_responses(404, 409, 422, 503))
async def rate(request: Request, body: RatingIn, conversation_id: str = ConversationId) -> RatingOut:
    """Once per closing by an agent: without one to rate, 409 `no_rating_requested` (a second
    rating of the same closing included). The row is written before the request is cleared, so a
    failure on the way loses nothing: the widget asks again."""
    services = services_of(request)
    await ownership.authorize(services.store, conversation_id, ownership.presented_token(request))
    comment = checked_text(body.comment or "", 1000) or None
    async with services.store.lock(conversation_id):
        session = await services.store.get(conversation_id)
        if session is None or not session.rating_requested:
            raise ApiError(409, "no_rating_requested", "there is no closed conversation to rate")
        await asyncio.to_thread(services.transcripts.add_rating, conversation_id, body.score, comment,
                                session.rating_agent)
        session.rating_requested = False
        await services.store.save(session)
    return RatingOut(score=body.score, comment=comment)


@router.put("/conversations/{conversation_id}/contact", response_model=ContactOut,
            summary="The customer's e-mail address for a reply while nobody from the team is there",
            responses=error_responses(404, 422, 503))
async def set_contact(request: Request, body: ContactIn, conversation_id: str = ConversationId) -> ContactOut:
    """Kept on the session (`contact_email`, shown in the console) and in the transcripts."""
    services = services_of(request)
    await ownership.authorize(services.store, conversation_id, ownership.presented_token(request))
    email = checked_text(body.email, 254)
    if not email or not re.fullmatch(EMAIL, email):
        raise ApiError(422, "invalid_email", "not an e-mail address")
    async with services.store.lock(conversation_id):
        session = await services.store.get(conversation_id) or Session(conversation_id=conversation_id)
        session.contact_email = email
        await services.store.save(session)
    await asyncio.to_thread(services.transcripts.set_customer_email, conversation_id, email)
    return ContactOut(contact_email=email)


@router.get("/availability", response_model=Availability,
            summary="Whether the team is there now: business hours and agents logged in")
async def availability(request: Request) -> Availability:
    handoff = services_of(request).handoff
    open_now = handoff.hours.open_at(datetime.now(UTC))
    online = bool(await handoff.queue.agents_online())
    return Availability(open_now=open_now, agents_online=online, available=open_now and online)


@router.get("/widget", summary="The widget's own strings (from the domain file)")
async def widget_strings(
        request: Request,
        lang: str | None = Query(None, max_length=35, description="The widget's locale, e.g. `zh-CN`."),
) -> dict[str, str]:
    """The domain's widget strings in `lang` where the domain has a translation of them (only the
    translated ones), else in the domain's own language; `language` says which. The widget puts
    them over its message catalog (static/i18n/) only when they are in the language it shows."""
    domain = services_of(request).domain
    wanted = (lang or "").replace("_", "-").split("-")[0].lower()
    translation = domain.translations.get(wanted) if wanted != domain.language else None
    if translation is not None:
        return {**translation.widget, "language": wanted}
    return {**domain.widget.model_dump(exclude_none=True), "language": domain.language}


@router.websocket("/conversations/{conversation_id}/ws")
async def conversation_socket(websocket: WebSocket, conversation_id: str) -> None:
    """Send `{"text": ...}` frames; get `{"type": "typing"}`, for a generated answer
    `{"type": "delta", "text": ...}` frames as it is written (each a checked sentence), then
    `{"type": "replies", ...}` with the final text and its sources (what a retry gets too).
    Errors are `{"type": "error", "error": code, "detail", "message_id"}` frames, the socket stays
    open (`rate_limited` ones carry `retry_after` seconds). Browsers may open it from this site and
    from `Settings.widget_origins` only."""
    services = services_of(websocket)
    admitted, token = await _admit(websocket, services, conversation_id)
    if not admitted:
        return
    limiter = getattr(websocket.app.state, "limiter", None)
    client = limiter.client_address(websocket.scope) if limiter is not None else ""
    offered = websocket.scope.get("subprotocols") or []
    await websocket.accept(subprotocol=ownership.WS_PROTOCOL if ownership.WS_PROTOCOL in offered else None)
    if token is not None:  # a new conversation: its owner's token, once
        await websocket.send_json({"type": "conversation", "conversation_id": conversation_id,
                                   "conversation_token": token})
    # The app owns the push task (bot.background): it is ended at shutdown whatever happens here.
    tasks = websocket.app.state.tasks
    pushes = tasks.spawn(_push_conversation_events(websocket, services, conversation_id),
                         name="conversation-pushes", quiet=(WebSocketDisconnect, RuntimeError, OSError),
                         endless=True)
    try:
        while True:
            raw = await _receive_text(websocket)
            await _answer_frame(websocket, services, conversation_id, raw, limiter, client)
    except WebSocketDisconnect:
        return
    finally:
        await tasks.stop(pushes)  # cancelled and awaited: its pub/sub connection is closed now


async def _admit(websocket: WebSocket, services: Any, conversation_id: str) -> tuple[bool, str | None]:
    """Whether the socket may open (else it is closed with 1008), and the new conversation's
    token when the socket creates one."""
    reason = None
    if not valid_conversation_id(conversation_id):
        reason = "invalid conversation id"
    elif not origin_allowed(websocket.headers.get("origin"), websocket.headers.get("host"),
                            services.settings.web.widget_origins):
        reason = "origin not allowed"
    else:
        try:
            return True, await ownership.open_or_authorize(services.store, conversation_id,
                                                           ownership.presented_token(websocket))
        except ApiError:
            reason = "unknown conversation"
    await websocket.close(code=1008, reason=reason)
    return False, None


async def _answer_frame(websocket: WebSocket, services: Any, conversation_id: str, raw: str | None,
                        limiter: Any, client: str) -> None:
    """One frame in: typing, deltas and the replies out, or an error frame."""
    settings = services.settings
    message_id = None
    try:
        body = _parse_frame(raw, settings.limits.max_body_bytes)
        message_id = body.message_id
        if limiter is not None:
            await limiter.message(client, conversation_id, "web")
        msg = to_message(conversation_id, body, settings.limits.max_message_chars)
        await websocket.send_json({"type": "typing", "message_id": msg.message_id})

        async def delta(text: str, message_id: str = msg.message_id) -> None:
            await websocket.send_json({"type": "delta", "message_id": message_id, "text": text})

        replies = await services.pipeline.handle(msg, on_delta=delta)
        rateable = await _rateable(services.store, conversation_id, msg.message_id)
        await websocket.send_json({"type": "replies", "message_id": msg.message_id,
                                   "replies": [r.model_dump() for r in replies], "rateable": rateable})
    except (ApiError, InvalidText) as refused:  # InvalidText: the pipeline's payload check
        exc = as_api_error(refused)
        services.metrics.errors.labels(exc.code).inc()
        frame = {"type": "error", **exc.body()}
        if message_id is not None:  # the widget matches the error to the message it sent
            frame["message_id"] = message_id
        await websocket.send_json(frame)


def _parse_frame(raw: str | None, max_bytes: int) -> MessageIn:
    """A text frame as a message, checked like a REST body (ApiError otherwise)."""
    if raw is None:
        raise ApiError(400, "binary_frame", "send JSON in text frames")
    if len(raw.encode()) > max_bytes:
        raise ApiError(413, "body_too_large", f"frames are limited to {max_bytes} bytes")
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ApiError(400, "invalid_json", "the frame is not valid JSON") from exc
    try:
        return MessageIn.model_validate(data)
    except ValidationError as exc:
        raise invalid_request(exc.errors()) from exc


async def _receive_text(websocket: WebSocket) -> str | None:
    """The next text frame; None for a binary one (answered with an error frame, not a drop)."""
    message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000), message.get("reason"))
    return message.get("text")


async def _push_conversation_events(websocket: WebSocket, services: Any, conversation_id: str) -> None:
    """Agent joined / agent message / typing / back to the bot, live, from any replica."""
    await services.store.follow([services.queue.conversation_channel(conversation_id)], websocket.send_json)
