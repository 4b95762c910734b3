"""Personal data out of text: one set of rules for every place that keeps or shows a customer's words.

One detector, three uses:

- `Scrubber` (training data, FAQ candidates, the review stream): everything personal becomes a typed
  placeholder ("my order [ORDER] never came, call [PHONE]") and is counted; the text keeps its shape
  and loses the person. Names are redacted where the text gives them away (greetings, sign-offs,
  "my name is ...") or where the record names its people.
- `mask_sensitive` (text at rest: SQL transcripts, form requests, the Redis session history): card
  numbers, IBANs, US SSNs and Chinese resident ID numbers, always. Contact details stay, since the
  team needs them to answer; a card or ID number is never needed after the turn that carried it.
- `redact` (the generator's guard, the log filter): any set of kinds, any placeholder style.

Numbers are checked, not guessed, so prices, dates, product codes and order numbers survive: cards
pass Luhn, IBANs their country's length and mod 97, resident IDs ISO 7064 MOD 11-2, SSNs a valid
area, group and serial. Boundaries are explicit lookarounds on ASCII letters and digits, never `\\b`:
Python counts CJK characters as word characters, so `\\b` finds no edge in `手机号13812345678`.
Full-width characters (a Chinese keyboard's １３８...) are folded to ASCII before matching.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field

Span = tuple[int, int]
Finder = Callable[[str], list[Span]]

KINDS = ("email", "iban", "national_id", "ssn", "card", "phone")
SENSITIVE = ("iban", "national_id", "ssn", "card")  # masked at rest, always
DEFAULT_ORDER = r"(?i)\b(?:KK|ORD|ORDER|#)[- ]?\d{5,}\b"

# Full-width forms -> ASCII, one character for one: a span found in the folded text is a span of
# the original.
_FOLD = {0x3000: 0x20} | {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)}

EMAIL = re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
PHONE = re.compile(r"(?<![A-Za-z0-9_/-])(?:\+|00)?\(?[0-9][0-9 ()./-]{6,24}[0-9](?![A-Za-z0-9_/-])")
_CN_MOBILE = re.compile(r"(?<![0-9])1[3-9][0-9]{9}(?![0-9])")
_DATE = re.compile(r"[0-9]{1,4}[./-][0-9]{1,2}[./-][0-9]{2,4}")
_SSN = re.compile(r"(?<![0-9])(?<![0-9]-)(?!000|666|9)[0-9]{3}-(?!00)[0-9]{2}-(?!0000)[0-9]{4}"
                  r"(?![0-9])(?!-[0-9])")
_CN_ID = re.compile(r"(?<![0-9])[1-9][0-9]{5}(?:18|19|20)[0-9]{2}(?:0[1-9]|1[0-2])"
                    r"(?:0[1-9]|[12][0-9]|3[01])[0-9]{3}[0-9Xx](?![0-9])")
_CN_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CN_CHECK = "10X98765432"
# A run of digit groups with single spaces or dashes between them: where a card number can hide.
_DIGIT_RUN = re.compile(r"(?<![0-9])[0-9]+(?:[ -][0-9]+)*")
_GROUP = re.compile(r"[0-9]+")
_IBAN_START = re.compile(r"[A-Za-z]{2}[0-9]{2}")
# ISO 13616 registry: each country's IBAN length.
_IBAN_REGISTRY = (
    "AD24 AE23 AL28 AT20 AZ28 BA20 BE16 BG22 BH22 BI27 BR29 BY28 CH21 CR22 CY28 CZ24 DE22 DJ27 DK18 "
    "DO28 EE20 EG29 ES24 FI18 FK18 FO18 FR27 GB22 GE22 GI23 GL18 GR27 GT28 HN28 HR21 HU28 IE22 IL23 "
    "IQ23 IS26 IT27 JO30 KW30 KZ20 LB28 LC32 LI21 LT20 LU20 LV21 LY25 MC27 MD24 ME22 MK19 MN20 MR27 "
    "MT31 MU30 NI28 NL18 NO15 OM23 PK24 PL28 PS29 PT25 QA29 RO24 RS22 RU33 SA24 SC31 SD18 SE24 SI19 "
    "SK24 SM27 SO23 ST25 SV28 TL23 TN24 TR26 UA29 VA22 VG24 XK20 YE30")
_IBAN_LENGTHS = {entry[:2]: int(entry[2:]) for entry in _IBAN_REGISTRY.split()}

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


# --- checksums -------------------------------------------------------------------------------
def luhn_ok(digits: str) -> bool:
    total, parity = 0, len(digits) % 2
    for i, ch in enumerate(digits):
        d = int(ch)
        if i % 2 == parity:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_ok(iban: str) -> bool:
    """ISO 13616 mod-97 check of a compact IBAN (letters count 10..35)."""
    text = iban.upper()
    if len(text) < 5 or not text[2:4].isdigit() or not text.isalnum():
        return False
    return int("".join(str(int(ch, 36)) for ch in text[4:] + text[:4])) % 97 == 1


def resident_id_ok(number: str) -> bool:
    """ISO 7064 MOD 11-2 check digit of an 18-character Chinese resident ID number."""
    if len(number) != 18 or not number[:17].isdigit():
        return False
    total = sum(int(ch) * w for ch, w in zip(number[:17], _CN_WEIGHTS, strict=True))
    return _CN_CHECK[total % 11] == number[17].upper()


# --- finders: spans of one kind in (folded) text ---------------------------------------------
def _emails(text: str) -> list[Span]:
    return [m.span() for m in EMAIL.finditer(text)]


def _ibans(text: str) -> list[Span]:
    spans: list[Span] = []
    pos = 0
    while (m := _IBAN_START.search(text, pos)) is not None:
        end = _iban_end(text, m.start())
        spans.extend([(m.start(), end)] if end else [])
        pos = end or m.start() + 1
    return spans


def _iban_end(text: str, start: int) -> int | None:
    """The end of the IBAN starting at `start`: its country's number of letters and digits (single
    spaces between them allowed), passing mod 97, not followed by another letter or digit; None
    when there is none."""
    length = _IBAN_LENGTHS.get(text[start : start + 2].upper())
    if length is None:
        return None
    chars: list[str] = []
    i = start
    while len(chars) < length and i < len(text):
        ch = text[i]
        if ch.isascii() and ch.isalnum():
            chars.append(ch)
        elif ch != " " or i + 1 >= len(text) or not (text[i + 1].isascii() and text[i + 1].isalnum()):
            return None
        i += 1
    if len(chars) < length or (i < len(text) and text[i].isascii() and text[i].isalnum()):
        return None  # too short, or it would end inside a longer run ("NO93" + a card's digits)
    return i if iban_ok("".join(chars)) else None


def _resident_ids(text: str) -> list[Span]:
    return [m.span() for m in _CN_ID.finditer(text) if resident_id_ok(m.group())]


def _ssns(text: str) -> list[Span]:
    return [m.span() for m in _SSN.finditer(text)]


def _cards(text: str) -> list[Span]:
    spans: list[Span] = []
    for run in _DIGIT_RUN.finditer(text):
        groups = [(run.start() + g.start(), run.start() + g.end()) for g in _GROUP.finditer(run.group())]
        spans.extend(_card_windows(text, groups))
    return spans


def _card_windows(text: str, groups: list[Span]) -> list[Span]:
    """Whole groups of one run, one kind of separator, 13-19 digits, Luhn-valid: the longest such
    window from each start ("4111 1111 1111 1111 123" takes the CVV along too). No card number
    starts with 0 or follows a "+": those are phone numbers ("+86 13812345678")."""
    found: list[Span] = []
    i = 0
    while i < len(groups):
        start = groups[i][0]
        if text[start] == "0" or (start > 0 and text[start - 1] == "+"):
            i += 1
            continue
        best, digits, sep = None, "", ""
        for j in range(i, len(groups)):
            if j > i:
                here = text[groups[j - 1][1]]
                if sep and here != sep:
                    break
                sep = here
            digits += text[groups[j][0] : groups[j][1]]
            if len(digits) > 19:
                break
            if len(digits) >= 13 and luhn_ok(digits):
                best = j
        if best is None:
            i += 1
            continue
        found.append((start, groups[best][1]))
        i = best + 1
    return found


def _phones(text: str) -> list[Span]:
    """International numbers ("+86 138 1234 5678" whole), then Chinese mobile numbers that only
    digit boundaries separate from their neighbours ("tel13812345678")."""
    spans = [m.span() for m in PHONE.finditer(text) if _phone_ok(m.group())]
    taken = list(spans)
    spans += [m.span() for m in _CN_MOBILE.finditer(text)
              if not any(s < m.end() and m.start() < e for s, e in taken)]
    return sorted(spans)


def _phone_ok(raw: str) -> bool:
    """8-15 digits, not a date; 8 digits only with a + / 0 / ( in front (else a product code)."""
    digits = re.sub(r"[^0-9]", "", raw)
    if not 8 <= len(digits) <= 15 or _DATE.fullmatch(raw.strip()):
        return False
    return len(digits) > 8 or raw.lstrip().startswith(("+", "0", "("))


_FINDERS: dict[str, Finder] = {"email": _emails, "iban": _ibans, "national_id": _resident_ids,
                               "ssn": _ssns, "card": _cards, "phone": _phones}


# --- redaction --------------------------------------------------------------------------------
def upper_placeholder(kind: str) -> str:
    return f"[{kind.upper()}]"


def redact(text: str, kinds: Collection[str] = KINDS,
           placeholder: Callable[[str], str] = upper_placeholder,
           keep: Collection[str] = ()) -> tuple[str, list[str]]:
    """`text` with each kind found replaced by its placeholder, in the order of KINDS (a card is
    taken before its digits could pass for a phone); and the kinds found, one per replacement.
    `keep`: strings that are not personal (the company's published contacts; compared as written,
    stripped and lower-cased)."""
    found: list[str] = []
    for kind in KINDS:
        if kind not in kinds:
            continue
        folded = text if text.isascii() else text.translate(_FOLD)
        spans = [s for s in _FINDERS[kind](folded) if not _kept(text[s[0] : s[1]], keep)]
        if spans:
            text = _replace(text, spans, placeholder(kind))
            found.extend([kind] * len(spans))
    return text, found


def _kept(raw: str, keep: Collection[str]) -> bool:
    return bool(keep) and (raw in keep or raw.strip() in keep or raw.lower() in keep)


def _replace(text: str, spans: list[Span], token: str) -> str:
    parts: list[str] = []
    last = 0
    for start, end in spans:
        parts += [text[last:start], token]
        last = end
    parts.append(text[last:])
    return "".join(parts)


def _may_be_sensitive(text: str) -> bool:
    """The cheap pre-check of `mask_sensitive`: every kind it masks needs 9 digits, or 2 after two
    letters (an IBAN); most messages have neither, and cost ten `str.count` calls."""
    folded = text if text.isascii() else text.translate(_FOLD)
    digits = sum(map(folded.count, "0123456789"))
    return digits >= 9 or (digits >= 2 and _IBAN_START.search(folded) is not None)


def mask_sensitive(text: str) -> str:
    """Card numbers, IBANs, SSNs and Chinese resident IDs masked ([CARD], [IBAN], [SSN],
    [NATIONAL_ID]): what may be stored of a customer's text. Idempotent: it repeats until nothing
    changes (masking can open a new edge: "[CARD]-123-45-6789"), which is one pass in practice."""
    if not text or not _may_be_sensitive(text):
        return text
    for _ in range(len(text)):  # each pass that changes something removes at least two digits
        masked, found = redact(text, SENSITIVE)
        if not found:
            break
        text = masked
    return text


def public_contacts(texts: list[str]) -> frozenset[str]:
    """Emails and phone numbers a company publishes (in its FAQ): not personal data."""
    found: set[str] = set()
    for text in texts:
        found.update(text[s:e] for s, e in _emails(text))
        found.update(text[s:e].strip() for s, e in _phones(text))
    return frozenset(found)


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
        before = self.counts.total()
        # Order numbers after the identity numbers and before cards and phones: "KK-90211412345"
        # is an order, not a phone; a resident ID is never taken for an order.
        text = self._redact(text, ("email", "iban", "national_id", "ssn"))
        text = self._order.sub(self._order_number, text)
        text = self._redact(text, ("card", "phone"))
        if self.names:
            text = self._names(text, known_names)
        if self.counts.total() > before:
            self.touched += 1
        return text

    def report(self) -> dict[str, int]:
        return {"messages_redacted": self.touched, **dict(sorted(self.counts.items()))}

    def _redact(self, text: str, kinds: tuple[str, ...]) -> str:
        text, found = redact(text, kinds, keep=self.keep)
        self.counts.update(kind.upper() for kind in found)
        return text

    def _order_number(self, m: re.Match[str]) -> str:
        if m.group() in self.keep:
            return m.group()
        self.counts["ORDER"] += 1
        return "[ORDER]"

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
