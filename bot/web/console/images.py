"""Customers' photos for console agents: the cookie session is the credential, so an `<img src>`
in the console page loads them. Whoever may read the conversation may read its photos."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from bot.handoff.agents import AgentInfo
from bot.web.attachments import IMAGE_CONTENT, image_response
from bot.web.console.auth import current_agent
from bot.web.console.conversations import _access
from bot.web.schemas import error_responses
from bot.web.state import services_of

router = APIRouter(prefix="/console", responses=error_responses(401, 403, 422))


@router.get("/api/conversations/{conversation_id}/attachments/{attachment_id}", response_class=Response,
            summary="A photo the customer sent, for an agent who may read the conversation",
            responses={200: {"description": "The image", "content": IMAGE_CONTENT}, **error_responses(404)})
async def attachment(request: Request, conversation_id: str, attachment_id: str,
                     agent: AgentInfo = Depends(current_agent)) -> Response:
    session = await _access(request, conversation_id, agent, "read")
    return await image_response(services_of(request), session.conversation_id, attachment_id)
