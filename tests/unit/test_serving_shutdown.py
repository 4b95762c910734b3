"""The server's shutdown goes on when one connection fails to shut down (a WebSocket the client was
closing at that moment: uvicorn's websockets protocol raises InvalidState, and `serve` exited 1)."""

from __future__ import annotations

import asyncio

import uvicorn
from starlette.applications import Starlette

from bot.cli.serving import _graceful_server


class ClosingWebSocket:
    def __init__(self, connections: set[object]) -> None:
        self.connections = connections

    def shutdown(self) -> None:
        self.connections.discard(self)
        raise RuntimeError("connection is closing")


class OpenConnection(ClosingWebSocket):
    shut = False

    def shutdown(self) -> None:
        self.connections.discard(self)
        self.shut = True


def test_one_failing_connection_does_not_stop_the_shutdown_of_the_others() -> None:
    server = _graceful_server(uvicorn.Config(Starlette(), log_config=None, timeout_graceful_shutdown=1), 1.0)
    server.force_exit, server.servers = True, []  # never started: no lifespan, no listening sockets
    connections = server.server_state.connections
    failing, other = ClosingWebSocket(connections), OpenConnection(connections)
    connections.update({failing, other})
    asyncio.run(server.shutdown())
    assert other.shut and not connections
