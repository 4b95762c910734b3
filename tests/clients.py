"""A test client that behaves like the widget: it keeps each conversation's token and sends it."""

from __future__ import annotations

import re
from typing import Any

from starlette.testclient import TestClient

_CONVERSATION = re.compile(r"/api/v1/conversations/([A-Za-z0-9_-]{1,64})(?:/|$)")


class WidgetClient(TestClient):
    """Remembers the `conversation_token` the server issues and presents it on later calls to the
    same conversation (REST and WebSocket), as the widget does from localStorage."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tokens: dict[str, str] = {}

    def request(self, method: str, url: Any, **kwargs: Any):  # type: ignore[override]
        cid = _cid(url)
        headers = dict(kwargs.pop("headers", None) or {})
        if cid in self.tokens and not any(k.lower() == "x-conversation-token" for k in headers):
            headers["X-Conversation-Token"] = self.tokens[cid]
        response = super().request(method, url, headers=headers, **kwargs)
        if cid and method.upper() == "POST" and response.status_code == 200:
            token = _json(response).get("conversation_token")
            if token:
                self.tokens[cid] = token
        return response

    def websocket_connect(self, url: str, subprotocols: Any = None, **kwargs: Any):  # type: ignore[override]
        cid = _cid(url)
        if cid and cid not in self.tokens:
            created = super().request("POST", "/api/v1/conversations", json={"conversation_id": cid})
            if created.status_code == 201:
                self.tokens[cid] = created.json()["conversation_token"]
        if cid in self.tokens:
            headers = dict(kwargs.pop("headers", None) or {})
            headers.setdefault("X-Conversation-Token", self.tokens[cid])
            kwargs["headers"] = headers
        return super().websocket_connect(url, subprotocols, **kwargs)


def _cid(url: Any) -> str | None:
    found = _CONVERSATION.search(str(url))
    return found.group(1) if found else None


def _json(response: Any) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
