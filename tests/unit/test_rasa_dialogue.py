"""A Rasa 3 project's dialogue on supportbot (bot/rasa): the domain, stories and rules, the tracker,
the supportbot fallback, `rasa test`-style evaluation and the stored-event compaction.

The project is a bike-rental shop of our own, written below as YAML and loaded from disk with the
real loaders; test_rasa_policies.py and test_rasa_forms.py reuse it (`load_bike_shop`).
"""

from __future__ import annotations

import copy
import json
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot import yaml12
from bot.rasa.action_server import ActionResult
from bot.rasa.agent import NLU_FALLBACK, RasaAgent
from bot.rasa.dialogue import KEEP_EVENTS, MAX_EVENTS, compact
from bot.rasa.domain import Condition, RasaDomain, RasaDomainError
from bot.rasa.evaluate import evaluate, junit_xml
from bot.rasa.policies import PolicyEnsemble
from bot.rasa.slots import extract_slots
from bot.rasa.stories import (
    ActionStep,
    LoopStep,
    SlotStep,
    Story,
    StoryData,
    StoryError,
    UserStep,
    read_stories,
)
from bot.rasa.tracker import (
    KNOWN_EVENTS,
    LISTEN,
    Tracker,
    action_event,
    bot_event,
    loop_event,
    slot_event,
    user_event,
)

DOMAIN = """version: "3.1"
intents:
  - greet
  - goodbye
  - thank
  - book_bike
  - inform
  - affirm
  - deny
  - help
  - bot_challenge
  - restart
  - out_of_scope
  - ask_price
  - ask_station_hours
  - ask_perks
  - check_availability
  - chitchat:
      use_entities: []
entities:
  - station
  - bike_type
  - days
slots:
  station:
    type: text
    mappings:
      - type: from_entity
        entity: station
        conditions:
          - active_loop: booking_form
            requested_slot: station
      - type: from_entity
        entity: station
        conditions:
          - active_loop: null
  bike_type:
    type: categorical
    values: [city, mountain, cargo]
    mappings:
      - type: from_entity
        entity: bike_type
  days:
    type: float
    min_value: 0
    max_value: 14
    mappings:
      - type: from_entity
        entity: days
      - type: from_text
        not_intent: [help, bot_challenge, ask_price, restart, out_of_scope]
        conditions:
          - active_loop: booking_form
            requested_slot: days
  confirm:
    type: bool
    influence_conversation: false
    mappings:
      - type: from_intent
        intent: affirm
        value: true
        conditions:
          - active_loop: booking_form
            requested_slot: confirm
      - type: from_intent
        intent: deny
        value: false
        conditions:
          - active_loop: booking_form
            requested_slot: confirm
  via_form:
    type: bool
    influence_conversation: false
    mappings:
      - type: from_trigger_intent
        intent: book_bike
        value: true
        conditions:
          - active_loop: booking_form
  feedback:
    type: text
    influence_conversation: false
    mappings:
      - type: from_text
        not_intent: [greet, book_bike, inform, affirm, deny, help, bot_challenge, restart]
        conditions:
          - active_loop: null
  member:
    type: bool
    mappings:
      - type: custom
responses:
  utter_welcome:
    - text: "Welcome to Spoke & Pedal, the bike rental."
  utter_greet:
    - text: "Good to see you again, club member!"
      condition:
        - type: slot
          name: member
          value: true
    - text: "Hi there!"
  utter_ask_station:
    - text: "Pick a station from the list below."
      channel: telegram
    - text: "Which station do you start from?"
  utter_ask_bike_type:
    - text: "City, mountain or cargo bike?"
  utter_ask_confirm:
    - text: "A {bike_type} bike from {station} for {days} days, {voucher}. Book it?"
      buttons:
        - title: Yes
          payload: /affirm
        - title: No
          payload: /deny
  utter_invalid_days:
    - text: "I cannot book '{days_text}' days: give a number up to 14."
  utter_booked:
    - text: "Done! Your {bike_type} bike waits at {station}."
  utter_prices:
    - text: "A bike costs 12 euros a day."
  utter_help:
    - text: "Tell me a station, a bike type and how many days."
  utter_iamabot:
    - text: "I am the shop's rental bot."
  utter_out_of_scope:
    - text: "A bike shop cannot help with that."
  utter_default:
    - text: "Sorry, I did not catch that."
  utter_please_rephrase:
    - text: "Could you put that another way?"
  utter_goodbye:
    - text: "Ride safe!"
  utter_you_are_welcome:
    - text: "Glad to help."
  utter_anything_else:
    - text: "Anything else for your ride?"
  utter_station_hours:
    - text: "{station} opens at 8 and closes at 20."
  utter_which_station:
    - text: "Which station do you mean?"
  utter_member_perks:
    - text: "Club members ride the first hour free."
  utter_join:
    - text: "Join the club and the first hour is free."
  utter_restart:
    - text: "Starting over."
forms:
  booking_form:
    ignored_intents: [chitchat]
    required_slots: [station, bike_type, days, confirm]
actions:
  - action_book_bike
  - action_check_availability
  - action_ask_days
  - validate_booking_form
session_config:
  session_expiration_time: 60
  carry_over_slots_to_new_session: true
"""

