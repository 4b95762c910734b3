"""Customers' photos over HTTP: the widget uploads one (the raw image as the body) and reads it back
with the conversation's token; console agents read it with their session (bot/web/console/images.py).

The upload is the one route whose body is not small JSON: `BodyLimit` lets it through with
`Settings.attachments.max_bytes` and the three image types (`upload_rule`), and still counts the
bytes as they stream in. What the body really is, Pillow decides (bot/images.py).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel, Field

from bot.config import Settings
from bot.handoff.attachments import AttachmentService
from bot.images import CONTENT_TYPES, ImageRejected
from bot.services import Services
from bot.types import Reply
from bot.web import ownership
from bot.web.errors import ApiError
from bot.web.limits import BodyRule
from bot.web.schemas import CONVERSATION_ID, MESSAGE_ID, error_responses
from bot.web.state import services_of

router = APIRouter(prefix="/api/v1")
ATTACHMENT_ID = r"^[0-9a-f]{32}$"
IMAGE_TYPES = sorted(CONTENT_TYPES)
UNSUPPORTED = "send the image as image/jpeg, image/png or image/webp"
ConversationId = Path(pattern=CONVERSATION_ID, description="The conversation (its X-Conversation-Token).")
AttachmentId = Path(pattern=ATTACHMENT_ID, description="From the upload's answer or the history.")
SERVED_HEADERS = {"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff",
                  "Content-Disposition": "inline"}
_BINARY = {"schema": {"type": "string", "format": "binary"}}
IMAGE_CONTENT: dict[str, Any] = {content_type: _BINARY for content_type in IMAGE_TYPES}


def upload_rule(settings: Settings) -> BodyRule:
    """The upload route's exception to the app's body limit."""
    return BodyRule("POST", re.compile(r"/api/v1/conversations/[^/]+/attachments"),
                    settings.attachments.max_bytes, CONTENT_TYPES, UNSUPPORTED)


def customer_url(conversation_id: str, attachment_id: str) -> str:
    return f"/api/v1/conversations/{conversation_id}/attachments/{attachment_id}"


class AttachmentOut(BaseModel):
    id: str
    content_type: str = Field(description="What the image was re-encoded as (the format it came in).")
    width: int
    height: int
    url: str = Field(description="Where the widget reads it (with `X-Conversation-Token`).")


class AttachmentCreated(BaseModel):
    attachment: AttachmentOut
    replies: list[Reply] = Field(description="The bot's answer; none once an agent has the conversation.")


@router.post("/conversations/{conversation_id}/attachments", response_model=AttachmentCreated,
             status_code=201, summary="Send a photo (JPEG, PNG or WebP) to the conversation",
             description="The raw image is the body. It is re-encoded without any metadata (EXIF, GPS, "
                         "XMP, ICC, text chunks), upright and at most `Settings.attachments.max_side` "
                         "pixels on its longer side. The conversation goes to the team (hand-off reason "
                         "`attachment`) unless it is with them already. 415 `unsupported_media_type` for "
                         "another Content-Type; 422 `unsupported_image_type`, `invalid_image` or "
                         "`image_too_large` for what the bytes turn out to be; 413 `body_too_large` over "
                         "`Settings.attachments.max_bytes`. Rate limited like messages. An optional "
                         "`X-Message-Id` makes a retry safe: the same id gets the first upload's answer "
                         "and nothing is kept twice.",
             responses=error_responses(404, 413, 415, 422, 429, 503),
             openapi_extra={"requestBody": {"required": True, "content": IMAGE_CONTENT}})
async def upload(request: Request, conversation_id: str = ConversationId) -> AttachmentCreated:
    services = services_of(request)
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in CONTENT_TYPES:
        raise ApiError(415, "unsupported_media_type", UNSUPPORTED)
    limiter = getattr(request.app.state, "limiter", None)
    if limiter is not None:  # the address's limit ran in the middleware, before the body was read
        await limiter.check("conversation", conversation_id, "web")
    # An attachment never creates a conversation: only its owner's token gets this far.
    await ownership.authorize(services.store, conversation_id, ownership.presented_token(request))
    attachments = _service(services)
    data = await _body(request, services.settings.attachments.max_bytes)
    if not data:
        raise ApiError(422, "invalid_image", "the body is empty: send the image's bytes")
    message_id = request.headers.get("x-message-id") or None
    if message_id is not None and not re.fullmatch(MESSAGE_ID, message_id):
        raise ApiError(422, "invalid_message_id", "X-Message-Id: 1-128 letters, digits or ._:-")
    try:
        received = await attachments.receive(conversation_id, data, message_id=message_id)
    except ImageRejected as exc:
        raise ApiError(422, exc.code, exc.detail) from exc
    a = received.attachment
    return AttachmentCreated(
        attachment=AttachmentOut(id=a.id, content_type=a.content_type, width=a.width, height=a.height,
                                 url=customer_url(conversation_id, a.id)),
        replies=received.replies)


@router.get("/conversations/{conversation_id}/attachments/{attachment_id}", response_class=Response,
            summary="A photo of the conversation, as it was kept (cleaned)",
            responses={200: {"description": "The image", "content": IMAGE_CONTENT},
                       **error_responses(404, 422, 503)})
async def read(request: Request, conversation_id: str = ConversationId,
               attachment_id: str = AttachmentId) -> Response:
    """Only with the conversation's token; another conversation's attachment is a 404."""
    services = services_of(request)
    await ownership.authorize(services.store, conversation_id, ownership.presented_token(request))
    return await image_response(services, conversation_id, attachment_id)


async def image_response(services: Services, conversation_id: str, attachment_id: str) -> Response:
    """The kept bytes with their type; 404 `unknown_attachment` when this conversation has no such one."""
    found = None
    if re.fullmatch(ATTACHMENT_ID, attachment_id):
        found = await asyncio.to_thread(_service(services).records.read, conversation_id, attachment_id)
    if found is None:
        raise ApiError(404, "unknown_attachment", f"no attachment {attachment_id!r} in this conversation")
    stored, data = found
    return Response(data, media_type=stored.content_type, headers=SERVED_HEADERS)


def _service(services: Services) -> AttachmentService:
    if services.attachments is None:
        raise ApiError(404, "not_found", "attachments are not enabled")
    return services.attachments


async def _body(request: Request, max_bytes: int) -> bytes:
    """The body, counted as it streams in (whatever Content-Length said, or without one)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise ApiError(413, "body_too_large", f"images are limited to {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
