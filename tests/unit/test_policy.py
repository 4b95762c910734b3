"""The dialogue policy on the demo domain, driven by hand-made parses (no model needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import Thresholds
from bot.dialogue.actions import CsvOrderBook, default_actions
from bot.dialogue.domain import Domain
from bot.dialogue.policy import Policy
from bot.types import Hit, IntentScore, Parse, Session

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def domain() -> Domain:
    return Domain.load(ROOT / "training_data" / "domain.yml")


@pytest.fixture
def policy(domain: Domain) -> Policy:
    orders = CsvOrderBook(ROOT / "training_data" / "demo_orders.csv")
    return Policy(domain, Thresholds(), default_actions(orders), seed=1)


def p(text: str, intent: str | None, conf: float = 0.95, oos: bool = False,
      ranking: list[tuple[str, float]] | None = None, **entities: str) -> Parse:
    ranking = ranking or [(intent or "out_of_scope", conf)]
    return Parse(text=text, intent=intent, confidence=conf, out_of_scope=oos, entities=entities,
                 ranking=[IntentScore(name=n, confidence=c) for n, c in ranking])


def hit(entry: str = "shipping-free-threshold", score: float = 0.8) -> Hit:
    return Hit(entry_id=entry, question="Is delivery free?", answer="Free over 50 EUR.",
               category="shipping", score=score)


def session() -> Session:
    return Session(conversation_id="c1")


def test_greeting_is_answered_from_the_domain(policy: Policy, domain: Domain) -> None:
    action = policy.decide(session(), p("hi", "greet"), [])
    assert action.kind == "respond"
    assert action.replies[0].text in {v.text for v in domain.responses["utter_greet"]}


def test_order_status_asks_for_the_order_number(policy: Policy) -> None:
    s = session()
    action = policy.decide(s, p("where is my order?", "order_status"), [hit(score=0.9)])
    assert action.kind == "fill_form"
    assert "order number" in action.replies[0].text
    assert s.active_form == "order_status" and s.requested_slot == "order_number"


def test_invalid_then_valid_order_number_looks_the_order_up(policy: Policy) -> None:
    s = session()
    policy.decide(s, p("where is my order", "order_status"), [])
    bad = policy.decide(s, p("12345", "inform", 0.3, oos=True), [])
    assert bad.name == "order_status:invalid" and not bad.understood
    assert "KK-" in bad.replies[0].text and s.active_form == "order_status"
    done = policy.decide(s, p("it's kk 204871", None, 0.2, oos=True), [])
    assert done.submitted == {"form": "order_status", "slots": {"order_number": "KK-204871"}}
    assert "ParcelPost" in done.replies[0].text
    assert s.active_form is None


def test_unknown_order_number_offers_a_person(policy: Policy) -> None:
    s = session()
    action = policy.decide(s, p("status of KK-999999", "order_status", order_number="KK-999999"), [])
    assert "couldn't find order KK-999999" in action.replies[0].text
    assert action.replies[0].buttons[0].payload == "/talk_to_human"


def test_order_number_in_the_first_message_skips_the_question(policy: Policy) -> None:
    s = session()
    action = policy.decide(s, p("where is KK-318802", "order_status", order_number="KK-318802"), [])
    assert action.name == "order_status:submitted"
    assert "packed" in action.replies[0].text.lower()


def test_stop_cancels_the_form(policy: Policy) -> None:
    s = session()
    policy.decide(s, p("change my address", "change_address"), [])
    action = policy.decide(s, p("never mind", "stop"), [])
    assert action.name == "form_cancelled" and s.active_form is None


def test_switching_topic_mid_form_answers_the_new_question(policy: Policy) -> None:
    s = session()
    policy.decide(s, p("change address", "change_address"), [])
    action = policy.decide(s, p("how much is delivery?", "shipping_cost"), [hit(score=0.7)])
    assert action.kind == "faq_answer" and s.active_form is None


def test_address_change_collects_every_slot_and_is_recorded(policy: Policy) -> None:
    s = session()
    policy.decide(s, p("I moved, change the address", "change_address"), [])
    policy.decide(s, p("KK-482913", None, 0.2, oos=True), [])
    street_bad = policy.decide(s, p("Millbrook Lane", None, 0.2, oos=True), [])
    assert street_bad.name == "change_address:invalid"
    policy.decide(s, p("14 Millbrook Lane", None, 0.2, oos=True), [])
    policy.decide(s, p("1043 ab", None, 0.2, oos=True), [])
    done = policy.decide(s, p("Harrowgate Vale", None, 0.2, oos=True), [])
    assert done.submitted == {"form": "change_address", "slots": {
        "order_number": "KK-482913", "street": "14 Millbrook Lane", "postcode": "1043 AB",
        "city": "Harrowgate Vale"}}
    assert "14 Millbrook Lane, 1043 AB Harrowgate Vale" in done.replies[0].text


def test_repeated_invalid_answers_end_the_form_with_a_handoff_offer(policy: Policy) -> None:
    s = session()
    policy.decide(s, p("cancel my order", "cancel_order"), [])
    for _ in range(2):
        assert policy.decide(s, p("dunno", None, 0.1, oos=True), []).name == "cancel_order:invalid"
    action = policy.decide(s, p("dunno", None, 0.1, oos=True), [])
    assert action.name == "cancel_order:failed" and s.active_form is None
    assert s.offer == "handoff"
    assert policy.decide(s, p("yes", "affirm"), []).kind == "handoff"


def test_low_confidence_asks_which_of_the_top_intents(policy: Policy) -> None:
    ranking = [("refund_status", 0.31), ("return_policy", 0.28), ("payment_problem", 0.2),
               ("greet", 0.1)]
    action = policy.decide(session(), p("money thing", "refund_status", 0.31, oos=True,
                                         ranking=ranking), [hit(score=0.4)])
    assert action.kind == "clarify" and not action.understood
    payloads = [b.payload for b in action.replies[0].buttons]
    assert payloads == ["/refund_status", "/return_policy", "/payment_problem"]


def test_repeated_failures_offer_a_handoff(policy: Policy) -> None:
    s = session()
    vague = p("hmm", "greet", 0.2, oos=True, ranking=[("greet", 0.2), ("refund_status", 0.19),
                                                      ("warranty", 0.18)])
    assert policy.decide(s, vague, []).kind == "clarify"  # near no FAQ entry: "say it in other words"
    offer = policy.decide(s, vague, [])
    assert offer.name == "offer_handoff"
    assert [b.payload for b in offer.replies[0].buttons] == ["/talk_to_human", "/deny"]
    no = policy.decide(s, p("no", "deny"), [])
    assert no.kind == "respond" and not s.handoff


def test_nonsense_is_asked_to_rephrase_and_a_vague_topic_gets_buttons(policy: Policy) -> None:
    ranking = [("out_of_scope", 0.45), ("wrong_item", 0.2), ("warranty", 0.18)]
    nonsense = p("blorp zizzle quantum teapot", "out_of_scope", 0.45, oos=True, ranking=ranking)
    action = policy.decide(session(), nonsense, [hit(score=0.43)])
    assert action.name == "default" and not action.replies[0].buttons
    vague = p("delivery", "shipping_cost", 0.6, oos=True,
              ranking=[("shipping_cost", 0.6), ("order_status", 0.3), ("warranty", 0.05)])
    action = policy.decide(session(), vague, [hit(score=0.62)])
    assert action.name == "clarify" and len(action.replies[0].buttons) >= 2


def test_strong_faq_hit_answers_even_when_the_intent_is_unsure(policy: Policy) -> None:
    action = policy.decide(session(), p("postage?", "shipping_cost", 0.2, oos=True), [hit(score=0.85)])
    assert action.kind == "faq_answer" and action.faq_hit.entry_id == "shipping-free-threshold"


def test_faq_intent_with_weak_hit_does_not_guess(policy: Policy) -> None:
    action = policy.decide(session(), p("delivery question", "shipping_cost"), [hit(score=0.2)])
    assert action.kind == "clarify"


def test_human_request_and_complaints_hand_off_with_a_reason(policy: Policy) -> None:
    s = session()
    action = policy.decide(s, p("I want a real person", "talk_to_human"), [])
    assert action.kind == "handoff" and s.handoff and s.handoff_reason == "customer_asked"
    s2 = session()
    policy.decide(s2, p("this is a disgrace", "complaint"), [])
    assert s2.handoff_reason == "complaint"


def test_out_of_scope_is_declined_politely(policy: Policy) -> None:
    action = policy.decide(session(), p("who won the match", "out_of_scope", 0.9, oos=True), [])
    assert action.name == "out_of_scope" and not action.understood


def test_faq_button_payload_answers_that_entry(policy: Policy) -> None:
    action = policy.decide(session(), p('/faq{"entry": "x"}', "faq", 1.0), [hit("x", 1.0)])
    assert action.kind == "faq_answer" and action.faq_hit.entry_id == "x"


def test_unregistered_form_action_is_refused(domain: Domain) -> None:
    with pytest.raises(ValueError, match="unregistered"):
        Policy(domain, Thresholds(), {}, seed=1)


def test_a_bare_topic_gets_topic_buttons_but_three_nonsense_words_do_not(policy: Policy) -> None:
    ranking = [("shipping_cost", 0.7), ("shipping_time", 0.2)]
    topic = policy.decide(session(), p("delivery", "shipping_cost", 0.7, ranking=ranking), [hit(score=0.6)])
    assert topic.kind == "clarify" and topic.name == "clarify"
    assert [b.payload for b in topic.replies[0].buttons][:2] == ["/shipping_cost", "/shipping_time"]
    answered = policy.decide(session(), p("is delivery free?", "shipping_cost", 0.7), [hit(score=0.6)])
    assert answered.kind == "faq_answer"  # a question is answered, not asked back
    nonsense = policy.decide(session(), p("flibber flabber gronk", "damaged_item", 0.63, oos=True,
                                          ranking=[("damaged_item", 0.63), ("wrong_item", 0.11)]),
                             [hit(score=0.24)])
    assert nonsense.kind == "clarify" and nonsense.replies[0].buttons == []


def test_a_bare_order_number_is_looked_up_whatever_the_model_reads_into_it(policy: Policy) -> None:
    s = session()
    action = policy.decide(s, p("KK-204871", "cancel_order", 0.9, order_number="KK-204871"), [])
    assert action.name == "order_status:submitted" and "PP88213402" in action.replies[0].text


def test_a_request_with_please_starts_the_form_whatever_faq_entry_it_resembles(domain: Domain) -> None:
    entries = {"orders-wrong-item": {"wrong_item": 0.9}, "orders-cancel": {"cancel_order": 0.9}}
    orders = CsvOrderBook(ROOT / "training_data" / "demo_orders.csv")
    p = Policy(domain, Thresholds(), default_actions(orders), seed=0, entry_intents=entries)
    wrong = Hit(entry_id="orders-wrong-item", question="I received the wrong item", answer="Sorry!",
                category="orders", score=0.8)
    request = p.decide(Session(conversation_id="c"),
                       Parse(text="pls cancel my order i ordered the wrong size", intent="cancel_order",
                             confidence=0.99), [wrong])
    assert request.kind == "fill_form"
    question = p.decide(Session(conversation_id="c"),
                        Parse(text="what if I ordered the wrong size, can I cancel?", intent="cancel_order",
                              confidence=0.99), [wrong])
    assert question.kind == "faq_answer"
