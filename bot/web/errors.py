"""Every error a client sees is `{"error": code, "detail": ...}` with a 4xx/5xx status, never a trace."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from bot.inference import Busy
from bot.sessions.errors import LockTimeout, StoreUnavailable
from bot.textsafety import InvalidText

log = logging.getLogger(__name__)
# What FastAPI raises when a body cannot be decoded before JSON parsing (e.g. invalid UTF-8).
UNDECODABLE_BODY = "There was an error parsing the body"


class ErrorOut(BaseModel):
    """Every error answer: a stable code, a human-readable detail, and for 429 when to retry."""

    error: str = Field(description="A stable code, e.g. `invalid_request`, `rate_limited`.")
    detail: Any = Field(None, description="What was wrong: text, or a list of `{field, problem}`.")
    retry_after: int | None = Field(None, description="429: seconds until the limit lets more through.")
    limit: str | None = Field(None, description="429: which limit (ip, conversation, webhook, login).")


class ApiError(Exception):
    def __init__(self, status: int, code: str, detail: object = None,
                 headers: dict[str, str] | None = None, extra: dict[str, object] | None = None) -> None:
        self.status, self.code, self.detail = status, code, detail
        self.headers = headers  # e.g. Retry-After
        self.extra = extra or {}  # more fields of the body beside error and detail (retry_after)

    def body(self) -> dict[str, object]:
        return {"error": self.code, "detail": self.detail, **self.extra}


def as_api_error(exc: ApiError | InvalidText) -> ApiError:
    """What a client is answered: text the gate (or the pipeline's payload check) refused is a 422
    with the gate's code, wherever it was raised."""
    return exc if isinstance(exc, ApiError) else ApiError(422, exc.code, exc.detail)


def invalid_request(errors: list[Any] | Any, skip: int = 0) -> ApiError:
    """A body that failed validation: `invalid_text` when a string held a lone surrogate (pydantic
    says `string_unicode`), as the text gate says it, else `invalid_request` with each problem."""
    errors = list(errors)
    if any(e.get("type") == "string_unicode" for e in errors):
        return ApiError(422, "invalid_text", "the text holds an invalid code point (a lone surrogate)")
    return ApiError(422, "invalid_request", [
        {"field": ".".join(str(p) for p in e.get("loc", ())[skip:]), "problem": e.get("msg")}
        for e in errors])


def error_response(status: int, code: str, detail: object = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status, headers=headers)


def _count(request: Request, code: str) -> None:
    metrics = getattr(request.app.state, "metrics", None)
    if metrics is not None:
        metrics.errors.labels(code).inc()


def _document_error_bodies(app: FastAPI) -> None:
    """FastAPI documents every 422 as its own HTTPValidationError; ours is ErrorOut (see `_invalid`):
    say so in /openapi.json, for every route, present and future."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        schemas.setdefault("ErrorOut",
                           ErrorOut.model_json_schema(ref_template="#/components/schemas/{model}"))
        ref = {"$ref": "#/components/schemas/ErrorOut"}
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                response = operation.get("responses", {}).get("422")
                content = (response or {}).get("content", {}).get("application/json", {})
                if content.get("schema") == {"$ref": "#/components/schemas/HTTPValidationError"}:
                    response["description"] = "Invalid request"
                    content["schema"] = ref
        if "HTTPValidationError" not in str(schema.get("paths")):
            schemas.pop("HTTPValidationError", None)
            schemas.pop("ValidationError", None)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


async def _api(request: Request, exc: ApiError) -> JSONResponse:
    _count(request, exc.code)
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        _count(request, "invalid_json")
        return error_response(400, "invalid_json", "the body is not valid JSON")
    error = invalid_request(errors, skip=1)
    _count(request, error.code)
    return error_response(error.status, error.code, error.detail)


async def _text(request: Request, exc: InvalidText) -> JSONResponse:
    error = as_api_error(exc)
    _count(request, error.code)
    return error_response(error.status, error.code, error.detail)


async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    if exc.status_code == 400 and exc.detail == UNDECODABLE_BODY:  # not UTF-8: not JSON either
        _count(request, "invalid_json")
        return error_response(400, "invalid_json", "the body is not valid JSON (nor UTF-8 text)")
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    _count(request, code)
    return error_response(exc.status_code, code, exc.detail)


async def _busy(request: Request, exc: Busy) -> JSONResponse:
    _count(request, "busy")
    return error_response(503, "busy", "the bot is at capacity; retry with the same message_id",
                          {"Retry-After": "1"})


async def _locked(request: Request, exc: LockTimeout) -> JSONResponse:
    _count(request, "conversation_busy")
    return error_response(503, "conversation_busy", str(exc), {"Retry-After": "1"})


async def _store_down(request: Request, exc: StoreUnavailable) -> JSONResponse:
    _count(request, "session_store_unavailable")
    log.error("redis unavailable: %s", exc)
    return error_response(503, "session_store_unavailable",
                          "conversation storage is briefly unavailable; retry with the same message_id",
                          {"Retry-After": "2"})


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    _count(request, "internal_error")
    log.exception("unhandled error")
    return error_response(500, "internal_error", "something went wrong on our side")


HANDLERS: list[tuple[type[Exception], Callable[[Request, Any], Awaitable[JSONResponse]]]] = [
    (ApiError, _api),
    (RequestValidationError, _invalid),
    (InvalidText, _text),
    (StarletteHTTPException, _http),
    (Busy, _busy),
    (LockTimeout, _locked),
    (StoreUnavailable, _store_down),  # Redis did not answer (bot/sessions/errors.py)
    (Exception, _unexpected),
]


def install(app: FastAPI) -> None:
    """Every error as ErrorOut: the handlers above, and the 422s documented as ErrorOut."""
    _document_error_bodies(app)
    for exc_class, handler in HANDLERS:
        app.add_exception_handler(exc_class, handler)
