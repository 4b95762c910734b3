"""Fixtures of the security suite: an app of the test's own, driven as outsiders would."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.config import Settings
from bot.web.app import create_app
from tests.clients import WidgetClient


@pytest.fixture
def client(app_settings: Settings, demo_models: tuple) -> Iterator[WidgetClient]:
    with WidgetClient(create_app(app_settings, demo_models)) as c:
        yield c


def post(client: WidgetClient, cid: str, body: dict | bytes, headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    """A message as raw JSON (so lone surrogates travel as `\\udc80` escapes, as an attacker sends them)."""
    import json

    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(f"/api/v1/conversations/{cid}/messages", content=data,
                       headers={"Content-Type": "application/json", **(headers or {})})
