"""Messages the bot did not understand land in the Redis review stream, scrubbed, and are exported
for labeling by `supportbot export-review` without losing any that arrive meanwhile."""

from __future__ import annotations

import asyncio
import csv
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from bot.cli import app as cli
from bot.config import Settings
from bot.sessions.review import ReviewLog
from bot.sessions.store import connect
from bot.web.app import create_app
from tests.clients import WidgetClient

pytestmark = pytest.mark.integration


@pytest.fixture
def client(app_settings: Settings, demo_models: tuple):
    with WidgetClient(create_app(app_settings, demo_models)) as c:
        yield c


def say(client: TestClient, cid: str, **body: object) -> None:
    assert client.post(f"/api/v1/conversations/{cid}/messages", json=body).status_code == 200


async def review_items(settings: Settings) -> list:
    client = connect(settings.redis.dsn)
    try:
        return await ReviewLog(client, settings.sessions.key_prefix, settings.thresholds.intent).items()
    finally:
        await client.aclose()


async def test_what_the_bot_did_not_understand_is_kept_scrubbed(client: TestClient,
                                                                app_settings: Settings) -> None:
    say(client, "r1", text="where is my order?")  # understood: not kept
    say(client, "r2", payload="/talk_to_human")  # a button: no model call, not kept
    say(client, "r3", text="zxqv blorp fnark, mail me at joe.bloggs@example.com")
    say(client, "r4", text="can I talk to a human please, my order KK-123456 is a mess")
    items = await review_items(app_settings)
    by_text = {i.text: i for i in items}
    assert set(by_text) == {"zxqv blorp fnark, mail me at [EMAIL]",
                            "can I talk to a human please, my order [ORDER] is a mess"}
    odd = by_text["zxqv blorp fnark, mail me at [EMAIL]"]
    assert odd.reason in ("low_confidence", "out_of_scope") and odd.channel == "web"
    assert by_text["can I talk to a human please, my order [ORDER] is a mess"].reason == "handoff"
    assert "supportbot_review_items_total 2.0" in client.get("/metrics").text


def test_export_review_writes_a_labeling_file_and_keeps_late_arrivals(
        client: TestClient, app_settings: Settings, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    for cid in ("e1", "e2"):
        say(client, cid, text="zxqv blorp fnark")
    say(client, "e3", text="qwop snerk")
    monkeypatch.setenv("SUPPORTBOT_REDIS_URL", app_settings.redis.dsn)
    monkeypatch.setenv("SUPPORTBOT_KEY_PREFIX", app_settings.sessions.key_prefix)
    monkeypatch.setenv("SUPPORTBOT_DATA_DIR", str(tmp_path / "var"))
    out = tmp_path / "review.csv"

    kept = CliRunner().invoke(cli, ["export-review", "--out", str(out), "--keep"])
    assert kept.exit_code == 0, kept.output
    assert len(asyncio.run(review_items(app_settings))) == 3

    result = CliRunner().invoke(cli, ["export-review", "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open()))
    assert [(r["text"], r["count"], r["intent"]) for r in rows] == [("zxqv blorp fnark", "2", ""),
                                                                   ("qwop snerk", "1", "")]
    assert asyncio.run(review_items(app_settings)) == []

    # an entry that arrives between reading and deleting is not deleted
    say(client, "e4", text="flibber jabber")
    exported = asyncio.run(review_items(app_settings))
    say(client, "e5", text="wibble wobble zonk")

    async def remove_and_list() -> list[str]:
        redis = connect(app_settings.redis.dsn)
        try:
            log = ReviewLog(redis, app_settings.sessions.key_prefix, app_settings.thresholds.intent)
            assert await log.remove([i.id for i in exported]) == 1
            return [i.text for i in await log.items()]
        finally:
            await redis.aclose()

    assert asyncio.run(remove_and_list()) == ["wibble wobble zonk"]