RULES = """version: "3.1"
rules:
- rule: welcome at the start
  conversation_start: true
  steps:
  - intent: greet
  - action: utter_welcome
- rule: help at any time
  steps:
  - intent: help
  - action: utter_help
- rule: are you a bot
  steps:
  - intent: bot_challenge
  - action: utter_iamabot
- rule: not a bike question
  steps:
  - intent: out_of_scope
  - action: utter_out_of_scope
- rule: unsure what was meant
  steps:
  - intent: nlu_fallback
  - action: utter_please_rephrase
- rule: thanks, and the story goes on
  wait_for_user_input: false
  steps:
  - intent: thank
  - action: utter_you_are_welcome
- rule: availability
  steps:
  - intent: check_availability
  - action: action_check_availability
- rule: start a booking
  steps:
  - intent: book_bike
  - action: booking_form
  - active_loop: booking_form
- rule: help while booking
  condition:
  - active_loop: booking_form
  steps:
  - intent: help
  - action: utter_help
  - action: booking_form
  - active_loop: booking_form
- rule: submit the booking
  condition:
  - active_loop: booking_form
  steps:
  - action: booking_form
  - active_loop: null
  - slot_was_set:
    - requested_slot: null
  - action: action_book_bike
"""

STORIES = """version: "3.1"
stories:
- story: prices while booking
  steps:
  - intent: book_bike
  - action: booking_form
  - active_loop: booking_form
  - intent: ask_price
  - action: utter_prices
  - action: booking_form
  - active_loop: booking_form
- story: thanks, then more
  steps:
  - intent: thank
  - action: utter_you_are_welcome
  - action: utter_anything_else
- story: leaving
  steps:
  - or:
    - intent: goodbye
    - intent: deny
    - intent: chitchat
  - action: utter_goodbye
- story: hours of a named station
  steps:
  - intent: ask_station_hours
    entities:
    - station: Harbour
  - slot_was_set:
    - station
  - action: utter_station_hours
- story: hours of no station in particular
  steps:
  - intent: ask_station_hours
  - action: utter_which_station
- story: perks for members
  steps:
  - intent: ask_perks
  - slot_was_set:
    - member: true
  - action: utter_member_perks
- story: perks for everyone else
  steps:
  - intent: ask_perks
  - slot_was_set:
    - member: false
  - action: utter_join
- story: out of scope, as a story says
  steps:
  - intent: out_of_scope
  - action: utter_default
- story: a greeting
  steps:
  - intent: greet
  - action: utter_greet
  - checkpoint: greeted
- story: prices after a greeting
  steps:
  - checkpoint: greeted
  - intent: ask_price
  - action: utter_prices
- story: hours after a greeting
  steps:
  - checkpoint: greeted
  - intent: ask_station_hours
  - action: utter_which_station
"""

TEST_STORIES = """version: "3.1"
stories:
- story: a booking with a price question
  steps:
  - user: |
      hello
    intent: greet
  - action: utter_welcome
  - user: |
      I'd like to rent a bike
    intent: book_bike
  - action: booking_form
  - active_loop: booking_form
  - slot_was_set:
    - requested_slot: station
  - user: |
      how much is it?
    intent: ask_price
  - action: utter_prices
  - action: booking_form
  - active_loop: booking_form
  - user: |
      from [Harbour](station)
    intent: inform
  - slot_was_set:
    - station: Harbour
  - action: booking_form
  - slot_was_set:
    - requested_slot: bike_type
- story: a bot question answered wrongly
  steps:
  - user: |
      are you a robot?
    intent: bot_challenge
  - action: utter_greet
"""


@dataclass
class BikeShop:
    root: Path
    domain: RasaDomain
    data: StoryData
    ensemble: PolicyEnsemble


def load_bike_shop(root: Path, max_history: int = 5) -> BikeShop:
    """Write the project to `root` and load it as supportbot does."""
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "tests").mkdir(exist_ok=True)
    (root / "domain.yml").write_text(DOMAIN, encoding="utf-8")
    (root / "data" / "rules.yml").write_text(RULES, encoding="utf-8")
    (root / "data" / "stories.yml").write_text(STORIES, encoding="utf-8")
    (root / "tests" / "test_stories.yml").write_text(TEST_STORIES, encoding="utf-8")
    domain = RasaDomain.load([root / "domain.yml"])
    data = read_stories([root / "data"])
    return BikeShop(root, domain, data, PolicyEnsemble(domain, data, max_history))


def say(text: str, intent: str | None, confidence: float = 1.0, channel: str = "web", **entities: Any):
    """A Rasa `user` event with parse data written by hand (no NLU model)."""
    ents = [{"entity": k, "value": v, "extractor": "test"} for k, v in entities.items()]
    parse = {
        "text": text,
        "intent": {"name": intent, "confidence": confidence},
        "entities": ents,
        "intent_ranking": [{"name": intent, "confidence": confidence}],
    }
    return user_event(text, parse, f"m-{random.random()}", channel)


def slots_to_validate(request: dict[str, Any]) -> dict[str, Any]:
    """What rasa-sdk's `tracker.slots_to_validate()` reads: the slot events that end the tracker."""
    slots: dict[str, Any] = {}
    for event in reversed(request["tracker"]["events"]):
        if event.get("event") != "slot":
            break
        slots.setdefault(event["name"], event["value"])
    return dict(reversed(list(slots.items())))


def sdk_message(response: str | None = None, text: str | None = None, **kwargs: Any) -> dict[str, Any]:
    """A message as rasa-sdk's dispatcher.utter_message sends it."""
    return {"text": text, "buttons": [], "elements": [], "custom": {}, "template": response,
            "response": response, "image": None, "attachment": None, **kwargs}


