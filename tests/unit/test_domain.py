from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot.dialogue.domain import Domain, SlotSpec

ROOT = Path(__file__).resolve().parents[2]


def test_demo_domain_has_two_validated_forms_and_handoff_rules() -> None:
    d = Domain.load(ROOT / "training_data" / "domain.yml")
    assert len(d.forms) >= 2
    assert any(s.pattern for f in d.forms.values() for s in f.slots)
    assert {i for i, s in d.intents.items() if s.action == "handoff"} >= {"talk_to_human", "complaint"}


def test_undefined_references_are_reported(tmp_path: Path) -> None:
    doc = yaml.safe_load((ROOT / "training_data" / "domain.yml").read_text())
    doc["intents"]["greet"]["response"] = "utter_missing"
    del doc["responses"]["utter_clarify"]
    with pytest.raises(ValueError) as err:
        Domain(**doc)
    assert "utter_missing" in str(err.value) and "utter_clarify" in str(err.value)


@pytest.mark.parametrize(("text", "value"), [
    ("my order is kk123456", "KK-123456"), ("KK-654321.", "KK-654321"), ("KK 111222 thanks", "KK-111222"),
    ("KK-12345", None), ("123456", None), ("XKK-1234567", None),
])
def test_order_number_slot(text: str, value: str | None) -> None:
    slot = SlotSpec(name="order_number", ask="a", invalid="b", pattern=r"(?i)\bKK[- ]?\d{6}\b",
                    template="KK-{digits}")
    assert slot.extract(text) == value


def test_free_text_slot_validation() -> None:
    street = SlotSpec(name="street", ask="a", invalid="b", min_length=5, must_contain=r"\d")
    assert street.extract("  14 Millbrook Lane. ") == "14 Millbrook Lane"
    assert street.extract("Lane") is None and street.extract("Millbrook Lane") is None


def test_render_fills_known_placeholders_and_keeps_unknown_ones() -> None:
    d = Domain.load(ROOT / "training_data" / "domain.yml")
    reply = d.render("utter_order_not_found", {"order_number": "KK-000001"})
    assert "KK-000001" in reply.text
    d.responses["utter_default"][0].text = "Hi {name}, {order_number}"
    assert d.render("utter_default", {"order_number": "X"}).text == "Hi {name}, X"
