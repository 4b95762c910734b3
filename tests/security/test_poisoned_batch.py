"""Class 1, the batch half: a message a model fails on fails alone. Its micro-batch neighbours are
retried without it, and its own customer gets a polite reply (counted), never a 500."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from bot.batching import MicroBatcher
from bot.inference import InferencePool
from bot.web.app import create_app

MARK = "zqxpoison"


class PoisonedNlu:
    """The real intent model, except that any batch holding MARK raises (as the tokenizer did on a
    lone surrogate)."""

    def __init__(self, nlu) -> None:  # type: ignore[no-untyped-def]
        self.nlu = nlu

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.nlu, name)

    def parse(self, text: str, language: str | None = None):  # type: ignore[no-untyped-def]
        return self.parse_batch([text], language)[0]

    def parse_batch(self, texts: list[str], language: str | None = None):  # type: ignore[no-untyped-def]
        if any(MARK in t for t in texts):
            raise UnicodeEncodeError("utf-8", MARK, 0, 1, "surrogates not allowed")
        return self.nlu.parse_batch(texts, language)


async def test_one_bad_item_fails_alone_in_its_batch() -> None:
    pool = InferencePool(workers=1, queue=64)
    calls: list[int] = []

    def double(_key: str, items: list[int]) -> list[int]:
        calls.append(len(items))
        if -1 in items:
            raise ValueError("bad item")
        return [i * 2 for i in items]

    batcher: MicroBatcher[str, int, int] = MicroBatcher(pool, double, max_batch=16)
    try:
        results = await asyncio.gather(*(batcher.submit("k", i) for i in [1, 2, 3, -1, 4, 5, 6, 7, 8]),
                                       return_exceptions=True)
    finally:
        pool.close()
    assert [r for r in results if not isinstance(r, Exception)] == [2, 4, 6, 8, 10, 12, 14, 16]
    assert [type(r) for r in results if isinstance(r, Exception)] == [ValueError]
    assert max(calls) > 1  # they were batched, then retried one by one


@pytest.mark.parametrize("rounds", [6])
async def test_poisoned_messages_mixed_into_load_cost_the_others_nothing(app_settings, demo_models,  # type: ignore[no-untyped-def]
                                                                        rounds: int) -> None:
    nlu, knowledge = demo_models
    app = create_app(app_settings, (PoisonedNlu(nlu), knowledge))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t", timeout=120) as c:
            async def say(cid: str, text: str) -> httpx.Response:
                return await c.post(f"/api/v1/conversations/{cid}/messages", json={"text": text})

            normal_codes, poisoned = [], []
            for n in range(rounds):
                batch = [say(f"n{n}-{i}", "where is my order?") for i in range(8)]
                batch.append(say(f"p{n}", f"hello {MARK}"))  # a model fails on it
                batch.append(c.post(f"/api/v1/conversations/s{n}/messages", content=b'{"text": "ok \\udc80"}',
                                    headers={"Content-Type": "application/json"}))  # the gate refuses it
                answers = await asyncio.gather(*batch)
                normal_codes += [a.status_code for a in answers[:8]]
                poisoned.append(answers[8])
                assert answers[9].status_code == 422 and answers[9].json()["error"] == "invalid_text"
        failures = app.state.services.metrics.model_failures.labels("understanding")._value.get()
    assert normal_codes == [200] * (8 * rounds)
    assert all(p.status_code == 200 for p in poisoned)
    assert all("couldn't read that message" in p.json()["replies"][0]["text"] for p in poisoned)
    assert failures == rounds


def test_a_language_detector_failure_keeps_the_conversation_language(app_settings, demo_models) -> None:  # type: ignore[no-untyped-def]
    from tests.clients import WidgetClient

    with WidgetClient(create_app(app_settings, demo_models)) as c:
        pipeline = c.app.state.services.pipeline
        detect = pipeline.language.detect

        def flaky(text: str, current: str | None):  # type: ignore[no-untyped-def]
            if MARK in text:
                raise IndexError("detector crashed on this text")
            return detect(text, current)

        pipeline.language.detect = flaky
        first = c.post("/api/v1/conversations/lang-fail/messages", json={"text": "hello there"})
        assert first.status_code == 200
        r = c.post("/api/v1/conversations/lang-fail/messages", json={"text": f"where is my order {MARK}"})
        assert r.status_code == 200 and r.json()["replies"]
        assert c.app.state.services.metrics.model_failures.labels("language")._value.get() == 1
        assert c.get("/api/v1/conversations/lang-fail").json()["language"] == "en"
