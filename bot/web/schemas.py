"""Request and response bodies of the public API (they are the OpenAPI schema too)."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bot.types import Button, Reply
from bot.web.errors import ApiError, ErrorOut

CONVERSATION_ID = r"^[A-Za-z0-9_-]{1,64}$"
MESSAGE_ID = r"^[A-Za-z0-9._:-]{1,128}$"
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069]")


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
    buttons: list[Button] = Field(default_factory=list)
    agent: str | None = None
    language: str | None = None


class ConversationOut(BaseModel):
    conversation_id: str
    handoff: bool
    language: str | None = None
    history: list[HistoryEvent]


def valid_conversation_id(conversation_id: str) -> bool:
    return re.fullmatch(CONVERSATION_ID, conversation_id) is not None


def checked_text(text: str, max_chars: int) -> str:
    """Cleaned message text, or the 422 that REST, WebSocket and the Rasa channels all give."""
    text = clean_text(text)
    if len(text) > max_chars:
        raise ApiError(422, "message_too_long", f"messages are limited to {max_chars} characters")
    return text


def clean_text(text: str) -> str:
    """Normalise Unicode, drop control and bidi-override characters, collapse runs of blank lines."""
    text = unicodedata.normalize("NFC", text)
    text = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\t", " "))
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()
