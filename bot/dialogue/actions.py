"""Form actions: what happens when a form has every slot. Registered by name in the domain YAML.

`lookup_order` reads the order book (the demo's is a CSV; production plugs in its order system
behind the same `OrderBook` protocol). `record_request` hands the filled form to the transcript
store as a request for the team; the reply says so, it never pretends the change already happened.
An action answers in the `language` it is given (the conversation's; see `Domain.render`).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from bot.dialogue.domain import Domain
from bot.dialogue.forms import FormSpec
from bot.types import Reply


@dataclass(frozen=True)
class Order:
    order_number: str
    status: str
    detail: str  # in the domain's language
    translations: dict[str, str] = field(default_factory=dict)  # language -> detail

    def detail_in(self, language: str | None) -> str:
        """The detail in the conversation's language where the order system has it: a Chinese
        reply never carries an English sentence."""
        return self.translations.get((language or "").lower(), self.detail)


class OrderBook(Protocol):
    def find(self, order_number: str) -> Order | None: ...


class CsvOrderBook:
    """Columns order_number, status, detail, and a `detail_<language>` column per translation."""

    def __init__(self, path: Path) -> None:
        self._orders: dict[str, Order] = {}
        if path.exists():
            with path.open(encoding="utf-8", newline="") as fh:
                for row in csv.DictReader(fh):
                    translations = {k.removeprefix("detail_").lower(): v for k, v in row.items()
                                    if k and k.startswith("detail_") and v}
                    order = Order(row["order_number"].upper(), row["status"], row["detail"], translations)
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
        values = {**slots, "status": _status(domain, order.status, language),
                  "detail": order.detail_in(language)}
        return [domain.render("utter_order_found", values, language=language)]


def _status(domain: Domain, status: str, language: str | None) -> str:
    """The status's label from the domain's `utter_order_status_<status>` response (translated like
    any response), else the order system's code as words."""
    name = f"utter_order_status_{status.lower()}"
    if name in domain.responses:
        return domain.render(name, language=language).text
    return status.replace("_", " ").capitalize()


def record_request(domain: Domain, form: FormSpec, slots: dict[str, str],
                   language: str | None = None) -> list[Reply]:
    return [domain.render(form.done or "utter_anything_else", slots, language=language)]


def default_actions(orders: OrderBook) -> dict[str, FormAction]:
    return {"lookup_order": LookupOrder(orders), "record_request": record_request}
