"""Forms: the slots a form asks for, and how a slot's value is found and validated in a message."""

from __future__ import annotations

import re
import unicodedata

from pydantic import BaseModel, Field

# Trailing punctuation a free-text slot value loses, Latin and CJK (after NFKC full-width
# punctuation is already ASCII; the ideographic full stop and comma are not).
_STRIP = " .,!?;:\"'。、"


def normalize(text: str) -> str:
    """What slot extraction sees: NFKC (full-width letters, digits and punctuation become their
    ASCII forms, the ideographic space a space) and single spaces."""
    return " ".join(unicodedata.normalize("NFKC", text).split())


class SlotSpec(BaseModel):
    name: str
    ask: str
    invalid: str
    pattern: str | None = Field(None, description=(
        "Regex found anywhere in the message; match is the value. Python's `\\b` sees no boundary "
        "between a CJK character and a Latin letter or digit (all are word characters): start the "
        "pattern with `(?a)` so that 'KK123456' is found in '订单号KK123456'."))
    min_length: int = 1
    must_contain: str | None = Field(None, description="Regex a free-text value must contain.")
    upper: bool = False
    template: str | None = Field(None, description="Canonical form, e.g. 'KK-{digits}'.")

    def extract(self, text: str) -> str | None:
        """The slot's value in this message, or None when the message does not give a valid one.
        The message is NFKC-normalized first: 'ＫＫ１２３４５６' is KK123456, '８８号' is 88号."""
        text = normalize(text)
        if self.pattern:
            m = re.search(self.pattern, text)
            if not m:
                return None
            value = m.group(0)
        else:
            value = text.strip(_STRIP)
            if len(value) < self.min_length:
                return None
            if self.must_contain and not re.search(self.must_contain, value):
                return None
        if self.template:
            value = self.template.format(digits="".join(ch for ch in value if ch.isdigit()))
        return value.upper() if self.upper else value


class FormSpec(BaseModel):
    slots: list[SlotSpec]
    submit: str = Field(description="Name of the form action run when every slot is filled.")
    done: str | None = None
    on_bare_value: bool = Field(
        False, description="A message that is only a value of this form's slots (an order number on "
                           "its own) starts this form: the safe reading (a lookup, never a cancellation).")

    def slot(self, name: str | None) -> SlotSpec | None:
        return next((s for s in self.slots if s.name == name), None)
