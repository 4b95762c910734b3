"""`ingest`: help-desk exports → scrubbed training examples, FAQ candidates and a report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from bot.nlu.data import DataError, load_examples, read_rasa_nlu
from bot.nlu.ingest import ingest, read_conversations, write_outputs

DATA = Path(__file__).resolve().parents[1] / "data" / "helpdesk"
ALL = sorted(DATA.iterdir())
INTENTS = {"order_status", "return_policy", "refund_status", "shipping_cost", "gift_card",
           "account_login"}


@pytest.mark.parametrize(("name", "source", "first"), [
    ("zendesk_tickets.json", "zendesk", "Hi, my order KK-551234 still hasn't arrived. Maren"),
    ("intercom_conversations.json", "intercom",
     "Still waiting for my refund, card 4111 1111 1111 1111 was charged"),
    ("freshdesk_tickets.jsonl", "freshdesk", "How much is delivery to Germany? Call me on +49 151 23456789"),
    ("helpscout_conversations.json", "helpscout", "Do your gift cards expire?"),
    ("messages.csv", "csv", "I can't log in to my account"),
])
def test_each_export_shape_is_read(name: str, source: str, first: str) -> None:
    convs = list(read_conversations(DATA / name))
    assert convs[0].source == source
    assert convs[0].first_customer_text() == first
    assert all(t.author in ("customer", "agent") for c in convs for t in c.turns)


def test_internal_notes_and_html_are_dropped() -> None:
    zendesk = next(iter(read_conversations(DATA / "zendesk_tickets.json")))
    assert not any("internal" in t.text for t in zendesk.turns)
    intercom = next(iter(read_conversations(DATA / "intercom_conversations.json")))
    assert [t.author for t in intercom.turns] == ["customer", "agent", "customer"]
    returns = list(read_conversations(DATA / "zendesk_tickets.json"))[1]
    assert returns.first_customer_text().startswith("Can I return a pan I bought 3 weeks ago?")


def test_examples_faq_candidates_and_report(tmp_path: Path) -> None:
    result = ingest(ALL, INTENTS)
    by_text = {e.text: e.intent for e in result.examples}
    # the first customer message, with a known-intent tag chosen over other tags ("vip")
    assert by_text["Hi, my order [ORDER] still hasn't arrived. [NAME]"] == "order_status"
    assert by_text["How much is delivery to Germany? Call me on [PHONE]"] == "shipping_cost"
    assert by_text["Still waiting for my refund, card [CARD] was charged"] == "refund_status"
    assert "do you sell replacement lids for the big stockpot?" in result.unlabeled  # untagged
    assert "the handle of my mug came off" in result.unlabeled
    r = result.report
    assert r.conversations == 10 and r.examples == 8 and r.unlabeled == 2
    assert r.formats == {"zendesk": 3, "intercom": 2, "freshdesk": 2, "helpscout": 1, "csv": 2}
    assert r.redacted["EMAIL"] == 2 and r.redacted["CARD"] == 1 and r.redacted["PHONE"] == 1
    assert r.redacted["ORDER"] == 1 and r.redacted["NAME"] >= 3

    faq = {e["id"]: e for e in result.faq}  # intents with at least two conversations behind them
    assert set(faq) == {"refund_status", "account_login"}
    assert faq["refund_status"]["answer"].startswith("Refunds reach your card within 5 working days")
    assert "Priya" not in faq["refund_status"]["answer"]
    # the answer the customer thanked for, not the later one
    assert faq["account_login"]["answer"].startswith("Accounts lock for 30 minutes")

    paths = write_outputs(result, tmp_path)
    written = "".join(p.read_text() for p in paths.values())
    for secret in ("tom.r@example.org", "ana@example.com", "4111", "KK-551234", "23456789", "Priya",
                   "Maren", "Lena"):
        assert secret not in written
    # the outputs are usable as they are: nlu.yml and support logs both load as training data
    assert sorted(e.text for e in read_rasa_nlu(paths["nlu"])) == sorted(e.text for e in result.examples)
    assert {e.intent for e in load_examples(paths["logs"])} <= INTENTS
    faq_doc = yaml.safe_load(paths["faq"].read_text())
    assert {e["id"] for e in faq_doc["entries"]} == {"refund_status", "account_login"}
    assert json.loads(paths["report"].read_text())["examples"] == 8


def test_any_tag_counts_without_a_domain() -> None:
    result = ingest([DATA / "zendesk_tickets.json"], None)
    assert {e.intent for e in result.examples} == {"vip", "return_policy", "priority_low"}


def test_bad_input_says_where(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 1, "messages": []}\n{not json\n')
    with pytest.raises(DataError, match="bad.jsonl:2: invalid JSON"):
        list(read_conversations(bad))
    odd = tmp_path / "odd.json"
    odd.write_text('[{"id": 9, "foo": 1}]')
    with pytest.raises(DataError, match="unknown export shape"):
        list(read_conversations(odd))
    csv_file = tmp_path / "x.csv"
    csv_file.write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="conversation_id,author,text"):
        list(read_conversations(csv_file))
    text_file = tmp_path / "x.txt"
    text_file.write_text("hello")
    with pytest.raises(DataError, match="unsupported format"):
        list(read_conversations(text_file))
