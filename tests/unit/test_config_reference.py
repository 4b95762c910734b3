"""The configuration reference is generated from Settings and must be current; every setting says
what it means; secrets are SecretStr; variables keep the names deployments already use."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.config import Settings
from bot.config_reference import env_names, render, variables

ROOT = Path(__file__).resolve().parents[2]


def test_the_configuration_reference_is_current() -> None:
    written = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert written == render(), "docs/configuration.md is stale: run `supportbot config-reference`"


def test_every_setting_is_described() -> None:
    undescribed = [v.env for v in variables() if not v.description]
    assert not undescribed


@pytest.mark.parametrize("word", ["token", "secret", "password", "api_key", "url"])
def test_every_credential_is_a_secret(word: str) -> None:
    """Tokens, passwords and connection URLs that may carry one are never plain strings; public
    endpoint URLs (platform API bases, Chatwoot's, the public base URL) are not credentials."""
    public = {"api_url", "graph_url", "base_url", "public_base_url", "chatwoot.url", "s3_endpoint_url"}
    for v in variables():
        leaf = v.path.rsplit(".", 1)[-1]
        if leaf.endswith(word) and leaf not in public and v.path not in public:
            assert v.secret, f"{v.path} ({v.env}) holds a credential but is not a SecretStr"


def test_variables_keep_their_names(monkeypatch: pytest.MonkeyPatch) -> None:
    """Grouping the settings did not rename a variable: the names of deployments still land."""
    names = env_names()
    for name in ("SUPPORTBOT_REDIS_URL", "SUPPORTBOT_DATABASE_URL", "SUPPORTBOT_TELEGRAM_TOKEN",
                 "SUPPORTBOT_SLACK_SIGNING_SECRET", "SUPPORTBOT_TORCH_THREADS", "SUPPORTBOT_SECRET_KEY",
                 "SUPPORTBOT_INFERENCE_WORKERS", "SUPPORTBOT_WIDGET_ORIGINS",
                 "SUPPORTBOT_THRESHOLDS__INTENT"):
        assert name in names
    monkeypatch.setenv("SUPPORTBOT_REDIS_URL", "redis://:pw-123456@cache:6379/0")
    monkeypatch.setenv("SUPPORTBOT_TELEGRAM_TOKEN", "123:abc")
    monkeypatch.setenv("SUPPORTBOT_TORCH_THREADS", "3")
    monkeypatch.setenv("SUPPORTBOT_WIDGET_ORIGINS", "https://shop.example.com, https://b.example.com/")
    monkeypatch.setenv("SUPPORTBOT_THRESHOLDS__INTENT", "0.6")
    settings = Settings()
    assert settings.redis.dsn == "redis://:pw-123456@cache:6379/0"
    assert isinstance(settings.telegram.token, SecretStr) and "abc" not in repr(settings)
    assert settings.inference.torch_threads == 3
    assert settings.web.widget_origins == ["https://shop.example.com", "https://b.example.com"]
    assert settings.thresholds.intent == 0.6


def test_updated_changes_nested_values_and_validates() -> None:
    settings = Settings().updated({"limits.max_body_bytes": 4096, "telegram.token": "1:x"})
    assert settings.limits.max_body_bytes == 4096 and settings.telegram.token is not None
    with pytest.raises(ValueError):
        Settings().updated({"web.widget_origins": ["not an origin"]})


def test_a_copy_still_tells_a_default_from_a_chosen_value(monkeypatch: pytest.MonkeyPatch) -> None:
    """The `auto` generator is the OpenAI server only when its URL was chosen; a copy made by
    `updated` once chose it for every setup (the benchmark's ablations called a server not there)."""
    from bot.generation import resolve_backend as backend_name

    monkeypatch.setenv("SUPPORTBOT_DATA_DIR", "/tmp/elsewhere")
    copy = Settings().updated({"dialogue.confirm_answers": True})
    assert backend_name(copy) == "extractive" and copy.dialogue.confirm_answers
    assert str(copy.data_dir) == "/tmp/elsewhere" and copy.redis.url == Settings().redis.url
    chosen = Settings().updated({"generation.base_url": "http://llm.local/v1"})
    assert backend_name(chosen) == "openai" and backend_name(chosen.updated({})) == "openai"


def test_the_two_spellings_mix_within_a_group(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUPPORTBOT_TELEGRAM_TOKEN", "123:abc")
    monkeypatch.setenv("SUPPORTBOT_TELEGRAM__API_URL", "http://bot-api.local")
    settings = Settings()
    assert settings.telegram.api_url == "http://bot-api.local"
    assert settings.telegram.token is not None and settings.telegram.token.get_secret_value() == "123:abc"
    given = Settings(telegram={"secret_token": "s3cret"})  # keyword arguments win, the rest from the env
    assert given.telegram.token is not None and given.telegram.secret_token is not None