def _validate_booking(request: dict[str, Any]) -> ActionResult:
    events, responses = [], []
    for name, value in slots_to_validate(request).items():
        if name == "days" and value is not None:
            try:
                float(value)
            except (TypeError, ValueError):
                events.append({"event": "slot", "name": "days", "value": None})
                responses.append(sdk_message("utter_invalid_days", days_text=value))
                continue
        events.append({"event": "slot", "name": name, "value": value})
    return ActionResult(events=events, responses=responses)


DEFAULT_HANDLERS = {
    "validate_booking_form": _validate_booking,
    "action_ask_days": lambda request: ActionResult(
        responses=[sdk_message(text="How many days will you ride?")]
    ),
    "action_book_bike": lambda request: ActionResult(responses=[sdk_message("utter_booked")]),
    "action_check_availability": lambda request: ActionResult(
        responses=[sdk_message(text="3 bikes are free.")]
    ),
}


class FakeActionServer:
    """Stands in for a project's rasa-sdk server: answers by action name and keeps every request."""

    def __init__(self, **handlers: Any) -> None:
        self.handlers = {**DEFAULT_HANDLERS, **handlers}
        self.requests: list[dict[str, Any]] = []

    async def run(self, request: dict[str, Any]) -> ActionResult:
        self.requests.append(copy.deepcopy(request))
        return self.handlers[request["next_action"]](request)

    @property
    def called(self) -> list[str]:
        return [r["next_action"] for r in self.requests]


def listen() -> dict[str, Any]:
    return action_event(LISTEN)


def names(events: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    return [(e["event"], e.get("name") or e.get("text")) for e in events]


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> BikeShop:
    return load_bike_shop(tmp_path_factory.mktemp("bike-shop"))


# -- domain -----------------------------------------------------------------------------------------


def test_domain_slots_mappings_forms_and_session(shop: BikeShop) -> None:
    d = shop.domain
    assert {n: s.type for n, s in d.slots.items()} == {
        "station": "text", "bike_type": "categorical", "days": "float", "confirm": "bool",
        "via_form": "bool", "feedback": "text", "member": "bool", "requested_slot": "any",
    }
    assert d.slots["bike_type"].values == ("city", "mountain", "cargo")
    assert (d.slots["days"].min_value, d.slots["days"].max_value) == (0.0, 14.0)
    assert not d.slots["confirm"].influence_conversation and d.slots["member"].influence_conversation
    assert not d.slots["requested_slot"].influence_conversation
    in_form, outside = d.slots["station"].mappings
    assert in_form.conditions == (Condition("booking_form", "station"),)
    assert in_form.conditions_hold("booking_form", "station")
    assert not in_form.conditions_hold("booking_form", "days")
    assert not in_form.conditions_hold(None, None)
    assert outside.conditions == (Condition(None, None, loop_given=True),)  # `active_loop: null`
    assert outside.conditions_hold(None, "station") and not outside.conditions_hold("booking_form", None)
    days_text = d.slots["days"].mappings[1]
    assert days_text.intent_allows("inform") and not days_text.intent_allows("help")
    assert d.slots["via_form"].mappings[0].type == "from_trigger_intent"
    assert d.forms["booking_form"].required_slots == ("station", "bike_type", "days", "confirm")
    assert d.forms["booking_form"].ignored_intents == ("chitchat",)
    assert not d.intents["chitchat"].uses("station") and d.intents["inform"].uses("station")
    assert (d.session_expiration_minutes, d.carry_over_slots) == (60.0, True)
    assert d.initial_slots() == dict.fromkeys(d.slots)
    assert d.notices == []


def test_yes_and_no_button_titles_stay_text(shop: BikeShop) -> None:
    buttons = shop.domain.responses["utter_ask_confirm"][0]["buttons"]
    assert [b["title"] for b in buttons] == ["Yes", "No"]


def test_actions_and_is_custom(shop: BikeShop) -> None:
    d = shop.domain
    actions = d.action_names
    assert len(actions) == len(set(actions))
    assert {"action_listen", "action_restart", "utter_greet", "booking_form", "action_book_bike"} <= set(
        actions
    )
    assert d.is_custom("action_book_bike") and d.is_custom("validate_booking_form")
    assert not any(d.is_custom(n) for n in ("utter_greet", "booking_form", "action_listen", "action_restart"))


@pytest.mark.parametrize(
    ("slot", "given", "stored"),
    [
        ("confirm", "yes", True),
        ("confirm", "False", False),
        ("confirm", "maybe", "maybe"),
        ("confirm", True, True),
        ("days", "2.5", "2.5"),
        ("days", "three", "three"),
        ("days", 3, 3),
        ("station", "7", "7"),
        ("bike_type", "Mountain", "Mountain"),
        ("station", None, None),
    ],
)
def test_slot_coercion(shop: BikeShop, slot: str, given: Any, stored: Any) -> None:
    value = shop.domain.slots[slot].coerce(given)
    assert value == stored and type(value) is type(stored)


@pytest.mark.parametrize(
    ("slot", "value", "feature"),
    [
        ("confirm", None, None),
        ("confirm", 0, False),
        ("confirm", "x", True),
        ("bike_type", "Mountain", "mountain"),
        ("bike_type", "tandem", "__other__"),
        ("bike_type", None, None),
        ("days", 7, 0.5),
        ("days", 28, 1.0),
        ("days", -3, 0.0),
        ("days", "three", None),
        ("station", "Harbour", True),
        ("station", None, False),
        ("requested_slot", "days", True),
    ],
)
def test_slot_featurisation(shop: BikeShop, slot: str, value: Any, feature: Any) -> None:
    assert shop.domain.slots[slot].feature(value) == feature


def test_response_condition_on_a_slot(shop: BikeShop) -> None:
    d = shop.domain
    assert d.render("utter_greet", {"member": True})["text"] == "Good to see you again, club member!"
    assert d.render("utter_greet", {"member": "True"})["text"] == "Good to see you again, club member!"
    assert d.render("utter_greet", {"member": False})["text"] == "Hi there!"
    assert d.render("utter_greet", {})["text"] == "Hi there!"
    assert d.render("utter_greet", {})["response"] == "utter_greet"
    assert d.render("utter_nothing_like_this", {}) is None


def test_response_for_another_channel_is_left_out(shop: BikeShop) -> None:
    for seed in range(20):
        message = shop.domain.render("utter_ask_station", {}, channel="web", rng=random.Random(seed))
        assert message["text"] == "Which station do you start from?"
        assert shop.domain.render("utter_ask_station", {}, rng=random.Random(seed))["text"] == message["text"]


def test_channel_variant_is_preferred_on_its_channel(shop: BikeShop) -> None:
    texts = {
        shop.domain.render("utter_ask_station", {}, channel="telegram", rng=random.Random(seed))["text"]
        for seed in range(20)
    }
    assert texts == {"Pick a station from the list below."}


def test_placeholders_filled_and_unknown_ones_stay_visible(shop: BikeShop) -> None:
    d = shop.domain
    slots = {"bike_type": "city", "station": "Harbour", "days": 2}
    message = d.render("utter_ask_confirm", slots)
    assert message["text"] == "A city bike from Harbour for 2 days, {voucher}. Book it?"
    assert message["buttons"] == [{"title": "Yes", "payload": "/affirm"}, {"title": "No", "payload": "/deny"}]
    filled = d.render("utter_ask_confirm", slots, values={"voucher": "10% off"})
    assert filled["text"] == "A city bike from Harbour for 2 days, 10% off. Book it?"
    assert d.render("utter_station_hours", {"station": None})["text"].startswith("{station} opens")


def _domain_with(change) -> dict[str, Any]:
    doc = yaml12.load(DOMAIN)
    change(doc)
    return doc


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["slots"]["days"].update(type="number"), "type 'number'"),
        (lambda d: d["forms"]["booking_form"]["required_slots"].append("helmet_size"), "helmet_size"),
        (lambda d: d["slots"]["station"]["mappings"].append({"type": "from_llm"}), "from_llm"),
        (lambda d: d["slots"]["station"]["mappings"].append({"type": "from_entity"}), "needs `entity`"),
        (lambda d: d["responses"].update(utter_greet="Hi!"), "utter_greet"),
        (lambda d: d["intents"].append(["greet", "bye"]), "intent"),
    ],
)
def test_bad_domains_are_refused(change, message: str) -> None:
    with pytest.raises(RasaDomainError, match=message):
        RasaDomain.from_dict(_domain_with(change))


