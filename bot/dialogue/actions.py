"""Form actions: what happens when a form has every slot. Registered by name in the domain YAML.

`lookup_order` reads the order book (the demo's is a CSV; production plugs in its order system
behind the same `OrderBook` protocol). `record_request` hands the filled form to the transcript
store as a request for the team; the reply says so, it never pretends the change already happened.
An action answers in the `language` it is given (the conversation's; see `Domain.render`).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from bot.dialogue.domain import Domain
from bot.dialogue.forms import FormSpec
from bot.types import Reply


@dataclass(frozen=True)
class Order:
    order_number: str
    status: str
    detail: str


class OrderBook(Protocol):
    def find(self, order_number: str) -> Order | None: ...


class CsvOrderBook:
    def __init__(self, path: Path) -> None:
        self._orders: dict[str, Order] = {}
        if path.exists():
            with path.open(encoding="utf-8", newline="") as fh:
                for row in csv.DictReader(fh):
                    order = Order(row["order_number"].upper(), row["status"], row["detail"])
                    self._orders[order.order_number] = order

    def find(self, order_number: str) -> Order | None:
        return self._orders.get(order_number.upper())


class FormAction(Protocol):
    def __call__(self, domain: Domain, form: FormSpec, slots: dict[str, str],
                 language: str | None = None) -> list[Reply]: ...


@dataclass
class LookupOrder:
    orders: OrderBook

    def __call__(self, domain: Domain, form: FormSpec, slots: dict[str, str],
                 language: str | None = None) -> list[Reply]:
        order = self.orders.find(slots["order_number"])
        if order is None:
            return [domain.render("utter_order_not_found", slots, language=language)]
        values = {**slots, "status": order.status.replace("_", " ").capitalize(), "detail": order.detail}
        return [domain.render("utter_order_found", values, language=language)]


def record_request(domain: Domain, form: FormSpec, slots: dict[str, str],
                   language: str | None = None) -> list[Reply]:
    return [domain.render(form.done or "utter_anything_else", slots, language=language)]


def default_actions(orders: OrderBook) -> dict[str, FormAction]:
    return {"lookup_order": LookupOrder(orders), "record_request": record_request}
