"""Who may read or write a web conversation: whoever holds the token the server issued for it.

A conversation id is not a credential (ids leak: URLs, logs, a shared screen). The server issues a
random token when a web conversation is created and keeps only its SHA-256 beside the session;
every read and write presents the token (`X-Conversation-Token`, or for a browser's WebSocket the
subprotocol `token.<token>` next to `supportbot`). Without the right token the answer is the same
404 as for an id that never existed. Channel conversations (Rasa, Telegram, WhatsApp...) never get
a token, so the web API cannot reach them at all.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from starlette.requests import HTTPConnection

from bot.sessions.store import SessionStore
from bot.web.errors import ApiError

TOKEN_HEADER = "x-conversation-token"
WS_PROTOCOL = "supportbot"
WS_TOKEN_PREFIX = "token."


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def unknown(conversation_id: str) -> ApiError:
    """The one answer for "no such conversation" and "not yours": existence is not revealed."""
    return ApiError(404, "unknown_conversation", f"no conversation {conversation_id!r}")


def presented_token(conn: HTTPConnection) -> str | None:
    """The token from the header, or from a WebSocket subprotocol `token.<token>`."""
    token = conn.headers.get(TOKEN_HEADER)
    if token:
        return token.strip()
    for protocol in conn.scope.get("subprotocols") or []:
        if protocol.startswith(WS_TOKEN_PREFIX):
            return protocol[len(WS_TOKEN_PREFIX):]
    return None


async def authorize(store: SessionStore, conversation_id: str, token: str | None) -> None:
    """Pass only with the token this conversation was created with."""
    expected = await store.owner(conversation_id)
    if token is None or expected is None or not hmac.compare_digest(digest(token), expected):
        raise unknown(conversation_id)


async def create(store: SessionStore, conversation_id: str) -> str:
    """Bind a new conversation to a fresh token and return the token (shown to its owner once)."""
    token = secrets.token_urlsafe(32)
    if not await store.claim_owner(conversation_id, digest(token)):
        raise unknown(conversation_id)
    return token


async def open_or_authorize(store: SessionStore, conversation_id: str,
                            token: str | None) -> str | None:
    """With a token: check it. Without: create the conversation, returning its new token (an id
    that exists already, of any channel, is a 404)."""
    if token is not None:
        await authorize(store, conversation_id, token)
        return None
    return await create(store, conversation_id)
