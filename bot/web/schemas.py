"""Request and response bodies of the public API (they are the OpenAPI schema too)."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from bot.textsafety import InvalidText, safe_text
from bot.types import Attachment, Button, Reply
from bot.web.errors import ErrorOut, as_api_error

CONVERSATION_ID = r"^[A-Za-z0-9_-]{1,64}$"
MESSAGE_ID = r"^[A-Za-z0-9._:-]{1,128}$"
EMAIL = r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$"


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str | None = Field(None, description="What the customer typed.")
    payload: str | None = Field(None, max_length=512, description="A button's payload, e.g. `/affirm`.")
    message_id: str | None = Field(
        None, pattern=MESSAGE_ID,
        description="Client-chosen id; a retry with the same id gets the first reply, not a second turn.",
    )


class MessageOut(BaseModel):
    conversation_id: str
    message_id: str
    replies: list[Reply]
    conversation_token: str | None = Field(
        None, description="Only on the message that created the conversation: the secret that reads "
                          "and writes it from now on (send it as `X-Conversation-Token`). Keep it.")
    rateable: bool = Field(False, description="The replies answer the question (an FAQ entry or a generated "
                                              "answer): the customer may vote on them (`POST .../votes`).")


class ConversationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    conversation_id: str | None = Field(None, pattern=CONVERSATION_ID,
                                        description="A new id of the client's choice; default: the server's.")


class ConversationCreated(BaseModel):
    conversation_id: str
    conversation_token: str = Field(description="Send it as `X-Conversation-Token` on every later call.")


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for the error statuses a route answers, all with the ErrorOut body."""
    described = {400: "Malformed body", 401: "Not logged in / no credentials", 403: "Forbidden",
                 404: "Not found", 409: "Conflict", 413: "Body too large", 415: "Not JSON",
                 422: "Invalid request", 429: "Rate limited (see Retry-After)",
                 503: "Busy or a dependency is briefly unavailable (see Retry-After)"}
    return {status: {"model": ErrorOut, "description": described[status]} for status in statuses}


class HistoryEvent(BaseModel):
    role: str
    text: str
    at: float
    message_id: str | None = Field(None, description="The customer message this entry answers (bot replies "
                                                     "carry their turn's id: what a vote names).")
    action: str | None = Field(None, description="Bot replies: what answered (`faq_answer`, `generate`...).")
    buttons: list[Button] = Field(default_factory=list)
    agent: str | None = None
    language: str | None = None
    attachment: Attachment | None = Field(
        None, description="A photo the customer sent: GET "
                          "`/api/v1/conversations/{id}/attachments/{attachment.id}` serves it.")


class ConversationOut(BaseModel):
    conversation_id: str
    handoff: bool
    language: str | None = None
    contact_email: str | None = None
    rating_requested: bool = Field(False, description="An agent closed the conversation: ask for a rating.")
    rating_agent: str | None = Field(None, description="Whom the rating is about.")
    history: list[HistoryEvent]


class VoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message_id: str = Field(pattern=MESSAGE_ID, description="The customer message whose answer is rated.")
    vote: Literal["up", "down"]


class RatingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    score: int = Field(ge=1, le=5, strict=True, description="1 (very unhappy) to 5 (very happy).")
    comment: str | None = Field(None, max_length=1000, description="What went well or badly, optional.")


class RatingOut(BaseModel):
    score: int
    comment: str | None = None


class ContactIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str = Field(min_length=3, max_length=254, pattern=EMAIL,
                       description="Where the team replies while nobody is available.")


class ContactOut(BaseModel):
    contact_email: str


class Availability(BaseModel):
    open_now: bool = Field(description="Within the business hours (`Settings.handoff.business_hours`).")
    agents_online: bool = Field(description="At least one agent is logged in to the console.")
    available: bool = Field(description="Both: a hand-off now reaches a person.")


def valid_conversation_id(conversation_id: str) -> bool:
    return re.fullmatch(CONVERSATION_ID, conversation_id) is not None


def checked_text(text: str, max_chars: int) -> str:
    """Customer text through the one gate (`bot.textsafety`), or the 422 every entry point gives."""
    try:
        return safe_text(text, max_chars)
    except InvalidText as exc:
        raise as_api_error(exc) from exc


def clean_text(text: str) -> str:
    """Text without a length limit (an agent's reply, a parse request), through the same gate."""
    return checked_text(text, max_chars=10**9)
