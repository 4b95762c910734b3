"""When a conversation counts as resolved by the bot: one definition for production transcripts
(`supportbot resolution`, the console's analytics) and the conversation benchmark.

A conversation is resolved by the bot when it was not handed to a person (no turn of it handed off)
and either the customer
confirmed an answer ("Did that answer your question?" → yes) after the last answer they rejected,
or the bot answered at least once, no answer was rejected ("no") or asked for again (the same FAQ
entry twice in a row: "repeated"), and the customer's last message was understood.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# Action kind and name of the turns that answer the customer (a form's name ends in ":submitted").
_ANSWER_KINDS = {"faq_answer"}
_ANSWER_NAMES = {("generate", "answered")}


@dataclass(frozen=True)
class TurnOutcome:
    """What resolution reads of one turn (a transcript row, or a live `Turn`)."""

    action: str
    action_name: str
    understood: bool
    feedback: str | None = None

    @property
    def answered(self) -> bool:
        return (self.action in _ANSWER_KINDS or (self.action, self.action_name) in _ANSWER_NAMES
                or (self.action == "fill_form" and self.action_name.endswith(":submitted")))


def handed_off(turns: Sequence[TurnOutcome]) -> bool:
    return any(t.action == "handoff" for t in turns)


def resolved(turns: Sequence[TurnOutcome]) -> bool:
    if not turns or handed_off(turns):
        return False
    last_yes = max((i for i, t in enumerate(turns) if t.feedback == "yes"), default=-1)
    last_bad = max((i for i, t in enumerate(turns) if t.feedback in ("no", "repeated")), default=-1)
    if last_yes > last_bad:
        return True
    if last_bad >= 0:
        return False
    return any(t.answered for t in turns) and turns[-1].understood


@dataclass(frozen=True)
class ResolutionReport:
    conversations: int
    resolved: int
    handed_off: int
    confirmed: int  # with a "yes"
    rejected: int  # with a "no" or a repeated question

    @property
    def rate(self) -> float | None:
        return round(self.resolved / self.conversations, 4) if self.conversations else None


def report(conversations: Iterable[Sequence[TurnOutcome]]) -> ResolutionReport:
    """The rate over conversations, each given as its turns in order."""
    n = done = handed = confirmed = rejected = 0
    for turns in conversations:
        n += 1
        done += resolved(turns)
        handed += handed_off(turns)
        feedback = {t.feedback for t in turns}
        confirmed += "yes" in feedback
        rejected += bool(feedback & {"no", "repeated"})
    return ResolutionReport(n, done, handed, confirmed, rejected)
