"""Drop-in compatibility with Rasa clients over HTTP: the REST channel and `POST /model/parse`
(the socket.io channel is `bot.web.rasa_socketio`). The protocol itself, shapes and conversation
keying, is `bot.channels.rasa`; this module is the routes, validation and rate limits."""

from __future__ import annotations

import hmac
import json
import re
from typing import Any

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from bot.channels import rasa
from bot.channels.base import ChannelError
from bot.types import Message
from bot.web.errors import ApiError
from bot.web.inbound import inbound_request
from bot.web.schemas import MESSAGE_ID, checked_text, clean_text, error_responses
from bot.web.state import services_of

router = APIRouter(tags=["rasa"])


def api_error(exc: ChannelError) -> ApiError:
    """A refusal of the Rasa protocol, answered (and counted) like every API error."""
    return ApiError(exc.status, exc.code, exc.detail, headers=exc.headers)


def check_token(request: Request) -> None:
    """The optional shared token of the Rasa channels, from `Authorization: Bearer` or `?token=`."""
    expected = services_of(request).settings.web.rasa_channel_token
    try:
        rasa.check_channel_token(expected, rasa.request_token(inbound_request(request)))
    except ChannelError as exc:
        raise api_error(exc) from exc


def inbound(sender: str, text: str, channel: str, max_chars: int, message_id: object = None,
            key: bytes = b"") -> Message:
    """A Rasa client's message through the API's checks: its id, the text gate, not empty."""
    if message_id is not None and not (isinstance(message_id, str) and re.fullmatch(MESSAGE_ID, message_id)):
        raise ApiError(422, "invalid_request", [{"field": "metadata.message_id",
                                                 "problem": "1-128 of A-Z a-z 0-9 . _ : -"}])
    text = checked_text(text, max_chars)
    if not text:
        raise ApiError(422, "empty_message", "send some text")
    return rasa.message(sender, text, channel, message_id, key)


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
    services = services_of(request)
    check_token(request)
    msg = inbound(body.sender, body.message, "rest", services.settings.limits.max_message_chars,
                  (body.metadata or {}).get("message_id"), request.app.state.conversation_key)
    limiter = getattr(request.app.state, "limiter", None)
    if limiter is not None:  # the address's limit ran in the middleware
        await limiter.check("conversation", msg.conversation_id, "rest")
    replies = await services.pipeline.handle(msg)
    return [rasa.rest_reply(body.sender, r) for r in replies]


@router.get("/webhooks/rest/", summary="Rasa REST channel health")
async def rest_health() -> dict:
    return {"status": "ok"}


@router.post("/model/parse", summary="Rasa NLU parse",
             description="Rate limited per client address: 429 with Retry-After.",
             responses=error_responses(400, 413, 422, 429, 503))
async def model_parse(request: Request, body: ParseIn) -> dict:
    services = services_of(request)
    check_token(request)
    text = clean_text(body.text)
    parse = await services.pool.run(services.nlu.parse, text)
    answer = rasa.parse_answer(text, parse, services.domain.entities)
    if services.rasa is not None:  # the project's FallbackClassifier threshold, as Rasa answers
        answer.update(services.rasa.agent.apply_nlu_fallback(answer))
    return answer


def check_api_token(request: Request) -> None:
    """Rasa's HTTP API token (`rasa run --auth-token`): `?token=` must match `rasa.auth_token`.
    Without one configured these endpoints stay closed: a tracker is a whole conversation."""
    expected = services_of(request).settings.rasa.auth_token
    if expected is None:
        raise ApiError(403, "api_disabled", "set SUPPORTBOT_RASA__AUTH_TOKEN to use Rasa's conversation API")
    presented = request.query_params.get("token")
    if not presented or not hmac.compare_digest(presented.encode("utf-8", "surrogateescape"),
                                                expected.get_secret_value().encode()):
        raise ApiError(401, "bad_token", "Rasa's conversation API needs its `token` query parameter")


class TriggerIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z_][\w-]*$")
    entities: dict[str, str | int | float | bool | None] | None = None


EVENTS_VERBOSITY = ("ALL", "APPLIED", "AFTER_RESTART", "NONE")
SENDER = Path(min_length=1, max_length=256)


async def _tracker(request: Request, sender: str, include_events: str = "ALL") -> dict[str, Any]:
    services = services_of(request)
    if services.rasa is None:
        raise ApiError(404, "no_rasa_project", "this server does not run a Rasa project (--rasa DIR)")
    session = await services.store.get(rasa.conversation_id(sender, request.app.state.conversation_key))
    tracker = services.rasa.tracker(session) if session else services.rasa.tracker_for(sender)
    tracker.sender_id = sender
    body = tracker.as_dict()
    if include_events == "NONE":
        body.pop("events")
    elif include_events in ("APPLIED", "AFTER_RESTART"):
        body["events"] = tracker.applied_events()
    return body


@router.get("/conversations/{sender}/tracker", summary="Rasa tracker",
            description="The conversation in Rasa's tracker JSON; needs `?token=` (rasa.auth_token).",
            responses=error_responses(401, 403, 404, 422))
async def get_tracker(request: Request, sender: str = SENDER, include_events: str = "ALL") -> dict:
    check_api_token(request)
    if include_events.upper() not in EVENTS_VERBOSITY:
        problem = "one of " + ", ".join(EVENTS_VERBOSITY)
        raise ApiError(422, "invalid_request", [{"field": "include_events", "problem": problem}])
    return await _tracker(request, sender, include_events.upper())


@router.post("/conversations/{sender}/trigger_intent", summary="Rasa trigger_intent",
             description="Handle an intent (with entities) as if the user had sent it; answers the tracker "
                         "and the bot's messages. Needs `?token=` (rasa.auth_token).",
             responses=error_responses(400, 401, 403, 404, 422, 503))
async def trigger_intent(request: Request, body: TriggerIn, sender: str = SENDER) -> dict:
    check_api_token(request)
    services = services_of(request)
    if services.rasa is None:
        raise ApiError(404, "no_rasa_project", "this server does not run a Rasa project (--rasa DIR)")
    if body.name not in services.rasa.domain.intents:
        raise ApiError(422, "unknown_intent", f"the project's domain has no intent {body.name!r}")
    payload = f"/{body.name}" + (json.dumps(body.entities) if body.entities else "")
    msg = rasa.message(sender, payload, "rest", None, request.app.state.conversation_key)
    replies = await services.pipeline.handle(msg)
    messages = [rasa.rest_reply(sender, r) for r in replies]
    return {"tracker": await _tracker(request, sender), "messages": messages}
