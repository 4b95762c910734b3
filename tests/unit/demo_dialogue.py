"""The demo domain and a policy over it, for the tests that drive the policy with hand-made parses."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from bot.config import Thresholds
from bot.dialogue.actions import CsvOrderBook, default_actions
from bot.dialogue.domain import Domain
from bot.dialogue.policy import Policy

ROOT = Path(__file__).resolve().parents[2]


@cache
def demo_domain() -> Domain:
    return Domain.load(ROOT / "training_data" / "domain.yml")


def demo_policy(domain: Domain, **options: Any) -> Policy:
    orders = CsvOrderBook(ROOT / "training_data" / "demo_orders.csv")
    return Policy(domain, Thresholds(), default_actions(orders), seed=1, **options)