def test_bad_domain_files_are_refused_and_unknown_keys_noticed(tmp_path: Path) -> None:
    (tmp_path / "broken.yml").write_text("intents: [greet\n", encoding="utf-8")
    with pytest.raises(RasaDomainError, match="not valid YAML"):
        RasaDomain.load([tmp_path / "broken.yml"])
    (tmp_path / "list.yml").write_text("- greet\n", encoding="utf-8")
    with pytest.raises(RasaDomainError, match="mapping"):
        RasaDomain.load([tmp_path / "list.yml"])
    domain = RasaDomain.from_dict(_domain_with(lambda d: d.update(wheel_sizes=[26, 28])))
    assert any("wheel_sizes" in n for n in domain.notices)


# -- stories and rules ------------------------------------------------------------------------------


def test_or_steps_expand_into_one_story_each(shop: BikeShop) -> None:
    leaving = [s for s in shop.data.stories if s.name == "leaving"]
    assert len(leaving) == 3
    assert [s.steps for s in leaving] == [
        [UserStep(intent), ActionStep("utter_goodbye")] for intent in ("goodbye", "deny", "chitchat")
    ]


def test_checkpoints_join_stories(shop: BikeShop) -> None:
    story_names = [s.name for s in shop.data.stories]
    assert "a greeting > prices after a greeting" in story_names
    assert "a greeting > hours after a greeting" in story_names
    assert not {"a greeting", "prices after a greeting", "hours after a greeting"} & set(story_names)
    joined = next(s for s in shop.data.stories if s.name == "a greeting > prices after a greeting")
    assert joined.steps == [
        UserStep("greet"), ActionStep("utter_greet"), UserStep("ask_price"), ActionStep("utter_prices"),
    ]
    assert len(shop.data.stories) == 12


def test_slot_was_set_as_dict_and_as_bare_name(shop: BikeShop) -> None:
    by_name = {s.name: s for s in shop.data.stories}
    named = by_name["hours of a named station"].steps
    assert named[0] == UserStep("ask_station_hours", (("station", "Harbour"),))
    assert named[1] == SlotStep("station", None, any_value=True)
    assert by_name["perks for members"].steps[1] == SlotStep("member", True)
    assert by_name["perks for everyone else"].steps[1] == SlotStep("member", False)


