"""Whether a turn did what its step expected: each expectation that fails says what happened."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bot.conversation_tests.spec import Expect, Texts
from bot.dialogue.domain import Domain
from bot.types import Action, Reply, Session, Turn

HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
LATIN_WORD = re.compile(r"[A-Za-z]{2,}")
@dataclass
class Observation:
    """What one turn produced, as far as the runner can see it."""

    replies: list[Reply]
    turn: Turn | None = None
    session: Session | None = None
    handoff_before: bool = False
    sources: list[str] = field(default_factory=list)

    @property
    def action(self) -> Action | None:
        return self.turn.action if self.turn else None

    @property
    def text(self) -> str:
        return "\n".join(r.text for r in self.replies)

    @property
    def entry_ids(self) -> set[str]:
        ids = {s.id for r in self.replies for s in r.sources} | set(self.sources)
        if self.action and self.action.faq_hit and self.answered:
            ids.add(self.action.faq_hit.entry_id)
        return ids

    @property
    def answered(self) -> bool:
        """A factual answer: an FAQ answer, or a composed answer the guards let through."""
        if self.action is None:
            return any(r.sources for r in self.replies)
        return self.action.answered


def _many(value: Texts) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def language_of(text: str) -> str:
    """zh when most of the words are Chinese (order numbers, e-mails and brand names aside), else en."""
    han = len(HAN.findall(text))
    latin = sum(1 for w in LATIN_WORD.findall(text) if not w.isupper())
    return "zh" if han and han >= latin else "en"


def _template(text: str) -> re.Pattern[str]:
    parts = re.split(r"\{[a-z_]+\}", text.strip())
    return re.compile(".+?".join(re.escape(p) for p in parts), re.S)


def is_response(domain: Domain, name: str, reply: Reply) -> bool:
    """Whether a reply is one of the variants (in any language) of a domain response."""
    if name not in domain.responses:
        return False
    variants = [v for lang in [None, *domain.languages] for v in domain.variants(name, lang)]
    return any(_template(v.text).fullmatch(reply.text.strip()) for v in variants if v.text)


def judge(expect: Expect, seen: Observation, domain: Domain) -> list[str]:
    """The failed expectations of one turn, each as `key: expected …, got …`."""
    failures: list[str] = []
    for check in (_answers, _understanding, _forms, _handoff, _shape, _words):
        failures += check(expect, seen, domain)
    return failures


def _answers(expect: Expect, seen: Observation, domain: Domain) -> list[str]:
    out = []
    got = sorted(seen.entry_ids) or "no FAQ answer"
    if expect.faq is not None and not (set(_many(expect.faq)) & seen.entry_ids):
        out.append(f"faq: expected {expect.faq}, got {got}")
    if expect.faq_all is not None and not set(expect.faq_all) <= seen.entry_ids:
        out.append(f"faq_all: expected {expect.faq_all}, got {got}")
    if expect.refuses is not None and expect.refuses == seen.answered:
        said = f"an answer from {got}" if seen.answered else "no answer"
        out.append(f"refuses: expected {expect.refuses}, got {said}")
    return out


def _understanding(expect: Expect, seen: Observation, domain: Domain) -> list[str]:
    out = []
    parse = seen.turn.parse if seen.turn else None
    if expect.intent is not None and parse is not None and parse.intent != expect.intent:
        out.append(f"intent: expected {expect.intent}, got {parse.intent} ({parse.confidence:.2f})")
    clarified = bool(seen.action and seen.action.kind == "clarify" and seen.action.name == "clarify")
    if expect.clarifies is not None and expect.clarifies != clarified:
        out.append(f"clarifies: expected {expect.clarifies}, got {clarified}")
    for name in ([expect.response] if expect.response else []) + (expect.responses or []):
        if name in domain.responses and not any(is_response(domain, name, r) for r in seen.replies):
            out.append(f"response: expected {name}")
        elif name not in domain.responses and not _did_action(seen, name):
            out.append(f"action: expected {name}, got {seen.action.name if seen.action else '?'}")
    return out


def _did_action(seen: Observation, name: str) -> bool:
    """A Rasa story's non-response action: a form we run under that name, or our action's name."""
    action = seen.action
    if action is None:
        return False
    form = seen.session.active_form if seen.session else None
    return name in {action.name, action.name.split(":")[0], form} or (
        action.submitted is not None and action.submitted.get("form") == name)


def _forms(expect: Expect, seen: Observation, domain: Domain) -> list[str]:
    out = []
    session, action = seen.session, seen.action
    active = session.active_form if session else None
    if expect.form is not None and active != expect.form:
        out.append(f"form: expected {expect.form} active, got {active or 'no form'}")
    if expect.no_form and active is not None:
        out.append(f"no_form: expected no form, got {active}")
    submitted = action.submitted.get("form") if action and action.submitted else None
    if expect.form_completed is not None and submitted != expect.form_completed:
        got = submitted or "nothing submitted"
        out.append(f"form_completed: expected {expect.form_completed}, got {got}")
    for slot, value in (expect.slots or {}).items():
        got = (session.slots if session else {}).get(slot)
        if got is None and action and action.submitted:
            got = action.submitted.get("slots", {}).get(slot)
        if str(got).casefold() != value.casefold():
            out.append(f"slots: expected {slot}={value}, got {got}")
    return out


def _handoff(expect: Expect, seen: Observation, domain: Domain) -> list[str]:
    out = []
    now = bool(seen.session and seen.session.handoff)
    handed = now and not seen.handoff_before
    if expect.handoff is not None and expect.handoff != handed:
        reason = seen.session.handoff_reason if seen.session else None
        why = f" ({reason})" if handed and reason else ""
        out.append(f"handoff: expected {expect.handoff}, got {handed}{why}")
    offered = bool(seen.session and seen.session.offer == "handoff")
    if expect.offers_handoff is not None and expect.offers_handoff != offered:
        out.append(f"offers_handoff: expected {expect.offers_handoff}, got {offered}")
    return out


def _shape(expect: Expect, seen: Observation, domain: Domain) -> list[str]:
    out = []
    titles = {b.title.casefold() for r in seen.replies for b in r.buttons}
    missing = [t for t in expect.buttons or [] if t.casefold() not in titles]
    if missing:
        out.append(f"buttons: expected {missing}, got {sorted(titles) or 'no buttons'}")
    if expect.language is not None:
        wrong = [r.text for r in seen.replies if r.text.strip() and language_of(r.text) != expect.language]
        if wrong:
            out.append(f"language: expected {expect.language}, got {wrong[0][:80]!r}")
    return out


def _words(expect: Expect, seen: Observation, domain: Domain) -> list[str]:
    text = seen.text.casefold()
    missing = [t for t in _many(expect.contains or []) if t.casefold() not in text]
    present = [t for t in _many(expect.not_contains or []) if t.casefold() in text]
    return ([f"contains: expected {missing}"] if missing else []) + (
        [f"not_contains: {present} said"] if present else [])
