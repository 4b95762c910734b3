"""Which action comes next in a Rasa project (bot/rasa/policies.py): rules, memoised stories with
`max_history`, the active loop, and what the agent does with them. The project is the bike shop of
test_rasa_dialogue.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot import yaml12
from bot.rasa.agent import RasaAgent
from bot.rasa.domain import RasaDomain
from bot.rasa.policies import MemoizationPolicy, PolicyEnsemble, Prediction
from bot.rasa.stories import read_stories
from bot.rasa.tracker import LISTEN, Tracker, action_event, loop_event, slot_event
from tests.unit.test_rasa_dialogue import DOMAIN, BikeShop, FakeActionServer, listen, load_bike_shop, say


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> BikeShop:
    return load_bike_shop(tmp_path_factory.mktemp("bike-shop"))


def predict(shop: BikeShop, *events: dict[str, Any]) -> Prediction | None:
    return shop.ensemble.predict(Tracker("p", shop.domain, list(events)))


def memo(shop: BikeShop, tmp_path: Path, stories: str, max_history: int) -> MemoizationPolicy:
    (tmp_path / "stories.yml").write_text(stories, encoding="utf-8")
    return MemoizationPolicy(shop.domain, read_stories([tmp_path]).stories, max_history)


def states(shop: BikeShop, *events: dict[str, Any]) -> list:
    return Tracker("p", shop.domain, list(events)).past_states()


async def talk(agent: RasaAgent, tracker: Tracker, *messages: dict[str, Any]) -> list[list[str]]:
    """The actions each message led to."""
    return [(await agent.handle(tracker, m)).actions for m in messages]


def test_a_rule_beats_a_story(shop: BikeShop) -> None:
    events = [listen(), say("what's the weather", "out_of_scope")]
    assert predict(shop, *events) == Prediction("utter_out_of_scope", "RulePolicy")
    assert shop.ensemble.memo.predict(states(shop, *events)).action == "utter_default"  # the story's answer


def test_rules_end_by_listening(shop: BikeShop) -> None:
    events = [listen(), say("robot?", "bot_challenge"), action_event("utter_iamabot")]
    assert predict(shop, *events) == Prediction(LISTEN, "RulePolicy")


YES_STORIES = """stories:
- story: yes after a greeting
  steps:
  - intent: greet
  - action: utter_greet
  - intent: affirm
  - action: utter_prices
- story: yes after help
  steps:
  - intent: help
  - action: utter_help
  - intent: affirm
  - action: utter_member_perks
"""


@pytest.mark.parametrize(("max_history", "expected"), [(1, None), (2, None), (3, "utter_prices"),
                                                       (5, "utter_prices")])
def test_memoisation_sees_max_history_states(shop: BikeShop, tmp_path: Path, max_history: int,
                                             expected: str | None) -> None:
    policy = memo(shop, tmp_path, YES_STORIES, max_history)
    conversation = [listen(), say("hi", "greet"), action_event("utter_greet"), listen(), say("yes", "affirm")]
    prediction = policy.predict(states(shop, *conversation))
    assert (prediction.action if prediction else None) == expected
    if prediction:
        assert prediction.policy == "AugmentedMemoizationPolicy"


def test_augmented_memoisation_finds_a_story_mid_conversation(shop: BikeShop, tmp_path: Path) -> None:
    policy = memo(shop, tmp_path, YES_STORIES, 3)
    earlier = [listen(), say("robot?", "bot_challenge"), action_event("utter_iamabot")]
    later = [listen(), say("help", "help"), action_event("utter_help"), listen(), say("yes", "affirm")]
    assert policy.predict(states(shop, *earlier, *later)).action == "utter_member_perks"
    # the bike shop: a story's first turn after other turns that no story tells
    hours = say("when does Harbour open", "ask_station_hours", station="Harbour")
    events = [
        listen(), say("hi", "greet"), action_event("utter_welcome"), *earlier,
        listen(), hours, slot_event("station", "Harbour"),
    ]
    assert predict(shop, *events) == Prediction("utter_station_hours", "AugmentedMemoizationPolicy")
    events = [*earlier, listen(), say("when do you open", "ask_station_hours")]
    assert predict(shop, *events).action == "utter_which_station"


def test_slots_that_influence_the_conversation_choose_the_story(shop: BikeShop) -> None:
    asked = [listen(), say("any perks?", "ask_perks")]
    assert predict(shop, slot_event("member", True), *asked).action == "utter_member_perks"
    assert predict(shop, slot_event("member", False), *asked).action == "utter_join"
    assert predict(shop, *asked) is None  # no story for an unknown member: supportbot's fallback


def test_checkpoint_joined_story_is_memoised(shop: BikeShop) -> None:
    events = [listen(), say("hi", "greet"), action_event("utter_greet"), listen(), say("price?", "ask_price")]
    assert predict(shop, *events).action == "utter_prices"
    events[-1] = say("opening hours?", "ask_station_hours")
    assert predict(shop, *events).action == "utter_which_station"


CONFLICTING = """stories:
- story: price after a greeting
  steps:
  - intent: greet
  - action: utter_greet
  - intent: ask_price
  - action: utter_prices