def test_rules_keep_conditions_and_flags(shop: BikeShop) -> None:
    rules = {r.name: r for r in shop.data.rules}
    assert all(r.is_rule for r in rules.values())
    submit = rules["submit the booking"]
    assert submit.condition == [LoopStep("booking_form")]
    assert submit.steps == [
        ActionStep("booking_form"), LoopStep(None), SlotStep("requested_slot", None),
        ActionStep("action_book_bike"),
    ]
    assert rules["welcome at the start"].conversation_start
    assert not rules["help at any time"].conversation_start
    assert not rules["thanks, and the story goes on"].wait_for_user_input
    assert rules["help at any time"].wait_for_user_input


def test_annotated_user_text_gives_entities(tmp_path: Path) -> None:
    (tmp_path / "t.yml").write_text(
        """stories:
- story: annotated
  steps:
  - user: |
      rent a [mountain](bike_type) bike at [the harbour]{"entity": "station", "value": "Harbour"} \
for [three](days:3)
    intent: book_bike
  - action: booking_form
  - user: |
      actually from [Pier](station)
    intent: inform
    entities:
    - station: Old Pier
  - bot: Sure.
""",
        encoding="utf-8",
    )
    data = read_stories([tmp_path])
    first, _, second = data.stories[0].steps
    assert first == UserStep(
        "book_bike",
        (("bike_type", "mountain"), ("station", "Harbour"), ("days", "3")),
        "rent a mountain bike at the harbour for three",
    )
    assert second.entities == (("station", "Old Pier"),)  # the written entity wins over the annotation
    assert second.text == "actually from Pier"
    assert any("bot:" in n for n in data.notices)


@pytest.mark.parametrize(
    "steps",
    ["  - intent: greet\n  - wave: hand\n", "  - utter_greet\n"],
)
def test_bad_story_steps_raise(tmp_path: Path, steps: str) -> None:
    (tmp_path / "bad.yml").write_text(f"stories:\n- story: broken one\n  steps:\n{steps}", encoding="utf-8")
    with pytest.raises(StoryError, match="broken one"):
        read_stories([tmp_path])


def test_invalid_story_yaml_raises(tmp_path: Path) -> None:
    (tmp_path / "bad.yml").write_text("stories: [\n", encoding="utf-8")
    with pytest.raises(StoryError, match="not valid YAML"):
        read_stories([tmp_path / "bad.yml"])


# -- tracker ----------------------------------------------------------------------------------------


def test_rewind_takes_the_user_message_out(shop: BikeShop) -> None:
    events = [
        listen(), say("hi", "greet"), action_event("utter_welcome"),
        listen(), say("blah", "inform"), slot_event("station", "Nowhere"),
        action_event("action_default_fallback"), bot_event({"text": "Sorry."}), {"event": "rewind"},
    ]
    tracker = Tracker("t", shop.domain, events)
    assert names(tracker.applied_events()) == [
        ("action", LISTEN), ("user", "hi"), ("action", "utter_welcome"),
    ]
    assert tracker.slots["station"] is None
    assert tracker.latest_action == "utter_welcome"
    assert tracker.latest_message["text"] == "hi"


def test_undo_reverts_the_last_action(shop: BikeShop) -> None:
    tracker = Tracker("t", shop.domain, [listen(), say("hi", "greet"), action_event("utter_welcome")])
    tracker.add(slot_event("member", True))
    assert tracker.slots["member"] is True
    tracker.add({"event": "undo"})
    assert names(tracker.applied_events()) == [("action", LISTEN), ("user", "hi")]
    assert tracker.slots["member"] is None and tracker.latest_action == LISTEN


def test_restart_and_session_start_begin_afresh(shop: BikeShop) -> None:
    tracker = Tracker("t", shop.domain, [listen(), say("hi", "greet"), slot_event("station", "Harbour")])
    tracker.add(action_event("action_restart"), {"event": "restart"})
    assert tracker.applied_events() == []
    assert tracker.slots == shop.domain.initial_slots() and tracker.latest_message == {}
    tracker.add(listen(), say("from the Pier", "inform", station="Pier"), slot_event("station", "Pier"))
    tracker.add(action_event("action_session_start"), {"event": "session_started"},
                slot_event("station", "Pier"), listen())
    assert names(tracker.applied_events()) == [("slot", "station"), ("action", LISTEN)]
    assert tracker.slots["station"] == "Pier" and tracker.latest_message == {}
    assert len(tracker.events) == 12  # nothing is deleted, only not applied


def test_loop_rejected_and_interrupted_flags(shop: BikeShop) -> None:
    tracker = Tracker("t", shop.domain, [
        listen(), say("rent", "book_bike"), action_event("booking_form"), loop_event("booking_form"),
        slot_event("requested_slot", "station"), listen(), say("price?", "ask_price"),
    ])
    assert tracker.active_loop == "booking_form"
    assert not tracker.loop_rejected and not tracker.loop_interrupted
    tracker.add({"event": "action_execution_rejected", "name": "action_check_availability"})
    assert not tracker.loop_rejected  # another action's rejection is not the form's
    tracker.add({"event": "action_execution_rejected", "name": "booking_form"})
    assert tracker.loop_rejected and tracker.as_dict()["active_loop"]["rejected"] is True
    tracker.add(action_event("utter_prices"))
    assert tracker.loop_rejected and tracker.loop_interrupted
    tracker.add(action_event("booking_form"))
    assert not tracker.loop_rejected and not tracker.loop_interrupted
    tracker.add(loop_event(None))
    assert tracker.active_loop is None and tracker.as_dict()["active_loop"] == {}


