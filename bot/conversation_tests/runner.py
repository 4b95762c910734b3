"""Run conversation tests: each conversation in a fresh conversation, step by step, judging every
turn. In process the runner sees the whole turn (intent, action, form, hand-off); over HTTP
(`--url`) it sees what a customer sees (replies, buttons, sources, the hand-off flag)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from bot.conversation_tests.judge import Observation, judge
from bot.conversation_tests.spec import Conversation, Expect, Step
from bot.dialogue.domain import Domain
from bot.types import Button, Message, Reply, Turn

# What only the in-process runner can see; over HTTP these keys are reported as not checked. A
# direct FAQ answer carries no sources in the public API (composed ones do), so which entry answered,
# and whether anything factual was said, are known in process only.
INSIDE_ONLY = ("intent", "response", "responses", "form", "form_completed", "no_form", "slots",
               "offers_handoff", "clarifies", "faq", "faq_all", "refuses")


class Bot(Protocol):
    """A bot under test: a fresh conversation, then one customer turn at a time."""

    inside: bool

    async def start(self) -> str: ...
    async def say(self, conversation_id: str, text: str, payload: str | None) -> Observation: ...


OnTurn = Callable[[Conversation, "StepResult", Observation], None]


@dataclass
class StepResult:
    step: Step
    replies: list[Reply]
    failures: list[str]


@dataclass
class Result:
    conversation: Conversation
    steps: list[StepResult] = field(default_factory=list)
    seconds: float = 0.0
    unchecked: int = 0
    error: str | None = None

    @property
    def passed(self) -> bool:
        return self.error is None and all(not s.failures for s in self.steps)


class TurnCapture:
    """Wraps the pipeline's transcript store to keep the last Turn of each conversation."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.last: dict[str, Turn] = {}

    def record(self, turn: Turn, handoff: bool = False, handoff_reason: str | None = None) -> None:
        self.last[turn.conversation_id] = turn
        self.inner.record(turn, handoff, handoff_reason)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class InProcessBot:
    """The pipeline of `bot.services.Services`, with every turn captured as it is recorded."""

    inside = True

    def __init__(self, services: Any) -> None:
        self.pipeline = services.pipeline
        self.store = services.store
        self.capture = TurnCapture(self.pipeline.transcripts)
        self.pipeline.transcripts = self.capture

    async def start(self) -> str:
        return f"test-{uuid.uuid4().hex[:16]}"

    async def say(self, conversation_id: str, text: str, payload: str | None) -> Observation:
        before = await self.store.get(conversation_id)
        msg = Message(channel="test", conversation_id=conversation_id, message_id=uuid.uuid4().hex,
                      text=text, payload=payload)
        replies = await self.pipeline.handle(msg)
        session = await self.store.get(conversation_id)
        return Observation(replies, self.capture.last.pop(conversation_id, None), session,
                           handoff_before=bool(before and before.handoff))


class HttpBot:
    """A served supportbot, through its public conversation API, as the widget uses it."""

    inside = False

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.tokens: dict[str, str] = {}

    async def start(self) -> str:
        r = await self.client.post("/api/v1/conversations", json={})
        r.raise_for_status()
        body = r.json()
        self.tokens[body["conversation_id"]] = body["conversation_token"]
        return str(body["conversation_id"])

    async def say(self, conversation_id: str, text: str, payload: str | None) -> Observation:
        headers = {"X-Conversation-Token": self.tokens[conversation_id]}
        state = await self._state(conversation_id, headers)
        body = {"payload": payload} if payload else {"text": text}
        r = await self.client.post(f"/api/v1/conversations/{conversation_id}/messages", json=body,
                                   headers=headers)
        r.raise_for_status()
        replies = [Reply.model_validate(reply) for reply in r.json()["replies"]]
        after = await self._state(conversation_id, headers)
        seen = Observation(replies, handoff_before=bool(state.get("handoff")))
        seen.session = _HandoffOnly(bool(after.get("handoff")))  # type: ignore[assignment]
        return seen

    async def _state(self, conversation_id: str, headers: dict[str, str]) -> dict[str, Any]:
        r = await self.client.get(f"/api/v1/conversations/{conversation_id}", headers=headers)
        return r.json() if r.status_code == 200 else {}


@dataclass
class _HandoffOnly:
    """The part of a session the public API shows."""

    handoff: bool
    handoff_reason: str | None = None
    offer: str | None = None
    active_form: str | None = None
    slots: dict[str, str] = field(default_factory=dict)


def _press(replies: list[Reply], title: str) -> Button | None:
    for reply in replies:
        for button in reply.buttons:
            if button.title.casefold() == title.casefold():
                return button
    return None


def _visible(expect: Expect, inside: bool) -> tuple[Expect, int]:
    if inside:
        return expect, 0
    hidden = {k for k in INSIDE_ONLY if getattr(expect, k) is not None}
    return expect.model_copy(update={k: None for k in hidden}), len(hidden)


async def run_one(bot: Bot, conversation: Conversation, domain: Domain,
                  on_turn: OnTurn | None = None) -> Result:
    """One conversation; it stops at the first step that cannot be taken (a missing button).
    `on_turn` sees each judged turn with what was observed (the benchmark counts with it)."""
    result = Result(conversation)
    started = time.perf_counter()
    cid = await bot.start()
    previous: list[Reply] = []
    for step in conversation.steps:
        payload = None
        if step.click is not None:
            button = _press(previous, step.click)
            if button is None:
                offered = [b.title for r in previous for b in r.buttons]
                result.steps.append(StepResult(step, [], [f"click: no button {step.click!r} in {offered}"]))
                break
            payload = button.payload
        seen = await bot.say(cid, step.user or "", payload)
        expect, hidden = _visible(step.expect, bot.inside)
        result.unchecked += hidden
        done = StepResult(step, seen.replies, judge(expect, seen, domain))
        result.steps.append(done)
        if on_turn is not None:
            on_turn(conversation, done, seen)
        previous = seen.replies
    result.seconds = time.perf_counter() - started
    return result


async def run_all(bot: Bot, conversations: Iterable[Conversation], domain: Domain,
                  on_turn: OnTurn | None = None) -> list[Result]:
    results = []
    for conversation in conversations:
        try:
            results.append(await run_one(bot, conversation, domain, on_turn))
        except Exception as exc:  # one broken conversation is reported, the rest still run
            results.append(Result(conversation, error=f"{type(exc).__name__}: {exc}"))
    return results
