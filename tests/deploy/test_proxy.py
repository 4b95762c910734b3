"""deploy/nginx.conf against the app's real WebSocket routes: each is proxied with the upgrade
headers and a long read timeout."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from starlette.routing import Mount, WebSocketRoute

from bot.config import Settings
from bot.web.app import create_app
from tests.deploy.conftest import DEPLOY

pytestmark = pytest.mark.deploy

CONF = (DEPLOY / "nginx.conf").read_text()


def blocks(kind: str) -> list[tuple[str, str]]:
    """(argument, body) of every `kind ... { ... }` block (nginx.conf nests no braces inside them)."""
    return [(m.group(1).strip(), m.group(2))
            for m in re.finditer(rf"^\s*{kind}\s+([^{{]*)\{{([^{{}}]*)\}}", CONF, re.M)]


def locate(path: str) -> str:
    """The location nginx picks for a path: exact, then regexes in order, then the longest prefix."""
    locations = blocks("location")
    for arg, body in locations:
        if arg.startswith("= ") and arg[2:].strip() == path:
            return body
    for arg, body in locations:
        if arg.startswith("~ ") and re.search(arg[2:].strip(), path):
            return body
    prefixes = [(arg, body) for arg, body in locations if not arg.startswith(("=", "~"))]
    arg, body = max(((a, b) for a, b in prefixes if path.startswith(a)), key=lambda ab: len(ab[0]))
    return body


def websocket_paths(tmp_path: Path) -> list[str]:
    app = create_app(Settings(data_dir=tmp_path, console={"secret_key": "test"}))
    paths = []

    def walk(routes: list) -> None:
        for route in routes:
            if hasattr(route, "original_router"):  # FastAPI's lazily included router
                walk(route.original_router.routes)
            elif isinstance(route, WebSocketRoute):
                paths.append(re.sub(r"\{[^}]+\}", "c0ffee", route.path))
            elif isinstance(route, Mount) and route.path == "/socket.io":
                paths.append("/socket.io/")

    walk(app.routes)
    return paths


def test_every_websocket_route_is_upgraded_with_a_long_timeout(tmp_path: Path) -> None:
    paths = websocket_paths(tmp_path)
    assert {"/api/v1/conversations/c0ffee/ws", "/console/ws", "/socket.io/"} <= set(paths)
    assert "proxy_set_header Upgrade $http_upgrade;" in CONF
    assert "proxy_set_header Connection $connection_upgrade;" in CONF
    assert re.search(r"map \$http_upgrade \$connection_upgrade \{\s*default upgrade;\s*''\s*'';", CONF)
    for path in paths:
        body = locate(path)
        assert "proxy_pass http://supportbot" in body, path
        long_timeout = re.search(r"proxy_read_timeout (1h|\d{4,}s?);", body)
        assert long_timeout, f"{path}: idle sockets need a long timeout"


def test_no_location_drops_the_inherited_headers() -> None:
    """A location with its own proxy_set_header inherits none from the server block (nginx rule),
    which would silently drop the WebSocket upgrade and the forwarded-for headers."""
    for arg, body in blocks("location"):
        assert "proxy_set_header" not in body, arg


def test_socketio_polling_sticks_to_one_replica_and_the_rest_balances() -> None:
    upstreams = dict(blocks("upstream"))
    assert "hash $remote_addr consistent;" in upstreams["supportbot_socketio"]
    assert "hash" not in upstreams["supportbot"] and "ip_hash" not in upstreams["supportbot"]
    assert "proxy_pass http://supportbot_socketio;" in locate("/socket.io/")
    assert "proxy_pass http://supportbot;" in locate("/api/v1/conversations/x/messages")
