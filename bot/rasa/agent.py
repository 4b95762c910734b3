"""One user message through a Rasa project's dialogue: the tracker gets the message and the slots
it fills, then actions are predicted and run until the bot listens again (Rasa's processor loop).

Responses come from the project's domain, forms run in `FormLoop`, custom actions on the project's
own action server; a down or slow action server gets the customer a polite reply and a hand-off
offer, never an error.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from bot.rasa.action_server import ActionRejected, ActionServer, ActionServerError
from bot.rasa.domain import RasaDomain
from bot.rasa.forms import FormLoop, Outcome
from bot.rasa.policies import PolicyEnsemble
from bot.rasa.slots import extract_slots
from bot.rasa.tracker import KNOWN_EVENTS, LISTEN, Tracker, action_event, bot_event, loop_event, slot_event

log = logging.getLogger(__name__)
RASA_VERSION = "3.6.21"  # what the action server is told it talks to
MAX_PREDICTIONS = 10  # Rasa's max_number_of_predictions
NLU_FALLBACK = "nlu_fallback"
# supportbot's fallback for a message no rule or story covers: the bot messages it answers with.
Fallback = Callable[[], Awaitable[list[dict[str, Any]]]]


@dataclass
class TurnResult:
    messages: list[dict[str, Any]] = field(default_factory=list)  # Rasa bot messages, in order
    actions: list[str] = field(default_factory=list)  # what ran, action_listen excluded
    fell_back: bool = False  # no rule or story applied: supportbot's fallback answered
    failed: bool = False  # a custom action could not run


class RasaAgent:
    def __init__(
        self,
        domain: RasaDomain,
        policies: PolicyEnsemble,
        actions: ActionServer | None = None,
        nlu_fallback_threshold: float | None = None,
        core_fallback_action: str = "action_default_fallback",
        failure_message: dict[str, Any] | None = None,
    ) -> None:
        self.domain = domain
        self.policies = policies
        self.actions = actions
        self.nlu_fallback_threshold = nlu_fallback_threshold
        self.core_fallback_action = core_fallback_action
        self.failure_message = failure_message or {"text": "Sorry, something went wrong on our side."}
        self.forms = FormLoop(domain, self._run_named)

    def knows(self, intent: str | None) -> bool:
        base = (intent or "").split("/", 1)[0]
        return bool(base) and (base in self.domain.intents or base == NLU_FALLBACK)

    def apply_nlu_fallback(self, parse_data: dict[str, Any]) -> dict[str, Any]:
        """Rasa's FallbackClassifier: an intent under the threshold becomes `nlu_fallback`. A
        retrieval intent (`chitchat/ask_name`) is reported as its base intent with the chosen
        response under `response_selector`, as Rasa's ResponseSelector reports it."""
        parse_data = _retrieval(parse_data)
        intent = parse_data.get("intent") or {}
        threshold = self.nlu_fallback_threshold
        if threshold is None or float(intent.get("confidence") or 0) >= threshold or not intent.get("name"):
            return parse_data
        fallback = {"name": NLU_FALLBACK, "confidence": threshold}
        ranking = [fallback, *(parse_data.get("intent_ranking") or [])]
        return {**parse_data, "intent": fallback, "intent_ranking": ranking}

    async def start_session(
        self, tracker: Tracker, metadata: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """`action_session_start`: a new session, with the slots carried over when the domain says so."""
        carried = (
            {k: v for k, v in tracker.slots.items() if v is not None and k != "requested_slot"}
            if self.domain.carry_over_slots
            else {}
        )
        events: list[dict[str, Any]] = [
            action_event("action_session_start"),
            {"event": "session_started", "timestamp": time.time()},
        ]
        events += [slot_event(k, v) for k, v in carried.items()]
        if self.domain.is_custom("action_session_start"):
            tracker.add(*events)
            events = []
            events += (await self._run_named("action_session_start", tracker)).events
        events.append(action_event(LISTEN))
        tracker.add(*events)
        return events

    def session_expired(self, tracker: Tracker) -> bool:
        minutes = self.domain.session_expiration_minutes
        if not tracker.events:
            return True
        if minutes <= 0:
            return False
        last = max((float(e.get("timestamp") or 0) for e in tracker.events), default=0.0)
        return time.time() - last > minutes * 60

    async def handle(
        self, tracker: Tracker, user: dict[str, Any], fallback: Fallback | None = None
    ) -> TurnResult:
        """The turn after `user` (a Rasa `user` event, parse data included) is logged."""
        if self.session_expired(tracker):
            await self.start_session(tracker)
        tracker.add(user)
        tracker.add(*extract_slots(tracker))
        return await self.predict_and_run(tracker, fallback)

    async def predict_and_run(self, tracker: Tracker, fallback: Fallback | None = None) -> TurnResult:
        result = TurnResult()
        start = len(tracker.events)
        rejected: set[str] = set()
        for step in range(MAX_PREDICTIONS):
            prediction = self.policies.predict(tracker)
            if prediction is not None and prediction.action in rejected:
                prediction = None  # rejected once this turn: the other policies had their chance
            if prediction is None:
                if step == 0 or tracker.latest_action == LISTEN:
                    await self._fall_back(tracker, fallback, result)
                tracker.add(action_event(LISTEN, "fallback"))
                break
            if prediction.action == LISTEN:
                tracker.add(action_event(LISTEN, prediction.policy))
                break
            outcome = await self._run_named(prediction.action, tracker, result)
            if outcome.rejected:
                rejected.add(prediction.action)
                tracker.add(
                    {
                        "event": "action_execution_rejected",
                        "timestamp": time.time(),
                        "name": prediction.action,
                        "policy": prediction.policy,
                    }
                )
                continue
            tracker.add(action_event(prediction.action, prediction.policy), *outcome.events)
            result.actions.append(prediction.action)
            rejected.clear()  # after another action the form may run again (it asks its slot anew)
        else:
            tracker.add(action_event(LISTEN, "max_predictions"))
        result.messages = _messages(tracker.events[start:])
        return result

    async def _fall_back(self, tracker: Tracker, fallback: Fallback | None, result: TurnResult) -> None:
        """No rule or story applies: supportbot answers (FAQ, generation, hand-off), or the
        project's core fallback action. The user's message is reverted afterwards, as Rasa's
        `action_default_fallback` does, so the stories' context stays as it was."""
        result.fell_back = True
        if fallback is not None:
            messages = await fallback()
            tracker.add(
                action_event(self.core_fallback_action, "supportbot"),
                *[bot_event(m) for m in messages],
                {"event": "rewind", "timestamp": time.time()},
            )
            result.actions.append(self.core_fallback_action)
            return
        outcome = await self._run_named(self.core_fallback_action, tracker, result)
        tracker.add(action_event(self.core_fallback_action, "fallback"), *outcome.events)
        result.actions.append(self.core_fallback_action)

    async def _run_named(self, name: str, tracker: Tracker, result: TurnResult | None = None) -> Outcome:
        """Run an action by name: default actions here, responses from the domain, forms in the
        form loop, everything else on the action server."""
        if name in self.domain.forms:
            return await self.forms.run(name, tracker)
        default = self._default_action(name, tracker)
        if default is not None:
            return default
        if name in self.domain.responses and not self.domain.is_custom(name):
            message = self.domain.render(name, tracker.slots, tracker.latest_input_channel)
            return Outcome([bot_event(message)] if message else [])
        chosen = _selected_response(name, tracker.latest_message)
        if chosen is not None:  # `utter_chitchat`: the response the retrieval intent selected
            message = self.domain.render(chosen, tracker.slots, tracker.latest_input_channel)
            return Outcome([bot_event(message)] if message else [])
        return await self._custom(name, tracker, result)

    def _default_action(self, name: str, tracker: Tracker) -> Outcome | None:
        def utter(response: str) -> list[dict[str, Any]]:
            message = self.domain.render(response, tracker.slots, tracker.latest_input_channel)
            return [bot_event(message)] if message else []

        now = time.time()
        if name == "action_restart":
            return Outcome([*utter("utter_restart"), {"event": "restart", "timestamp": now}])
        if name in ("action_default_fallback", "action_two_stage_fallback", "action_default_ask_rephrase"):
            return Outcome([*utter("utter_default"), {"event": "rewind", "timestamp": now}])
        if name == "action_deactivate_loop":
            return Outcome([loop_event(None), slot_event("requested_slot", None)])
        if name == "action_back":
            return Outcome(
                [
                    *utter("utter_back"),
                    {"event": "rewind", "timestamp": now},
                    {"event": "rewind", "timestamp": now},
                ]
            )
        if name == "action_extract_slots":
            return Outcome(extract_slots(tracker))
        if name in (
            "action_revert_fallback_events",
            "action_unlikely_intent",
            "action_default_ask_affirmation",
        ):
            return Outcome([])
        if name == "action_session_start" and not self.domain.is_custom(name):
            return Outcome([{"event": "session_started", "timestamp": now}])
        return None

    async def _custom(self, name: str, tracker: Tracker, result: TurnResult | None) -> Outcome:
        if self.actions is None:
            log.warning("action %s needs an action server and the project has no action_endpoint", name)
            return self._failed(result)
        request = {
            "next_action": name,
            "sender_id": tracker.sender_id,
            "tracker": tracker.as_dict(),
            "domain": self.domain.raw,
            "version": RASA_VERSION,
        }
        try:
            answer = await self.actions.run(request)
        except ActionRejected:
            return Outcome(rejected=True)
        except ActionServerError as exc:
            log.warning("custom action %s failed: %s", name, exc)
            return self._failed(result)
        events = [bot_event(m) for m in self._responses(answer.responses, tracker)]
        for e in answer.events:
            kind = e.get("event")
            if kind == "action_execution_rejected" and e.get("name") in (name, None):
                return Outcome(rejected=True)
            if kind not in KNOWN_EVENTS:
                log.warning("action %s returned an event supportbot does not apply: %r", name, kind)
                continue
            events.append({**e, "timestamp": time.time()})
        return Outcome(events)

    def _failed(self, result: TurnResult | None) -> Outcome:
        if result is not None:
            result.failed = True
        return Outcome([bot_event({**self.failure_message, "response": "utter_action_failed"})])

    def _responses(self, responses: list[dict[str, Any]], tracker: Tracker) -> list[dict[str, Any]]:
        """The action server's messages as Rasa renders them: a named response from the domain
        (the other keys fill its placeholders), buttons added, non-empty fields laid over it."""
        out = []
        for raw in responses:
            response = dict(raw)
            name = response.pop("response", None) or response.pop("template", None)
            draft: dict[str, Any] = {}
            if name:
                rendered = self.domain.render(
                    str(name), tracker.slots, tracker.latest_input_channel, response
                )
                if rendered is None:
                    continue
                draft = rendered
            buttons = response.pop("buttons", None) or []
            if buttons:
                draft["buttons"] = [*(draft.get("buttons") or []), *buttons]
            if response.get("json_message"):
                response["custom"] = response.pop("json_message")
            draft.update(
                {
                    k: v
                    for k, v in response.items()
                    if v and k in ("text", "image", "custom", "attachment", "elements", "quick_replies")
                }
            )
            if draft:
                out.append(draft)
        return out


def _messages(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The bot messages among new events, in Rasa's output shape."""
    out = []
    for e in events:
        if e.get("event") != "bot":
            continue
        data = e.get("data") or {}
        message = {k: v for k, v in {"text": e.get("text"), **data}.items() if v}
        utter = (e.get("metadata") or {}).get("utter_action")
        if utter:
            message["response"] = utter
        out.append(message)
    return out


def _retrieval(parse_data: dict[str, Any]) -> dict[str, Any]:
    name = str((parse_data.get("intent") or {}).get("name") or "")
    if "/" not in name:
        return parse_data
    base = name.split("/", 1)[0]
    confidence = (parse_data.get("intent") or {}).get("confidence")
    selector = {
        base: {
            "response": {
                "intent_response_key": name,
                "utter_action": f"utter_{name}",
                "confidence": confidence,
            },
            "ranking": [],
        }
    }
    return {
        **parse_data,
        "intent": {"name": base, "confidence": confidence},
        "response_selector": {**(parse_data.get("response_selector") or {}), **selector},
    }


def _selected_response(action: str, message: dict[str, Any]) -> str | None:
    """The retrieval response for `utter_<base>` that the latest message's selector chose."""
    if not action.startswith("utter_"):
        return None
    selected = ((message.get("response_selector") or {}).get(action.removeprefix("utter_")) or {}).get(
        "response"
    ) or {}
    chosen = selected.get("utter_action")
    return str(chosen) if chosen else None
