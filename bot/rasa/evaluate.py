"""A Rasa project's test stories, evaluated as `rasa test` does: each story's events are replayed
into a tracker; at every user step the NLU's intent is compared with the story's, at every action
step the policies' prediction with the story's action, and the story's own events are applied
(so one miss does not derail the rest of the story)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from bot.rasa.domain import RasaDomain
from bot.rasa.policies import PolicyEnsemble
from bot.rasa.stories import ActionStep, LoopStep, SlotStep, Story, UserStep
from bot.rasa.tracker import LISTEN, Tracker, action_event, loop_event, slot_event, user_event

# text -> Rasa parse data (intent, entities), with the project's nlu_fallback applied
Parser = Callable[[str], Awaitable[dict[str, Any]]]


@dataclass
class Miss:
    step: int
    kind: str  # "intent" | "action"
    expected: str
    predicted: str
    text: str = ""


@dataclass
class StoryResult:
    name: str
    source: str
    misses: list[Miss] = field(default_factory=list)
    actions: int = 0
    intents: int = 0
    fallbacks: int = 0  # actions no rule or story predicted (supportbot's fallback would answer)

    @property
    def passed(self) -> bool:
        return not self.misses


async def evaluate(
    stories: list[Story], domain: RasaDomain, policies: PolicyEnsemble, parse: Parser | None = None
) -> list[StoryResult]:
    return [await evaluate_story(s, domain, policies, parse) for s in stories]


async def evaluate_story(
    story: Story, domain: RasaDomain, policies: PolicyEnsemble, parse: Parser | None = None
) -> StoryResult:
    result = StoryResult(story.name, story.source)
    tracker = Tracker(f"test:{story.name}", domain, [action_event(LISTEN)])

    def check(expected: str, at: int) -> None:
        prediction = policies.predict(tracker)
        loop = tracker.active_loop
        if prediction is not None and prediction.action == loop and expected != loop:
            # As `rasa test` does: the story says the form was not run here, so it rejected the
            # message (an unhappy path); the other policies predict again.
            tracker.add({"event": "action_execution_rejected", "name": loop})
            prediction = policies.predict(tracker)
        predicted = prediction.action if prediction else "(no prediction: supportbot's fallback)"
        result.actions += 1
        result.fallbacks += prediction is None
        if predicted != expected:
            result.misses.append(Miss(at, "action", expected, predicted))

    for i, step in enumerate(story.steps, start=1):
        if isinstance(step, UserStep):
            if tracker.latest_action != LISTEN:
                check(LISTEN, i)
                tracker.add(action_event(LISTEN))
            intent = step.intent
            parsed: dict[str, Any] = {}
            if step.text is not None and parse is not None:
                parsed = await parse(step.text)
                got = (parsed.get("intent") or {}).get("name")
                keys = {str(got)} | {
                    str((s.get("response") or {}).get("intent_response_key"))
                    for s in (parsed.get("response_selector") or {}).values()
                }  # a retrieval intent may be written whole (`chitchat/ask_name`) or as its base
                result.intents += 1
                if step.intent is not None and step.intent not in keys:
                    result.misses.append(Miss(i, "intent", step.intent, str(got), step.text))
            entities = [{"entity": n, "value": v} for n, v in step.entities]
            if intent is None:  # an end-to-end step (text only): the tracker gets what the NLU read
                intent = (parsed.get("intent") or {}).get("name")
                entities = entities or list(parsed.get("entities") or [])
            data = {"intent": {"name": intent, "confidence": 1.0}, "entities": entities, "text": step.text}
            tracker.add(user_event(step.text or f"/{intent}", data, None, "test"))
        elif isinstance(step, ActionStep):
            check(step.name, i)
            tracker.add(action_event(step.name))
        elif isinstance(step, SlotStep):
            tracker.add(slot_event(step.name, True if step.any_value else step.value))
        elif isinstance(step, LoopStep):
            tracker.add(loop_event(step.name))
    if tracker.latest_action != LISTEN and story.steps and isinstance(story.steps[-1], ActionStep):
        check(LISTEN, len(story.steps) + 1)
    return result


def junit_xml(results: list[StoryResult]) -> ET.ElementTree:
    """JUnit XML: one test case per story, its misses as the failure message."""
    suite = ET.Element(
        "testsuite",
        name="rasa test stories",
        tests=str(len(results)),
        failures=str(sum(not r.passed for r in results)),
        errors="0",
    )
    for r in results:
        case = ET.SubElement(suite, "testcase", classname=r.source, name=r.name)
        if r.misses:
            lines = [describe(m) for m in r.misses]
            ET.SubElement(case, "failure", message=lines[0]).text = "\n".join(lines)
    return ET.ElementTree(suite)


def describe(miss: Miss) -> str:
    said = f" ({miss.text!r})" if miss.text else ""
    return f"step {miss.step}: expected {miss.kind} {miss.expected}{said}, got {miss.predicted}"
