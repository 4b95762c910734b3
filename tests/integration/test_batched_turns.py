"""Micro-batched model calls give every customer the answer a lone call would have given them."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import pytest

from bot.config import Settings
from bot.web.app import create_app

pytestmark = pytest.mark.integration

QUESTIONS = {
    "en": ["where is my order?", "how do I return something", "do you ship to Norway?",
           "I forgot my password", "can I pay with PayPal?", "talk to a human please",
           "my pan arrived broken", "how long is the warranty?"],
    "zh": ["我的订单到哪了", "我想退货，怎么操作", "忘了密码怎么办", "转人工"],
}


@pytest.mark.parametrize("language", ["en", "zh"])
def test_batches_match_single_calls(demo_models: tuple, language: str) -> None:
    nlu, kb = demo_models
    texts = QUESTIONS[language] + [""]  # an empty message in the batch is answered with no hits
    parses = nlu.parse_batch(texts[:-1], language)
    assert [p.intent for p in parses] == [nlu.parse(t, language).intent for t in texts[:-1]]
    for batched, text in zip(parses, texts, strict=False):
        assert batched.confidence == pytest.approx(nlu.parse(text, language).confidence, abs=1e-3)
    hits = kb.search_batch(texts, 3, language)
    assert hits[-1] == []
    for text, batched_hits in zip(texts[:-1], hits, strict=False):
        single = kb.search(text, 3, language)
        assert [h.entry_id for h in batched_hits] == [h.entry_id for h in single]
        assert [h.score for h in batched_hits] == pytest.approx([h.score for h in single], abs=1e-3)


def test_concurrent_customers_share_forward_passes(app_settings: Settings, demo_models: tuple) -> None:
    texts = QUESTIONS["en"] * 3
    app = create_app(app_settings, demo_models)

    async def run() -> tuple[list[httpx.Response], str]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t", timeout=60) as c:
                responses = await asyncio.gather(*[
                    c.post(f"/api/v1/conversations/batch-{i}/messages", json={"text": text})
                    for i, text in enumerate(texts)])
                return responses, (await c.get("/metrics")).text

    responses, metrics = asyncio.run(run())
    assert all(r.status_code == 200 and r.json()["replies"] for r in responses), [r.text for r in responses]
    samples = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
               for line in metrics.splitlines() if line and not line.startswith("#")}
    calls = samples['supportbot_inference_batch_size_count{model="nlu"}']
    assert calls < len(texts), "every message had a forward pass of its own"
    assert samples['supportbot_inference_batch_size_sum{model="nlu"}'] == len(texts)
    nlu = demo_models[0]
    expected = Counter(nlu.parse(t, "en").intent for t in texts)
    counted = {intent: samples.get(f'supportbot_intents_total{{intent="{intent}"}}', 0)
               for intent in expected}
    assert counted == expected  # each message was understood as it is alone
