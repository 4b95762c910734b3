"""Request ids: echoed when the caller's is safe, made otherwise, and on every log line of the request
(threads started with asyncio.to_thread included)."""

from __future__ import annotations

import asyncio
import json
import logging
import re

import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from bot.observability import JsonFormatter, RequestIdFilter
from bot.web.request_id import RequestId

log = logging.getLogger("tests.request_id")
HEX32 = re.compile(r"[0-9a-f]{32}")


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[dict] = []
        self.setFormatter(JsonFormatter())
        self.addFilter(RequestIdFilter())

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def lines():  # type: ignore[no-untyped-def]
    handler = Lines()
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        yield handler.lines
    finally:
        log.removeHandler(handler)


async def endpoint(request):  # type: ignore[no-untyped-def]
    log.info("in the handler")
    await asyncio.to_thread(log.info, "in a worker thread")
    return PlainTextResponse("ok")


@pytest.fixture
def client() -> TestClient:
    return TestClient(RequestId(Starlette(routes=[Route("/", endpoint)])))


def test_a_safe_caller_id_is_echoed_and_logged(client: TestClient, lines: list[dict]) -> None:
    r = client.get("/", headers={"X-Request-ID": "edge-42.a:b"})
    assert r.headers["x-request-id"] == "edge-42.a:b"
    assert [(line["msg"], line.get("request_id")) for line in lines] == [
        ("in the handler", "edge-42.a:b"), ("in a worker thread", "edge-42.a:b")]


@pytest.mark.parametrize("bad", ["a b", "x" * 65, "id\ttab", "", "<script>"])
def test_an_unsafe_or_missing_id_is_replaced(client: TestClient, lines: list[dict], bad: str) -> None:
    r = client.get("/", headers={"X-Request-ID": bad} if bad else {})
    rid = r.headers["x-request-id"]
    assert HEX32.fullmatch(rid)
    assert {line["request_id"] for line in lines} == {rid}


def test_ids_differ_per_request_and_do_not_leak_out(client: TestClient, lines: list[dict]) -> None:
    ids = {client.get("/").headers["x-request-id"] for _ in range(4)}
    assert len(ids) == 4
    log.info("outside any request")
    assert "request_id" not in lines[-1]
