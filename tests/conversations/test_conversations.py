"""The demo's conversation tests (every *.yml here: ours and Rasa test stories), run the way
`supportbot test` runs them, against the pipeline of the demo model; one test per conversation."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from bot.config import Settings
from bot.conversation_tests.runner import InProcessBot, Result, run_all
from bot.conversation_tests.spec import load
from bot.services import build_services
from tests.conftest import demo_settings

pytestmark = pytest.mark.integration

HERE = Path(__file__).parent
CONVERSATIONS = load([HERE])


@pytest.fixture(scope="module")
def settings(demo_assets: Path, redis_url: str,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """The demo with agents always on duty, so that a hand-off does not depend on the hour."""
    data_dir = tmp_path_factory.mktemp("conversations")
    for part in ("models", "index"):
        (data_dir / part).symlink_to(demo_assets / part)
    prefix = f"sbconv-{uuid.uuid4().hex[:10]}"
    yield demo_settings(data_dir, redis__url=redis_url, sessions__key_prefix=prefix,
                        handoff__business_hours="Mon-Sun 00:00-24:00", handoff__timezone="UTC")
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(f"{prefix}:*", count=500):
        client.delete(key)


@pytest.fixture(scope="module")
def results(demo_models: tuple, settings: Settings) -> dict[str, Result]:
    async def run() -> list[Result]:
        async with build_services(settings, demo_models, generator=None) as services:
            return await run_all(InProcessBot(services), CONVERSATIONS, services.domain)

    return {r.conversation.id: r for r in asyncio.run(run())}


def test_the_suite_is_not_empty() -> None:
    assert len(CONVERSATIONS) >= 80


@pytest.mark.parametrize("conversation_id", [c.id for c in CONVERSATIONS])
def test_conversation(results: dict[str, Result], conversation_id: str) -> None:
    result = results[conversation_id]
    assert result.error is None, result.error
    failed = [f"step {n} ({s.step.said}): {'; '.join(s.failures)} | bot: "
              + " / ".join(r.text for r in s.replies) for n, s in enumerate(result.steps, 1) if s.failures]
    assert not failed, "\n".join(failed)
