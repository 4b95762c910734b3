"""Which action comes next in a Rasa project: its rules, its stories memoised with `max_history`,
and the active loop, in Rasa's order of priority (rules, then memoised stories).

TED (Rasa's learned dialogue policy) is not reproduced: where neither a rule nor a story applies,
`predict` returns None and supportbot's own fallback (FAQ, generation, hand-off) answers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from bot.rasa.domain import RasaDomain
from bot.rasa.stories import ActionStep, LoopStep, SlotStep, Story, StoryData, UserStep
from bot.rasa.tracker import LISTEN, Snapshot, Tracker, action_event, loop_event, slot_event

# Rasa's RulePolicy knows these without being told (its default rules).
DEFAULT_RULES = {"restart": "action_restart", "back": "action_back", "session_start": "action_session_start"}


@dataclass(frozen=True)
class Prediction:
    action: str
    policy: str
    confidence: float = 1.0


def story_events(story: Story, domain: RasaDomain) -> list[dict[str, Any]]:
    """A story (or a rule's body after its conditions) as the tracker events it stands for."""
    events: list[dict[str, Any]] = []
    for step in story.steps:
        if isinstance(step, UserStep):
            if not events or events[-1].get("name") != LISTEN or events[-1].get("event") != "action":
                events.append(action_event(LISTEN))
            entities = [{"entity": n, "value": v} for n, v in step.entities]
            events.append(
                {
                    "event": "user",
                    "timestamp": time.time(),
                    "text": step.text,
                    "parse_data": {"intent": {"name": step.intent, "confidence": 1.0}, "entities": entities},
                }
            )
        elif isinstance(step, ActionStep):
            events.append(action_event(step.name))
        elif isinstance(step, SlotStep):
            events.append(slot_event(step.name, step.value if not step.any_value else True))
        elif isinstance(step, LoopStep):
            events.append(loop_event(step.name))
    return events


def _targets(
    events: list[dict[str, Any]],
    domain: RasaDomain,
    sender: str = "story",
    start: list[dict[str, Any]] | None = None,
) -> list[tuple[list[Snapshot], str]]:
    """(states before the action, the action) for every action the events execute."""
    return [(states, action) for states, _, action in _targets_with_loops(events, domain, sender, start)]


def _targets_with_loops(
    events: list[dict[str, Any]],
    domain: RasaDomain,
    sender: str = "story",
    start: list[dict[str, Any]] | None = None,
) -> list[tuple[list[Snapshot], list[bool], str]]:
    """As `_targets`, with whether each state comes after one of the events' `active_loop` steps."""
    tracker = Tracker(sender, domain, list(start or []))
    out: list[tuple[list[Snapshot], list[bool], str]] = []
    states, looped, seen = [tracker.snapshot()], [False], False
    for e in events:
        if e.get("event") == "action":
            out.append((list(states), list(looped), str(e["name"])))
        tracker.add(e)
        seen = seen or e.get("event") == "active_loop"
        if e.get("event") == "action":
            states.append(tracker.snapshot())
            looped.append(seen)
        else:
            states[-1], looped[-1] = tracker.snapshot(), seen
    return out


class MemoizationPolicy:
    """Stories remembered as windows of up to `max_history` states -> the next action. A window
    found with two different next actions is forgotten (Rasa does the same). Augmented: where the
    whole window is unknown, shorter windows that start at a user turn are tried."""

    def __init__(self, domain: RasaDomain, stories: list[Story], max_history: int = 5) -> None:
        self.max_history = max(1, max_history)
        self.influencing = frozenset(n for n, s in domain.slots.items() if s.influence_conversation)
        self.table: dict[tuple[Any, ...], set[str]] = {}
        for story in stories:
            events = story_events(story, domain)
            if not (events and events[-1].get("event") == "action" and events[-1].get("name") == LISTEN):
                events.append(action_event(LISTEN))  # a story ends waiting for the user
            for states, action in _targets(events, domain):
                for key in self._keys(states):
                    self.table.setdefault(key, set()).add(action)

    def _keys(self, states: list[Snapshot]) -> list[tuple[Any, ...]]:
        keys = []
        for length in range(1, self.max_history + 1):
            window = states[-length:]
            if len(window) < length:
                break
            if len(window) == len(states) or window[0].prev_action == LISTEN:
                keys.append(tuple(s.memo_key(self.influencing) for s in window))
        return keys

    def predict(self, states: list[Snapshot]) -> Prediction | None:
        for key in reversed(self._keys(states)):
            actions = self.table.get(key)
            if actions is not None and len(actions) == 1:
                return Prediction(next(iter(actions)), "AugmentedMemoizationPolicy")
        return None


@dataclass(frozen=True)
class _Fragment:
    """A rule cut before one of its actions: the states it requires, then the action."""

    states: tuple[dict[str, Any], ...]
    action: str
    conversation_start: bool
    name: str


class RulePolicy:
    """Rules as Rasa applies them: a rule's states must match the end of the conversation on
    everything the rule mentions (intent, entities, slots, active loop, previous action)."""

    def __init__(self, domain: RasaDomain, rules: list[Story]) -> None:
        self.fragments: list[_Fragment] = []
        for rule in rules:
            self.fragments += self._fragments(rule, domain)
        for intent, action in DEFAULT_RULES.items():
            if intent in domain.intents:
                self.fragments.append(
                    _Fragment(
                        ({"prev_action": LISTEN, "intent": intent},), action, False, f"default rule: {intent}"
                    )
                )

    @staticmethod
    def _fragments(rule: Story, domain: RasaDomain) -> list[_Fragment]:
        condition_events: list[dict[str, Any]] = []
        mentioned_slots: set[str] = set()
        condition_loop = False
        for step in rule.condition:
            if isinstance(step, SlotStep):
                condition_events.append(slot_event(step.name, step.value if not step.any_value else True))
                mentioned_slots.add(step.name)
            elif isinstance(step, LoopStep):
                condition_events.append(loop_event(step.name))
                condition_loop = True
        body = story_events(rule, domain)
        starts_with_user = bool(rule.steps) and isinstance(rule.steps[0], UserStep)
        mentioned_slots |= {s.name for s in rule.steps if isinstance(s, SlotStep)}
        user_mentioned = any(isinstance(s, UserStep) for s in rule.steps)
        if (
            rule.wait_for_user_input
            and body
            and not (body[-1].get("event") == "action" and body[-1].get("name") == LISTEN)
        ):
            body.append(action_event(LISTEN))
        out = []
        for states, looped, action in _targets_with_loops(body, domain, start=condition_events):
            if starts_with_user:  # the state before the rule's implicit `action_listen`: anything
                states, looped = states[1:], looped[1:]
            # A loop counts where the rule's condition names one or after the rule's own loop step.
            partial = [
                _partial(s, mentioned_slots, condition_loop or seen, user_mentioned)
                for s, seen in zip(states, looped, strict=True)
            ]
            if partial and not starts_with_user:
                partial[0].pop("prev_action", None)  # a rule that starts with an action: any before it
                first = rule.steps[0] if rule.steps else None
                if isinstance(first, ActionStep) and first.name in domain.forms and len(partial) > 1:
                    # "condition: active_loop: F; steps: F, active_loop: null, ..." holds whether F was
                    # active before its last run or was activated and completed by it in one go.
                    partial[0].pop("active_loop", None)
            if not any(partial):
                continue  # a fragment that requires nothing would fire everywhere
            out.append(_Fragment(tuple(partial), action, rule.conversation_start, rule.name))
        return out

    def predict(self, states: list[Snapshot], tracker: Tracker) -> Prediction | None:
        best: _Fragment | None = None
        loop = tracker.active_loop
        for f in self.fragments:
            n = len(f.states)
            if n == 0 or n > len(states):
                continue
            if f.conversation_start and len(states) - n > 1:
                continue
            if loop and f.action == loop and f.states[-1].get("prev_action") in (None, LISTEN):
                continue  # the loop's turn after the user spoke is the ensemble's (happy path)
            if not all(_matches(r, s) for r, s in zip(f.states, states[-n:], strict=True)):
                continue
            if best is None or _specificity(f) > _specificity(best):
                best = f  # the longer rule wins; of two as long, the one that requires more
        if best is None:
            return None
        if loop and best.action == LISTEN and not any("active_loop" in s for s in best.states):
            # Rasa: a general rule (one that says nothing of loops) answered inside a form; the
            # form asks its question again instead of waiting.
            return Prediction(loop, "RulePolicy")
        return Prediction(best.action, "RulePolicy")


def _specificity(f: _Fragment) -> tuple[int, int]:
    return len(f.states), sum(len(s) for s in f.states)


def _partial(s: Snapshot, slots: set[str], loop: bool, user: bool) -> dict[str, Any]:
    state: dict[str, Any] = {"prev_action": s.prev_action}
    if user and s.intent is not None:
        state["intent"] = s.intent
        if s.entities:
            state["entities"] = s.entities
    values = dict(s.slots)
    for name in slots:
        state[f"slot:{name}"] = values.get(name)
    if loop:
        state["active_loop"] = s.active_loop
    return state


def _matches(rule_state: dict[str, Any], s: Snapshot) -> bool:
    values = dict(s.slots)
    for key, want in rule_state.items():
        if key == "prev_action":
            have: Any = s.prev_action
        elif key == "intent":
            have = s.intent
        elif key == "entities":
            if not set(want) <= set(s.entities):
                return False
            continue
        elif key == "active_loop":
            have = s.active_loop
        else:
            have = values.get(key.removeprefix("slot:"))
        if have != want:
            return False
    return True


class PolicyEnsemble:
    """The next action: a follow-up action, the active loop, rules, memoised stories, in that
    order; None when nothing applies right after a user message (supportbot's fallback answers)."""

    def __init__(self, domain: RasaDomain, data: StoryData, max_history: int = 5) -> None:
        self.domain = domain
        self.rules = RulePolicy(domain, data.rules)
        self.memo = MemoizationPolicy(domain, data.stories, max_history)

    def predict(self, tracker: Tracker) -> Prediction | None:
        if tracker.followup:
            return Prediction(tracker.followup, "FollowupAction")
        loop = tracker.active_loop
        if loop and not tracker.loop_rejected:
            return Prediction(LISTEN if tracker.latest_action == loop else loop, "RulePolicy")
        states = tracker.past_states()
        prediction = self.rules.predict(states, tracker) or self.memo.predict(states)
        if prediction is not None:
            return prediction
        if loop and tracker.latest_action not in (LISTEN, loop):
            return Prediction(loop, "RulePolicy")  # back to the form after an unhappy-path action
        if tracker.latest_action != LISTEN:
            return Prediction(LISTEN, "RulePolicy")
        return None