def test_as_dict_has_what_rasa_clients_read(shop: BikeShop) -> None:
    tracker = Tracker("rider-7", shop.domain, [
        action_event("action_session_start"), {"event": "session_started", "timestamp": 1.0}, listen(),
        say("book from Harbour", "book_bike", channel="telegram", station="Harbour"),
        slot_event("station", "Harbour"), action_event("booking_form"), loop_event("booking_form"),
        bot_event({"text": "City, mountain or cargo bike?", "response": "utter_ask_bike_type"}),
        {"event": "followup", "name": "utter_help"}, {"event": "pause"},
    ])
    state = tracker.as_dict()
    assert {
        "sender_id", "slots", "latest_message", "events", "active_loop", "latest_action_name", "paused",
        "followup_action", "latest_event_time", "latest_input_channel", "latest_bot_utterance",
    } <= set(state)
    assert state["sender_id"] == "rider-7"
    assert state["slots"]["station"] == "Harbour" and "requested_slot" in state["slots"]
    assert state["latest_message"]["intent"]["name"] == "book_bike"
    assert state["latest_message"]["entities"][0]["value"] == "Harbour"
    assert state["latest_message"]["text"] == "book from Harbour"
    assert state["events"] == tracker.events
    assert state["active_loop"]["name"] == "booking_form" and state["active_loop"]["rejected"] is False
    assert state["latest_action_name"] == "booking_form"
    assert state["paused"] is True and state["followup_action"] == "utter_help"
    assert state["latest_input_channel"] == "telegram"
    assert state["latest_bot_utterance"] == "City, mountain or cargo bike?"
    json.dumps(state)
    empty = Tracker("nobody", shop.domain).as_dict()
    assert empty["latest_message"] == {"intent": {}, "entities": [], "text": None}
    assert empty["events"] == [] and empty["active_loop"] == {} and empty["latest_event_time"] is None
    tracker.add({"event": "resume"})
    assert tracker.as_dict()["paused"] is False


# -- slot extraction (action_extract_slots) ---------------------------------------------------------


def _in_form(shop: BikeShop, requested: str, *turn: dict[str, Any]) -> Tracker:
    return Tracker("t", shop.domain, [
        listen(), say("rent", "book_bike"), action_event("booking_form"), loop_event("booking_form"),
        slot_event("requested_slot", requested), listen(), *turn,
    ])


def _extracted(tracker: Tracker) -> dict[str, Any]:
    return {e["name"]: e["value"] for e in extract_slots(tracker)}


def test_extract_slots_respects_mapping_conditions(shop: BikeShop) -> None:
    asked = say("Harbour hours?", "ask_station_hours", station="Harbour")
    outside = Tracker("t", shop.domain, [listen(), asked])
    assert _extracted(outside) == {"station": "Harbour", "feedback": "Harbour hours?"}
    assert _extracted(_in_form(shop, "station", say("Pier", "inform", station="Pier"))) == {"station": "Pier"}
    # asked for days, the station entity fills nothing: the in-form mapping wants `requested_slot: station`
    assert _extracted(_in_form(shop, "days", say("Pier", "inform", station="Pier"))) == {"days": "Pier"}
    assert _extracted(_in_form(shop, "days", say("help me", "help"))) == {}  # `not_intent`
    assert _extracted(_in_form(shop, "confirm", say("yes", "affirm"))) == {"confirm": True}
    assert _extracted(_in_form(shop, "confirm", say("no", "deny"))) == {"confirm": False}
    assert _extracted(Tracker("t", shop.domain, [listen(), say("yes", "affirm")])) == {}
    # `ignored_intents`: nothing the form requires is filled from chitchat
    assert _extracted(_in_form(shop, "station", say("Pier is nice", "chitchat", station="Pier"))) == {}


def test_from_trigger_intent_only_with_the_loop_active(shop: BikeShop) -> None:
    outside = Tracker("t", shop.domain, [listen(), say("rent a city bike", "book_bike", bike_type="city")])
    assert _extracted(outside) == {"bike_type": "city"}
    outside.add(*extract_slots(outside), loop_event("booking_form"))
    assert _extracted(outside) == {"via_form": True}  # bike_type is unchanged and not asked for


def test_requested_slot_is_set_again_with_the_same_value(shop: BikeShop) -> None:
    tracker = _in_form(shop, "station", slot_event("station", "Pier"))
    tracker.add(say("Pier", "inform", station="Pier"))
    assert _extracted(tracker) == {"station": "Pier"}


# -- session start, supportbot's fallback and the NLU fallback ---------------------------------------


async def test_first_message_starts_a_session(shop: BikeShop) -> None:
    agent = RasaAgent(shop.domain, shop.ensemble, FakeActionServer())
    tracker = Tracker("new", shop.domain)
    result = await agent.handle(tracker, say("hello", "greet"))
    assert [e["event"] for e in tracker.events[:3]] == ["action", "session_started", "action"]
    assert tracker.events[0]["name"] == "action_session_start"
    assert result.actions == ["utter_welcome"]
    assert result.messages == [
        {"text": "Welcome to Spoke & Pedal, the bike rental.", "response": "utter_welcome"},
    ]


