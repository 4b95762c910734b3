"""With `dialogue.confirm_answers`, the bot asks whether an answer helped; the customer's Yes/No
reaches the transcripts, and `supportbot resolution` computes the rate from them."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from bot.cli import app as cli
from bot.config import Settings
from bot.web.app import create_app
from tests.clients import WidgetClient

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(app_settings: Settings) -> Settings:
    return app_settings.updated({"dialogue.confirm_answers": True})


def say(client: TestClient, cid: str, **body: object) -> list[dict]:
    r = client.post(f"/api/v1/conversations/{cid}/messages", json=body)
    assert r.status_code == 200, r.text
    return r.json()["replies"]


def test_answers_are_confirmed_and_the_rate_comes_from_the_transcripts(
        settings: Settings, demo_models: tuple, monkeypatch: pytest.MonkeyPatch) -> None:
    with WidgetClient(create_app(settings, demo_models)) as client:
        answer = say(client, "fb1", text="How long does standard delivery take?")
        assert answer[-1]["text"] == "Did that answer your question?"
        yes = next(b for b in answer[-1]["buttons"] if b["title"] == "Yes")
        assert "Glad" in say(client, "fb1", payload=yes["payload"])[0]["text"]

        answer = say(client, "fb2", text="How long does standard delivery take?")
        no = next(b for b in answer[-1]["buttons"] if b["title"] == "No")
        sorry = say(client, "fb2", payload=no["payload"])[0]
        assert "/talk_to_human" in [b["payload"] for b in sorry["buttons"]]

        say(client, "fb3", text="hello")  # nothing answered: not resolved
        transcripts = client.app.state.services.transcripts
        assert [t.feedback for t in transcripts.turns("fb1")] == [None, "yes"]
        got = transcripts.resolution()
        assert (got.conversations, got.resolved, got.confirmed, got.rejected) == (3, 1, 1, 1)

    monkeypatch.setenv("SUPPORTBOT_DATA_DIR", str(settings.data_dir))
    if settings.storage.database_url:
        monkeypatch.setenv("SUPPORTBOT_DATABASE_URL", settings.storage.database_url.get_secret_value())
    result = CliRunner().invoke(cli, ["resolution", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) | {"rate": 0.3333} == {
        "conversations": 3, "resolved": 1, "handed_off": 0, "confirmed": 1, "rejected": 1, "rate": 0.3333}