- story: price straight away
  steps:
  - intent: ask_price
  - action: utter_member_perks
"""


def test_conflicting_windows_are_forgotten(shop: BikeShop, tmp_path: Path) -> None:
    policy = memo(shop, tmp_path, CONFLICTING, 5)
    price = say("price?", "ask_price")
    assert policy.predict(states(shop, listen(), say("help", "help"), action_event("utter_help"),
                                 listen(), price)) is None
    assert policy.predict(states(shop, listen(), say("hi", "greet"), action_event("utter_greet"),
                                 listen(), price)).action == "utter_prices"
    assert policy.predict(states(shop, listen(), price)).action == "utter_member_perks"


def test_default_restart_rule(shop: BikeShop) -> None:
    assert predict(shop, listen(), say("start over", "restart")) == Prediction("action_restart", "RulePolicy")
    doc = yaml12.load(DOMAIN)
    doc["intents"].remove("restart")
    no_restart = RasaDomain.from_dict(doc)
    ensemble = PolicyEnsemble(no_restart, shop.data)
    prediction = ensemble.predict(Tracker("p", no_restart, [listen(), say("start over", "restart")]))
    assert prediction is None


async def test_restart_clears_the_conversation(shop: BikeShop) -> None:
    agent = RasaAgent(shop.domain, shop.ensemble, FakeActionServer())
    tracker = Tracker("r", shop.domain)
    await talk(agent, tracker, say("hi", "greet"), say("rent", "book_bike"), say("Harbour", "inform",
                                                                                  station="Harbour"))
    assert tracker.slots["station"] == "Harbour" and tracker.active_loop == "booking_form"
    result = await agent.handle(tracker, say("start over", "restart"))
    assert result.actions == ["action_restart"]
    assert result.messages == [{"text": "Starting over.", "response": "utter_restart"}]
    assert tracker.slots == shop.domain.initial_slots() and tracker.active_loop is None
    assert [e["name"] for e in tracker.applied_events()] == [LISTEN]


def test_conversation_start_rules_only_at_the_start(shop: BikeShop) -> None:
    hi = say("hi", "greet")
    assert predict(shop, listen(), hi) == Prediction("utter_welcome", "RulePolicy")
    session = [action_event("action_session_start"), {"event": "session_started"}]
    assert predict(shop, *session, listen(), hi).action == "utter_welcome"
    later = [listen(), say("robot?", "bot_challenge"), action_event("utter_iamabot"), listen(), hi]
    assert predict(shop, *later) == Prediction("utter_greet", "AugmentedMemoizationPolicy")


async def test_a_rule_that_does_not_wait_lets_a_story_go_on(shop: BikeShop) -> None:
    agent = RasaAgent(shop.domain, shop.ensemble, FakeActionServer())
    tracker = Tracker("w", shop.domain)
    result = await agent.handle(tracker, say("thanks!", "thank"))
    assert result.actions == ["utter_you_are_welcome", "utter_anything_else"]
    policies = [e.get("policy") for e in tracker.events if e["event"] == "action"][-3:]
    assert policies == ["RulePolicy", "AugmentedMemoizationPolicy", "AugmentedMemoizationPolicy"]


def test_followup_and_active_loop_come_first(shop: BikeShop) -> None:
    greet = [listen(), say("hi", "greet")]
    assert predict(shop, *greet, {"event": "followup", "name": "utter_help"}) == Prediction(
        "utter_help", "FollowupAction"
    )
    in_form = [*greet, loop_event("booking_form")]
    assert predict(shop, *in_form).action == "booking_form"
    assert predict(shop, *in_form, action_event("booking_form")).action == LISTEN


async def test_rejected_form_digression_from_a_story_then_the_form(shop: BikeShop) -> None:
    agent = RasaAgent(shop.domain, shop.ensemble, FakeActionServer())
    tracker = Tracker("d", shop.domain)
    result = await agent.handle(tracker, say("rent a bike", "book_bike"))
    assert result.actions == ["booking_form"]
    result = await agent.handle(tracker, say("what does it cost?", "ask_price"))
    assert result.actions == ["utter_prices", "booking_form"]
    assert [m["text"] for m in result.messages] == ["A bike costs 12 euros a day.",
                                                   "Which station do you start from?"]
    turn = tracker.events_after_latest_user()
    assert turn[0] == {**turn[0], "event": "action_execution_rejected", "name": "booking_form"}
    assert [(e["name"], e["policy"]) for e in turn if e["event"] == "action"][:2] == [
        ("utter_prices", "AugmentedMemoizationPolicy"), ("booking_form", "AugmentedMemoizationPolicy"),
    ]
    assert not tracker.loop_rejected and tracker.slots["requested_slot"] == "station"
    assert await talk(agent, tracker, say("Harbour", "inform", station="Harbour")) == [["booking_form"]]
    assert tracker.slots["requested_slot"] == "bike_type"


async def test_rule_with_an_active_loop_condition_returns_to_the_form(tmp_path: Path) -> None:
    # Without a general `help` rule, the rule that names the form decides.
    shop = load_bike_shop(tmp_path)
    rules = [r for r in shop.data.rules if r.name != "help at any time"]
    shop.data.rules = rules
    agent = RasaAgent(shop.domain, PolicyEnsemble(shop.domain, shop.data), FakeActionServer())
    tracker = Tracker("h", shop.domain)
    assert await talk(agent, tracker, say("rent a bike", "book_bike"), say("help", "help")) == [
        ["booking_form"], ["utter_help", "booking_form"],
    ]
    assert tracker.slots["requested_slot"] == "station" and not tracker.loop_rejected


async def test_form_rule_beats_a_general_rule_for_the_same_intent(shop: BikeShop) -> None:
    agent = RasaAgent(shop.domain, shop.ensemble, FakeActionServer())
    tracker = Tracker("h", shop.domain)
    actions = await talk(agent, tracker, say("rent a bike", "book_bike"), say("help", "help"))
    assert actions[1] == ["utter_help", "booking_form"]


async def test_general_rule_inside_a_form_returns_to_the_form(shop: BikeShop) -> None:
    agent = RasaAgent(shop.domain, shop.ensemble, FakeActionServer())
    tracker = Tracker("b", shop.domain)
    actions = await talk(agent, tracker, say("rent a bike", "book_bike"),
                         say("are you a bot?", "bot_challenge"), say("Harbour", "inform", station="Harbour"))
    assert actions[1:] == [["utter_iamabot", "booking_form"], ["booking_form"]]
