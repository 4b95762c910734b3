"""The one retry policy of the outbound clients (bot/outbound.py), beyond what the conformance suite
sees through each channel: budgets per kind of failure, capped waits, what is final, the log lines."""

from __future__ import annotations

import logging

import httpx
import pytest
import respx

from bot.outbound import MAX_WAIT_S, Again, Backoff, RetryPolicy, status_hint

URL = "https://api.test/bot123:SECRET-token/send"


def slow_down(resp: httpx.Response) -> Again | None:
    """A platform that says "slow down" with HTTP 200 and {"slow": true}."""
    if resp.status_code == 200 and resp.json().get("slow"):
        return Again("slow", None, "slow down")
    return status_hint(resp)


async def test_each_kind_of_failure_has_its_own_budget(sleeps: list[float]) -> None:
    policy = RetryPolicy.of(slow_down, slow=Backoff(attempts=2, base_s=5.0, jitter=False))
    slow = httpx.Response(200, json={"slow": True})
    with respx.mock() as mock:
        route = mock.post(URL).mock(side_effect=[slow, httpx.Response(503), httpx.Response(503), slow])
        async with httpx.AsyncClient() as http:
            resp = await policy.request(http, "POST", URL)
    assert route.call_count == 4  # the 2nd "slow" spends its budget: that answer is final
    assert resp.json() == {"slow": True}  # a 2xx is returned for the caller to judge
    assert sleeps[0] == 5.0


async def test_waits_follow_the_hint_capped(sleeps: list[float]) -> None:
    with respx.mock() as mock:
        mock.post(URL).mock(side_effect=[httpx.Response(429, headers={"Retry-After": "120"}),
                                         httpx.Response(503, headers={"Retry-After": "2"}),
                                         httpx.Response(200, json={})])
        async with httpx.AsyncClient() as http:
            await RetryPolicy().request(http, "POST", URL)
    assert sleeps == [MAX_WAIT_S, 2.0]


async def test_a_verdict_without_a_budget_is_final(sleeps: list[float]) -> None:
    with respx.mock() as mock:
        route = mock.post(URL).respond(200, json={"slow": True})
        async with httpx.AsyncClient() as http:
            resp = await RetryPolicy.of(slow_down).request(http, "POST", URL)  # no "slow" budget
    assert route.call_count == 1 and resp.status_code == 200


async def test_network_errors_give_up_with_the_original_error(sleeps: list[float],
                                                               caplog: pytest.LogCaptureFixture) -> None:
    owner = logging.getLogger("tests.outbound.owner")
    policy = RetryPolicy.of(logger=owner, http=Backoff(attempts=3, base_s=0.5, jitter=False))
    with respx.mock() as mock, caplog.at_level(logging.WARNING, logger=owner.name):
        route = mock.post(URL).mock(side_effect=httpx.ConnectError("refused"))
        async with httpx.AsyncClient() as http:
            with pytest.raises(httpx.ConnectError) as failed:
                await policy.request(http, "POST", URL)
    assert route.call_count == 3 and sleeps == [0.5, 1.0]
    assert type(failed.value.__context__).__name__ != "_Retry"  # no trace of the policy's bookkeeping
    lines = [r.getMessage() for r in caplog.records if r.name == owner.name]
    assert lines == ["POST https://api.test/bot***/send failed (ConnectError); retrying in 0.5s",
                     "POST https://api.test/bot***/send failed (ConnectError); retrying in 1.0s"]


async def test_log_lines_name_the_status_and_never_the_secret(sleeps: list[float],
                                                              caplog: pytest.LogCaptureFixture) -> None:
    with respx.mock() as mock, caplog.at_level(logging.WARNING):
        mock.post(URL).mock(side_effect=[httpx.Response(500), httpx.Response(200, json={})])
        async with httpx.AsyncClient() as http:
            await RetryPolicy().request(http, "POST", URL, params={"access_token": "SECRET-token"})
    assert "answered 500; retrying" in caplog.text
    assert "SECRET-token" not in caplog.text
