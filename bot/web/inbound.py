"""The seam between Starlette and the channels: an HTTP request becomes a framework-free
`InboundRequest`, and what a channel answers (a refusal, a handshake, an acknowledgement) becomes a
response."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from bot.channels.base import Answer, ChannelError, Headers, InboundRequest


def inbound_request(request: Request, body: bytes = b"") -> InboundRequest:
    """The request as a channel reads it (headers decoded as latin-1, as Starlette does)."""
    headers = Headers((k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw)
    return InboundRequest(
        method=request.method,
        path=request.url.path,
        headers=headers,
        query=dict(request.query_params.items()),
        body=body,
        url=str(request.url),
        raw_query=request.scope.get("query_string", b"").decode("latin-1"),
        client=request.client.host if request.client else None,
    )


async def read_inbound(request: Request) -> InboundRequest:
    """`inbound_request` with the body (read once; the body limit applies as it streams in)."""
    return inbound_request(request, await request.body())


def answer_response(answer: Answer) -> Response:
    if isinstance(answer.content, dict):
        return JSONResponse(answer.content)
    return Response(answer.content, media_type=answer.media_type)


def refusal(exc: ChannelError) -> JSONResponse:
    """`{"error": code, "detail": ...}` with the channel's status and headers."""
    return JSONResponse({"error": exc.code, "detail": exc.detail}, status_code=exc.status,
                        headers=exc.headers)
