"""Personal data out of text before it is stored for training or review.

Support logs are full of emails, phone numbers, card and order numbers and names. Training data,
FAQ candidates and review lists keep the *shape* of a message ("my order [ORDER] never came") and
lose the person. Card numbers are only redacted when they pass the Luhn check, so product codes and
prices survive; names are redacted where the text gives them away (greetings, sign-offs, "my name
is ...") or where the record names its people.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b")
CARD = re.compile(r"(?<![\w-])(?:\d[ -]?){12,18}\d(?![\w-])")
PHONE = re.compile(r"(?<![\w/])(?:\+|00)?\d[\d ()./-]{7,}\d(?![\w/])")
DEFAULT_ORDER = r"(?i)\b(?:KK|ORD|ORDER|#)[- ]?\d{5,}\b"
_CAP = r"[A-Z][a-z]+(?:[-'][A-Z][a-z]+)?"
_NAME_CUES = [
    re.compile(rf"(?i:\b(?:my name is|my name's|i am called|this is|i'm)\s+)(?P<name>{_CAP}(?:\s{_CAP})?)"),
    re.compile(rf"(?i:\b(?:hi|hello|hey|dear|thanks|thank you|cheers|regards|best),?\s+)(?P<name>{_CAP})\b"),
    re.compile(rf"(?m)^\s*(?:[-–—]+|~)\s*(?P<name>{_CAP}(?:\s{_CAP})?)\s*$"),
]
# Capitalised words that follow the cues above without being names.
_NOT_NAMES = {
    "There", "Team", "All", "Again", "So", "Guys", "Everyone", "Support", "Sir", "Madam", "Thanks",
    "Thank", "Yes", "No", "Ok", "Okay", "Please", "Hello", "Hi", "Hey", "Great", "Good", "Sorry",
    "Morning", "Afternoon", "Evening", "Kettle", "Kin", "Just", "Still", "Here", "Looking", "Not",
    "Waiting", "Back", "Trying", "Having", "Writing", "Getting", "Going", "Really", "Very", "Much",
    "The", "It", "This", "That", "And", "But", "Is", "Are", "Was", "Can", "Could", "Would", "Will",
}


def public_contacts(texts: list[str]) -> frozenset[str]:
    """Emails and phone numbers a company publishes (in its FAQ): not personal data."""
    found: set[str] = set()
    for text in texts:
        found.update(m.group() for m in EMAIL.finditer(text))
        found.update(m.group().strip() for m in PHONE.finditer(text))
    return frozenset(found)


def luhn_ok(digits: str) -> bool:
    total, parity = 0, len(digits) % 2
    for i, ch in enumerate(digits):
        d = int(ch)
        if i % 2 == parity:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


@dataclass
class Scrubber:
    """Redacts personal data with typed placeholders and counts what it removed."""

    order_pattern: str = DEFAULT_ORDER
    names: bool = True
    keep: frozenset[str] = frozenset()  # the company's own public contacts (from its FAQ)
    counts: Counter[str] = field(default_factory=Counter)
    touched: int = 0

    def __post_init__(self) -> None:
        self._order = re.compile(self.order_pattern)

    def scrub(self, text: str, known_names: Iterable[str] = ()) -> str:
        before = sum(self.counts.values())
        text = self._sub(EMAIL, "EMAIL", text)
        text = self._sub(IBAN, "IBAN", text)
        text = self._order.sub(self._count("ORDER"), text)
        text = CARD.sub(self._card, text)
        text = PHONE.sub(self._phone, text)
        if self.names:
            text = self._names(text, known_names)
        if sum(self.counts.values()) > before:
            self.touched += 1
        return text

    def report(self) -> dict[str, int]:
        return {"messages_redacted": self.touched, **dict(sorted(self.counts.items()))}

    def _count(self, kind: str):
        def repl(m: re.Match[str]) -> str:
            if m.group() in self.keep:
                return m.group()
            self.counts[kind] += 1
            return f"[{kind}]"

        return repl

    def _sub(self, pattern: re.Pattern[str], kind: str, text: str) -> str:
        return pattern.sub(self._count(kind), text)

    def _card(self, m: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", m.group())
        if 13 <= len(digits) <= 19 and luhn_ok(digits):
            self.counts["CARD"] += 1
            return "[CARD]"
        return m.group()

    def _phone(self, m: re.Match[str]) -> str:
        raw = m.group()
        digits = re.sub(r"\D", "", raw)
        # Dates, prices and codes also look like digit runs: a phone has 8-15 digits, not a date.
        if raw.strip() in self.keep or not 8 <= len(digits) <= 15:
            return raw
        if re.fullmatch(r"\d{1,4}[./-]\d{1,2}[./-]\d{2,4}", raw):
            return raw
        self.counts["PHONE"] += 1
        return "[PHONE]"

    def _names(self, text: str, known: Iterable[str]) -> str:
        for name in sorted({n.strip() for n in known if n and len(n.strip()) > 1}, key=len, reverse=True):
            for part in {name, *name.split()}:
                if len(part) > 1 and part[0].isupper():
                    text, n = re.subn(rf"\b{re.escape(part)}\b", "[NAME]", text)
                    self.counts["NAME"] += n
        for cue in _NAME_CUES:
            text = cue.sub(self._name, text)
        return text

    def _name(self, m: re.Match[str]) -> str:
        words = m.group("name").split()
        if words[0] in _NOT_NAMES:
            return m.group()
        self.counts["NAME"] += 1
        start, end = m.span("name")
        whole = m.group()
        offset = m.start()
        return whole[: start - offset] + "[NAME]" + whole[end - offset :]
