"""Client of a Rasa project's own rasa-sdk action server: custom actions run there, not in supportbot.

Speaks Rasa 3's action protocol: POST the action call (`next_action`, `sender_id`, `tracker`, `domain`,
`version`) to the endpoint URL and read back `{"events": [...], "responses": [...]}`. Every failure is
one of two exceptions: `ActionRejected` (the action declined to run, which Rasa treats as "predict
something else") or `ActionServerError` with a `kind` the caller can degrade and count by.
Action calls are never retried: an action may have side effects (opening a ticket) that a second
call would repeat.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from typing import Any, Literal, Self

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from bot.observability import redact_url

ErrorKind = Literal["unreachable", "timeout", "bad_response"]
DETAIL_CHARS = 300  # how much of an unexpected answer goes into an error's detail


class ActionServerError(Exception):
    """The action server could not run an action: `kind` says whether it was unreachable, too slow,
    or answered something that is not a valid action result (including 404 for an unknown action)."""

    def __init__(self, kind: ErrorKind, action: str | None, detail: str) -> None:
        super().__init__(f"action server {kind}" + (f" running {action!r}" if action else "") + f": {detail}")
        self.kind: ErrorKind = kind
        self.action = action
        self.detail = detail


class ActionRejected(Exception):
    """The action raised rasa-sdk's ActionExecutionRejection (HTTP 400 naming the action): it declined
    to run, and the dialogue should choose another action rather than fail."""

    def __init__(self, action: str, detail: str) -> None:
        super().__init__(f"action {action!r} rejected execution: {detail}")
        self.action = action
        self.detail = detail


class ActionResult(BaseModel):
    """What a custom action returned: tracker events to apply and messages to send, in order."""

    model_config = ConfigDict(extra="ignore")

    # Rasa reads a missing list as empty; so does this.
    events: list[dict[str, Any]] = []
    responses: list[dict[str, Any]] = []

    @field_validator("events")
    @classmethod
    def _events_are_typed(cls, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for index, event in enumerate(events):
            if not isinstance(event.get("event"), str):
                raise ValueError(f"event {index} has no 'event' type: {_excerpt(event)}")
        return events


class _ActionEndpoint(BaseModel):
    """endpoints.yml's `action_endpoint`: the parts of Rasa's EndpointConfig an action server uses."""

    model_config = ConfigDict(extra="ignore")

    url: str
    token: str | None = None
    cafile: str | None = None


class ActionServer:
    """One action server, called over a shared async HTTP client; `aclose()` closes a client this
    object made (a client passed in stays the caller's)."""

    def __init__(self, url: str, timeout_s: float = 10.0, token: str | None = None,
                 client: httpx.AsyncClient | None = None) -> None:
        webhook = httpx.URL(url)
        if webhook.scheme not in ("http", "https") or not webhook.host:
            raise ValueError(f"action server URL must be http(s)://host[:port]/path, got {redact_url(url)}")
        self.url = webhook
        self.root = webhook.copy_with(path="/", query=None, fragment=None)
        self.timeout_s = timeout_s
        # Rasa sends the token as a query parameter, beside any the configured URL has of its own.
        self._token = {"token": token} if token else {}
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(timeout=timeout_s)

    @classmethod
    def from_endpoints(cls, doc: dict[str, Any], timeout_s: float = 10.0) -> ActionServer | None:
        """The action server a parsed endpoints.yml names, or None when it names none (a project
        without custom actions). `cafile` verifies an https server against that CA bundle."""
        section = (doc or {}).get("action_endpoint")
        if section is None:
            return None
        try:
            endpoint = _ActionEndpoint.model_validate(section)
        except ValidationError as exc:
            raise ValueError(f"endpoints.yml action_endpoint needs a url: {exc.errors()[0]['msg']}") from exc
        client = None
        if endpoint.cafile:
            context = ssl.create_default_context(cafile=endpoint.cafile)
            client = httpx.AsyncClient(timeout=timeout_s, verify=context)
        server = cls(endpoint.url, timeout_s=timeout_s, token=endpoint.token, client=client)
        server._owns_client = True  # the CA-pinned client above is this server's own
        return server

    async def run(self, request: dict[str, Any]) -> ActionResult:
        """Run `request["next_action"]` on the server and return its validated result."""
        action = str(request["next_action"]) if request.get("next_action") else None
        response = await self._send("POST", self.url, action, json=request)
        body = _json(response)
        if response.status_code == 200:
            if body is _NO_JSON:
                raise ActionServerError("bad_response", action, f"not JSON: {_excerpt(response.text)}")
            if body is None:
                raise ActionServerError("bad_response", action, "answered null (no next_action in the call?)")
            try:
                return ActionResult.model_validate(body)
            except ValidationError as exc:
                raise ActionServerError("bad_response", action,
                                        f"not an action result: {_first_error(exc)}") from exc
        error = body.get("error") if isinstance(body, dict) else None
        if response.status_code == 400 and isinstance(body, dict) and body.get("action_name"):
            raise ActionRejected(str(body["action_name"]), str(error or "rejected"))
        what = {
            404: "no such action on the server",
            449: "the server wants the domain in the call",
        }.get(response.status_code, f"HTTP {response.status_code}")
        raise ActionServerError("bad_response", action,
                                f"{what}: {_excerpt(error if error is not None else response.text)}")

    async def health(self) -> bool:
        """Whether the server answers its health check (`GET /health` on the server root)."""
        try:
            response = await self._send("GET", self.root.join("/health"), None)
        except ActionServerError:
            return False
        return response.status_code == 200

    async def actions(self) -> list[str]:
        """The names of the actions the server has registered (`GET /actions`)."""
        response = await self._send("GET", self.root.join("/actions"), None)
        body = _json(response)
        if response.status_code != 200 or not isinstance(body, list):
            raise ActionServerError("bad_response", None,
                                    f"HTTP {response.status_code} listing actions: {_excerpt(response.text)}")
        names = [item.get("name") for item in body if isinstance(item, dict)]
        if len(names) != len(body) or not all(isinstance(name, str) for name in names):
            raise ActionServerError("bad_response", None, f"not a list of actions: {_excerpt(body)}")
        return [str(name) for name in names]

    async def aclose(self) -> None:
        """Close the HTTP client if this object made it."""
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _send(self, method: str, url: httpx.URL, action: str | None, **kwargs: Any) -> httpx.Response:
        """One HTTP exchange within `timeout_s` overall, transport failures mapped to ActionServerError."""
        where = redact_url(url)
        try:
            async with asyncio.timeout(self.timeout_s):
                return await self._client.request(method, url.copy_merge_params(self._token),
                                                  timeout=self.timeout_s, **kwargs)
        except (httpx.TimeoutException, TimeoutError) as exc:
            detail = f"no answer from {where} within {self.timeout_s:g} s"
            raise ActionServerError("timeout", action, detail) from exc
        except (httpx.ConnectError, httpx.ReadError, httpx.WriteError) as exc:
            raise ActionServerError("unreachable", action, f"{where}: {type(exc).__name__}: {exc}") from exc
        except httpx.TransportError as exc:
            raise ActionServerError("bad_response", action, f"{where}: {type(exc).__name__}: {exc}") from exc


_NO_JSON = object()  # what `_json` returns for a body that is not JSON (JSON's null is None)


def _json(response: httpx.Response) -> Any:
    """The answer's JSON body, or `_NO_JSON`: error pages of proxies and crashed servers are HTML."""
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return _NO_JSON


def _excerpt(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= DETAIL_CHARS else text[:DETAIL_CHARS] + "..."


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}" if where else str(error["msg"])
