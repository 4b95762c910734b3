"""Personal data out of what reaches a model and what it answers: bot.pii's rules, the one detector."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from bot.pii import KINDS, public_contacts, redact


@dataclass
class PiiMasker:
    """Mask personal data with bot.pii's rules (the one detector; see there) and lower-case
    placeholders; `allow` holds what is not personal (the company's own published contacts)."""

    allow: set[str] = field(default_factory=set)
    email: str = "[email]"
    phone: str = "[phone]"
    card: str = "[card]"
    iban: str = "[iban]"
    ssn: str = "[ssn]"
    national_id: str = "[national_id]"

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> PiiMasker:
        contacts = public_contacts(list(texts))
        return cls(allow=set(contacts) | {c.lower() for c in contacts})

    def mask(self, text: str) -> tuple[str, list[str]]:
        """The masked text and the kinds found (email, phone, card, iban, ssn, national_id)."""
        return redact(text, KINDS, self._placeholder, keep=self.allow)

    def _placeholder(self, kind: str) -> str:
        return str(getattr(self, kind))
