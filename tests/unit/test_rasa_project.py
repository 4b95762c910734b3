"""A Rasa project's nlu.yml and domain.yml work as they are (shapes from Rasa 3's docs)."""

from __future__ import annotations

from pathlib import Path

from bot.config import TrainSettings
from bot.dialogue.domain import Domain
from bot.nlu.data import load_examples
from bot.nlu.model import IntentModel
from bot.nlu.train import train

NLU = """version: "3.1"
nlu:
- intent: greet
  examples: |
    - hey
    - hello
    - hi
    - hello there
    - good morning
    - good evening
    - hey there
- intent: goodbye
  examples: |
    - bye
    - goodbye
    - see you around
    - see you later
    - cu
    - talk to you later
- intent: check_balance
  examples: |
    - what is my [savings](account) balance
    - how much money is in my account
    - show my balance
    - what's left on my [checking](account) account
    - balance please
    - how much do I have
"""

DOMAIN = """version: "3.1"
intents:
  - greet
  - goodbye
  - check_balance:
      use_entities: []
  - human_handoff
entities:
  - account
responses:
  utter_greet:
  - text: "Hey! How are you?"
    buttons:
    - title: "great"
      payload: "/mood_great"
  utter_goodbye:
  - text: "Bye"
  utter_cheer_up:
  - image: "https://example.com/x.png"
session_config:
  session_expiration_time: 60
  carry_over_slots_to_new_session: true
"""


def test_rasa_nlu_and_domain_as_they_are(tmp_path: Path) -> None:
    (tmp_path / "nlu.yml").write_text(NLU)
    (tmp_path / "domain.yml").write_text(DOMAIN)
    examples = load_examples(tmp_path / "nlu.yml")
    assert ("what is my savings balance", "check_balance") in [(e.text, e.intent) for e in examples]
    domain = Domain.load(tmp_path / "domain.yml")
    assert domain.intents["greet"].action == "respond"
    assert domain.render("utter_greet").buttons[0].payload == "/mood_great"
    assert domain.intents["check_balance"].action == "faq"
    assert domain.intents["human_handoff"].action == "handoff"
    assert "utter_cheer_up" not in domain.responses  # image-only: nothing a text channel can say
    assert "utter_clarify" in domain.responses  # from supportbot's defaults
    manifest = train(examples, TrainSettings(mode="frozen", val_fraction=0.0), tmp_path / "model")
    assert set(manifest.labels) == {"greet", "goodbye", "check_balance"}
    assert IntentModel.load(tmp_path / "model").parse("hello there!").intent == "greet"