async def test_expired_session_carries_the_slots_over(shop: BikeShop) -> None:
    agent = RasaAgent(shop.domain, shop.ensemble, FakeActionServer())
    old = time.time() - 3 * 3600
    asked = say("Harbour?", "ask_station_hours", station="Harbour")
    events = [listen(), asked, slot_event("station", "Harbour")]
    for e in events:
        e["timestamp"] = old
    tracker = Tracker("back", shop.domain, events)
    assert agent.session_expired(tracker)
    await agent.handle(tracker, say("hello", "greet"))
    assert tracker.slots["station"] == "Harbour"
    assert sum(e["event"] == "session_started" for e in tracker.events) == 1
    assert not agent.session_expired(tracker)


async def test_uncovered_message_goes_to_supportbots_fallback(shop: BikeShop) -> None:
    agent = RasaAgent(shop.domain, shop.ensemble, FakeActionServer())
    tracker = Tracker("t", shop.domain)
    await agent.handle(tracker, say("hello", "greet"))
    before = tracker.applied_events()
    calls = []

    async def fallback() -> list[dict[str, Any]]:
        calls.append(1)
        return [{"text": "Our FAQ says: helmets are free."}]

    result = await agent.handle(tracker, say("helmet sizes", "inform"), fallback)
    assert calls == [1] and result.fell_back and not result.failed
    assert result.actions == ["action_default_fallback"]
    assert result.messages == [{"text": "Our FAQ says: helmets are free."}]
    new = tracker.events[len(tracker.events) - 4:]
    assert [(e["event"], e.get("name") or e.get("text")) for e in new] == [
        ("action", "action_default_fallback"), ("bot", "Our FAQ says: helmets are free."),
        ("rewind", None), ("action", LISTEN),
    ]
    assert new[0]["policy"] == "supportbot"
    applied = tracker.applied_events()
    assert not any(e["event"] == "user" and e["text"] == "helmet sizes" for e in applied)
    assert names(applied[:len(before)]) == names(before) and applied[-1]["name"] == LISTEN


async def test_without_supportbots_fallback_the_core_fallback_answers(shop: BikeShop) -> None:
    agent = RasaAgent(shop.domain, shop.ensemble, FakeActionServer())
    tracker = Tracker("t", shop.domain)
    result = await agent.handle(tracker, say("helmet sizes", "inform"))
    assert result.fell_back and result.actions == ["action_default_fallback"]
    assert result.messages == [{"text": "Sorry, I did not catch that.", "response": "utter_default"}]
    assert not any(e["event"] == "user" for e in tracker.applied_events())


def test_nlu_fallback_threshold(shop: BikeShop) -> None:
    agent = RasaAgent(shop.domain, shop.ensemble, nlu_fallback_threshold=0.6)
    unsure = say("wheels?", "ask_price", confidence=0.41)["parse_data"]
    mapped = agent.apply_nlu_fallback(unsure)
    assert mapped["intent"] == {"name": NLU_FALLBACK, "confidence": 0.6}
    assert mapped["intent_ranking"] == [{"name": NLU_FALLBACK, "confidence": 0.6},
                                        {"name": "ask_price", "confidence": 0.41}]
    assert unsure["intent"]["name"] == "ask_price"  # the input is left as it was
    sure = say("prices?", "ask_price", confidence=0.6)["parse_data"]
    assert agent.apply_nlu_fallback(sure) == sure
    assert agent.apply_nlu_fallback({"intent": {}, "entities": []}) == {"intent": {}, "entities": []}
    no_threshold = RasaAgent(shop.domain, shop.ensemble)
    assert no_threshold.apply_nlu_fallback(unsure) == unsure
    assert agent.knows(NLU_FALLBACK) and agent.knows("greet")
    assert not agent.knows("weather") and not agent.knows(None)


async def test_nlu_fallback_rule_answers_an_unsure_message(shop: BikeShop) -> None:
    agent = RasaAgent(shop.domain, shop.ensemble, FakeActionServer(), nlu_fallback_threshold=0.6)
    event = say("wheels?", "ask_price", confidence=0.2)
    event["parse_data"] = agent.apply_nlu_fallback(event["parse_data"])
    result = await agent.handle(Tracker("t", shop.domain), event)
    assert result.actions == ["utter_please_rephrase"] and not result.fell_back


# -- evaluation (rasa test) -------------------------------------------------------------------------


async def test_test_stories_evaluate_like_rasa_test(shop: BikeShop) -> None:
    tests = read_stories([shop.root / "tests"]).stories
    intents = {"hello": "greet", "I'd like to rent a bike": "book_bike", "how much is it?": "ask_price",
               "from Harbour": "inform", "are you a robot?": "bot_challenge"}

    async def parse(text: str) -> dict[str, Any]:
        return {"intent": {"name": intents[text], "confidence": 1.0}, "entities": []}

    good, wrong = await evaluate(tests, shop.domain, shop.ensemble, parse)
    assert good.name == "a booking with a price question"
    # `utter_prices` while the form is active: the form is predicted, rejected as in `rasa test`, and
    # the story's digression is predicted next; then the form again.
    assert good.passed, good.misses
    assert (good.actions, good.intents, good.fallbacks) == (8, 4, 0)
    assert not wrong.passed
    [miss] = wrong.misses
    assert (miss.step, miss.kind, miss.expected) == (2, "action", "utter_greet")
    assert miss.predicted == "utter_iamabot"
    xml = junit_xml([good, wrong]).getroot()
    assert (xml.get("tests"), xml.get("failures")) == ("2", "1")
    assert "expected action utter_greet" in xml.find("testcase/failure").get("message")


