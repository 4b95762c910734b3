"""Shared fixtures: a real Redis, the demo settings, and a demo model trained once per test run."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis

from bot.config import GenerationSettings, Settings, TrainSettings

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# The demo model the API, end-to-end and browser tests share: the frozen-encoder head (the
# tiny-data mode) trains in seconds; fine-tuning itself is tested in tests/unit/test_train.py.
TEST_TRAIN = TrainSettings(mode="frozen", seed=13)


def _machine_redis() -> str | None:
    url = os.environ.get("SUPPORTBOT_REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        if redis.Redis.from_url(url, socket_connect_timeout=0.5).ping():
            return url
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        pass
    return None


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The machine's Redis when it answers, else a real embedded redis-server for this run."""
    url = _machine_redis()
    if url:
        yield url
        return
    from bot.sessions.embedded import EmbeddedRedis

    with EmbeddedRedis(tmp_path_factory.mktemp("redis")) as server:
        yield server.url


@pytest.fixture
def key_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own, deleted afterwards."""
    prefix = f"sbtest-{uuid.uuid4().hex[:10]}"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(f"{prefix}:*", count=500):
        client.delete(key)


@pytest.fixture
async def store(redis_url: str, key_prefix: str) -> AsyncIterator:
    from bot.sessions.store import RedisSessionStore, connect

    client = connect(redis_url)
    yield RedisSessionStore(client, prefix=key_prefix, ttl_s=600, reply_ttl_s=600, lease_s=5,
                            wait_s=10)
    await client.aclose()


@pytest.fixture(scope="session")
def demo_assets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Train the demo intent model and build the FAQ index once; tests copy or share the folder.

    Many tests link to it, so a test that trains or indexes through such a link would change what
    every later test (the served app's copy included) runs on: the run fails if one did."""
    from bot.assets import build_faq_index, train_model

    data_dir = tmp_path_factory.mktemp("demo-assets")
    settings = demo_settings(data_dir)
    train_model(settings)
    build_faq_index(settings)
    before = _manifests(data_dir)
    yield data_dir
    assert _manifests(data_dir) == before, "a test retrained or re-indexed the shared demo assets"


def _manifests(data_dir: Path) -> dict[str, bytes]:
    """Every model's and index's manifest (each names its training or indexing run)."""
    return {str(p.relative_to(data_dir)): p.read_bytes()
            for part in ("models", "index") for p in sorted((data_dir / part).rglob("manifest.json"))}


def demo_settings(data_dir: Path, **overrides: object) -> Settings:
    # No generator unless a test asks for one: the shared apps stay fast and deterministic
    # (tests/generation/ covers the generators; tests pass a generator to create_app).
    # Overrides name nested fields with `__` (redis__url=...), as the environment does.
    overrides.setdefault("generation", GenerationSettings(backend="none"))
    settings = Settings(
        data_dir=data_dir,
        training_data=ROOT / "training_data",
        knowledge_base=ROOT / "knowledge_base",
        domain_file=ROOT / "training_data" / "domain.yml",
        train=TEST_TRAIN,
    )
    return settings.updated({name.replace("__", "."): value for name, value in overrides.items()})


@pytest.fixture(scope="session")
def demo_models(demo_assets: Path) -> tuple:
    """The trained model and FAQ index, loaded once and shared by the apps the tests build."""
    from bot.services import load_models

    return load_models(demo_settings(demo_assets))


@pytest.fixture
def app_settings(demo_assets: Path, tmp_path: Path, redis_url: str, key_prefix: str) -> Settings:
    """Settings for an app of this test's own: shared models, own database and Redis prefix."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    for part in ("models", "index"):
        (data_dir / part).symlink_to(demo_assets / part)
    return demo_settings(data_dir, redis__url=redis_url, sessions__key_prefix=key_prefix)


PG_ADMIN = os.environ.get("SUPPORTBOT_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL database of this test's own (CI has one; elsewhere skipped when unreachable)."""
    from sqlalchemy import create_engine, text

    try:
        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        admin.connect().close()
    except Exception as exc:  # pragma: no cover - depends on the machine
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    name = f"sbtest_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


# A fine-tuned intent model small enough to train in a test module's fixture (top 2 layers).
TINY_FINETUNE = TrainSettings(mode="finetune", epochs=1, max_examples=150, max_length=32, seed=13,
                              tuned_layers=2)


def tiny_finetuned(demo_assets: Path, data: Path, train: TrainSettings = TINY_FINETUNE) -> Path:
    """`data` with the demo's index (linked), copies of its other models, and a tiny fine-tuned
    intent model of its own (copies: nothing trained here may reach the shared demo assets)."""
    from rich.console import Console

    from bot.assets import train_model

    (data / "index").symlink_to(demo_assets / "index")
    for other in (demo_assets / "models").iterdir():
        if other.name != "intent":
            shutil.copytree(other, data / "models" / other.name)
    train_model(demo_settings(data, train=train), out=data / "models" / "intent", console=Console(quiet=True))
    return data


def copy_assets(src: Path, dst: Path) -> None:
    for part in ("models", "index"):
        shutil.copytree(src / part, dst / part)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Browser tests last: Playwright's sync API keeps an event loop running in the main thread
    for the rest of the session, which async tests cannot share."""
    items.sort(key=lambda item: "browser" in item.keywords)


HELPDESK_PROJECT = ROOT.parent / "shared" / "rasa_projects" / "helpdesk-assistant"


@pytest.fixture(scope="session")
def helpdesk_action_server() -> Iterator[str]:
    """The webhook URL of helpdesk-assistant's own rasa-sdk action server, started once per run."""
    from tests.rasa_action_server import running_action_server

    with running_action_server(HELPDESK_PROJECT) as url:
        yield url


def helpdesk_settings(data_dir: Path, **overrides: object) -> Settings:
    """Settings that serve helpdesk-assistant (read from ../shared, never copied) from `data_dir`."""
    overrides.setdefault("generation", GenerationSettings(backend="none"))
    settings = Settings(data_dir=data_dir, train=TEST_TRAIN).for_rasa_project(HELPDESK_PROJECT)
    return settings.updated({name.replace("__", "."): value for name, value in overrides.items()})


@pytest.fixture(scope="session")
def helpdesk_assets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """helpdesk-assistant's intent model and entity tagger, trained once per run."""
    from bot.assets import train_model

    data_dir = tmp_path_factory.mktemp("helpdesk-assets")
    train_model(helpdesk_settings(data_dir))
    return data_dir


@pytest.fixture(scope="session")
def helpdesk_models(helpdesk_assets: Path) -> tuple:
    from bot.services import load_models

    return load_models(helpdesk_settings(helpdesk_assets))


@pytest.fixture
def helpdesk_app_settings(helpdesk_assets: Path, tmp_path: Path, redis_url: str, key_prefix: str,
                          helpdesk_action_server: str) -> Settings:
    """An app of this test's own serving helpdesk-assistant, with its real action server."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "models").symlink_to(helpdesk_assets / "models")
    return helpdesk_settings(data_dir, redis__url=redis_url, sessions__key_prefix=key_prefix,
                             rasa__action_endpoint=helpdesk_action_server, rasa__auth_token="tracker-secret")
