from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.nlu.data import (
    DataError,
    Example,
    data_hash,
    deduplicate,
    load_examples,
    read_rasa_nlu,
    to_rasa_nlu,
)

ROOT = Path(__file__).resolve().parents[2]


def test_support_logs_give_labelled_customer_messages(tmp_path: Path) -> None:
    path = tmp_path / "logs.jsonl"
    records = [
        {"id": "1", "tags": ["order_status"], "messages": [
            {"author": "customer", "text": "where's my parcel"},
            {"author": "agent", "text": "let me check"},
            {"author": "customer", "text": "thanks!", "intent": "thank_you"},
            {"author": "customer", "text": "untagged follow-up"}]},
        {"id": "2", "tags": [], "messages": [{"author": "customer", "text": "hello", "intent": "greet"}]},
    ]
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n\n")
    assert load_examples(path) == [Example("where's my parcel", "order_status"),
                                   Example("thanks!", "thank_you"), Example("hello", "greet")]


def test_invalid_json_line_is_reported_with_its_line_number(tmp_path: Path) -> None:
    path = tmp_path / "logs.jsonl"
    path.write_text('{"messages": []}\n{not json\n')
    with pytest.raises(DataError, match=r"logs.jsonl:2"):
        load_examples(path)


def test_rasa_nlu_round_trip_and_entity_annotations(tmp_path: Path) -> None:
    examples = [Example("where is [KK-123456](order_number)", "order_status"), Example("hi", "greet")]
    path = tmp_path / "nlu.yml"
    path.write_text(to_rasa_nlu(examples))
    assert read_rasa_nlu(path) == [Example("where is KK-123456", "order_status"), Example("hi", "greet")]


def test_csv_needs_text_and_intent(tmp_path: Path) -> None:
    good, bad = tmp_path / "a.csv", tmp_path / "b.csv"
    good.write_text("text,intent\nhello there,greet\n")
    bad.write_text("message,label\nhello,greet\n")
    assert load_examples(good) == [Example("hello there", "greet")]
    with pytest.raises(DataError, match="text,intent"):
        load_examples(bad)


def test_deduplicate_keeps_the_majority_tag_and_hash_ignores_order() -> None:
    ex = [Example("Hi", "greet"), Example("hi ", "greet"), Example("HI", "goodbye"), Example("x", "y")]
    assert deduplicate(ex) == [Example("Hi", "greet"), Example("x", "y")]
    assert data_hash(ex) == data_hash(list(reversed(ex)))


def test_demo_company_data_is_large_and_varied_enough() -> None:
    examples = load_examples(ROOT / "training_data")
    per_intent: dict[str, int] = {}
    for ex in examples:
        per_intent[ex.intent] = per_intent.get(ex.intent, 0) + 1
    assert len(per_intent) >= 25 and len(examples) >= 600
    assert min(per_intent.values()) >= 15, per_intent
    assert len(deduplicate(examples)) >= 0.97 * len(examples)


def test_committed_nlu_yml_matches_the_support_logs() -> None:
    """training_data/nlu.yml is the Rasa export of the logs (`supportbot export-nlu`)."""
    logs = deduplicate(load_examples(ROOT / "training_data"))
    exported = read_rasa_nlu(ROOT / "training_data" / "nlu.yml")
    assert data_hash(exported) == data_hash(logs)


def test_every_domain_intent_is_trained_and_every_trained_intent_has_a_rule() -> None:
    from bot.dialogue.domain import Domain

    domain = Domain.load(ROOT / "training_data" / "domain.yml")
    labels = {ex.intent for ex in load_examples(ROOT / "training_data")}
    assert labels == set(domain.intents)
