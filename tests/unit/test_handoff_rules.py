from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.dialogue.domain import HandoffRules
from bot.handoff.hours import BusinessHours


@pytest.mark.parametrize(("text", "reason"), [
    ("I'm going to take legal action", "escalation"),
    ("my lawyer will hear about this", "escalation"),
    ("this is terrible, your service is useless", "negative_sentiment"),
    ("WHERE IS MY PARCEL I HAVE WAITED TWO WEEKS!!!", "negative_sentiment"),
    ("the weather is terrible today", None),
    ("where is my order", None),
])
def test_triggers(text: str, reason: str | None) -> None:
    rules = HandoffRules(escalation_patterns=[r"(?i)\b(lawyer|legal action)\b"],
                         negative_words=["terrible", "useless"], negative_threshold=2)
    assert rules.trigger(text) == reason


def test_business_hours_in_their_time_zone() -> None:
    hours = BusinessHours("Mon-Fri 08:00-20:00; Sat 09:00-17:00", "Europe/Amsterdam")
    assert hours.open_at(datetime(2026, 11, 23, 7, 30, tzinfo=UTC))  # Monday 08:30 CET
    assert not hours.open_at(datetime(2026, 11, 23, 6, 30, tzinfo=UTC))  # Monday 07:30 CET
    assert hours.open_at(datetime(2026, 11, 28, 15, 0, tzinfo=UTC))  # Saturday 16:00
    assert not hours.open_at(datetime(2026, 11, 29, 12, 0, tzinfo=UTC))  # Sunday
    with pytest.raises(ValueError, match="business hours"):
        BusinessHours("weekdays 9 to 5")


def test_a_window_can_end_at_midnight() -> None:
    always = BusinessHours("Mon-Sun 00:00-24:00")
    assert always.open_at(datetime(2026, 11, 23, 23, 59, 59, 999999, tzinfo=UTC))
    assert always.open_at(datetime(2026, 11, 29, 0, 0, tzinfo=UTC))
    assert not BusinessHours("Mon 20:00-24:00").open_at(datetime(2026, 11, 24, 0, 0, tzinfo=UTC))