async def test_evaluation_reports_intent_misses_and_uncovered_turns(shop: BikeShop) -> None:
    tests = read_stories([shop.root / "tests"]).stories[1:]

    async def parse(text: str) -> dict[str, Any]:
        return {"intent": {"name": "greet", "confidence": 0.9}, "entities": []}

    [result] = await evaluate(tests, shop.domain, shop.ensemble, parse)
    assert [(m.kind, m.expected, m.predicted, m.text) for m in result.misses] == [
        ("intent", "bot_challenge", "greet", "are you a robot?"),
        ("action", "utter_greet", "utter_iamabot", ""),
    ]
    uncovered = Story("uncovered", [UserStep("inform"), ActionStep("utter_prices")], "inline")
    [result] = await evaluate([uncovered], shop.domain, shop.ensemble)
    assert [(m.expected, m.predicted) for m in result.misses] == [
        ("utter_prices", "(no prediction: supportbot's fallback)"),
    ]
    assert (result.actions, result.fallbacks, result.intents) == (2, 1, 0)


# -- stored events ----------------------------------------------------------------------------------


def test_compact_keeps_slots_and_the_active_loop(shop: BikeShop) -> None:
    events = [
        action_event("action_session_start"), {"event": "session_started"}, listen(),
        say("rent from Harbour", "book_bike", station="Harbour"), slot_event("station", "Harbour"),
        action_event("booking_form"), loop_event("booking_form"), slot_event("requested_slot", "bike_type"),
    ]
    short = Tracker("t", shop.domain, list(events))
    assert compact(short) == short.events
    for i in range(MAX_EVENTS // 3 + 5):
        events += [listen(), say(f"what? {i}", "help"), action_event("utter_help")]
    long = Tracker("t", shop.domain, events)
    stored = compact(long)
    assert len(stored) < KEEP_EVENTS + 10 < len(events)
    assert stored[0]["name"] == "action_session_start" and stored[1]["event"] == "session_started"
    first_kept = next(i for i, e in enumerate(stored) if e["event"] == "action" and e["name"] == LISTEN)
    assert stored[first_kept:] == events[len(events) - len(stored) + first_kept:]
    again = Tracker("t", shop.domain, stored)
    assert again.active_loop == "booking_form"
    assert {k: again.slots[k] for k in ("station", "requested_slot")} == {
        "station": "Harbour", "requested_slot": "bike_type",
    }
    assert again.latest_message["text"] == events[-2]["text"]


# -- replaying arbitrary event lists ----------------------------------------------------------------

_NAMES = st.sampled_from(["station", "bike_type", "days", "confirm", "member", "requested_slot", "nope",
                          "booking_form", "utter_help", LISTEN, "action_book_bike"])
_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-5, 50), st.floats(allow_nan=True),
                    st.text(max_size=8), st.lists(st.text(max_size=3), max_size=2))
_PARSE = st.fixed_dictionaries(
    {"intent": st.one_of(st.none(), st.fixed_dictionaries(
        {"name": st.one_of(st.none(), st.sampled_from(["greet", "book_bike", "chitchat", "weather"])),
         "confidence": st.floats(0, 1)})),
     "entities": st.lists(st.fixed_dictionaries({"entity": st.sampled_from(["station", "days", "x"]),
                                                 "value": _VALUES}), max_size=2)}
)
_EVENT = st.one_of(
    st.builds(lambda n, v: {"event": "slot", "name": n, "value": v}, _NAMES, _VALUES),
    st.builds(lambda n: {"event": "action", "name": n}, _NAMES),
    st.builds(lambda n: {"event": "active_loop", "name": n}, st.one_of(st.none(), _NAMES)),
    st.builds(lambda t, p: {"event": "user", "text": t, "parse_data": p}, st.one_of(st.none(), st.text()),
              st.one_of(st.none(), _PARSE)),
    st.builds(lambda k, n: {"event": k, "name": n},
              st.sampled_from(sorted(KNOWN_EVENTS | {"teleport", "bot"})), st.one_of(st.none(), _NAMES)),
    st.builds(lambda e: {"event": "entities", "entities": e}, st.lists(
        st.fixed_dictionaries({"entity": st.sampled_from(["station", "bike_type"]), "value": _VALUES}),
        max_size=2)),
    st.builds(lambda t: {"event": "bot", "text": t, "data": {}, "timestamp": 1.0}, st.text(max_size=5)),
)


@settings(max_examples=100, deadline=None)
@given(st.lists(_EVENT, max_size=30))
def test_any_plausible_event_list_replays(shop: BikeShop, events: list[dict[str, Any]]) -> None:
    tracker = Tracker("fuzz", shop.domain, events)
    state = tracker.as_dict()
    assert state["events"] == events
    assert len(tracker.past_states()) == 1 + sum(e["event"] == "action" for e in tracker.applied_events())
    tracker.snapshot().memo_key(frozenset(shop.domain.slots))
    shop.ensemble.predict(tracker)
