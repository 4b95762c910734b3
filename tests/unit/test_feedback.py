"""Answer confirmation, repeated questions, replies while waiting for a person, and the resolution
definition that reads them (hand-made parses, no model)."""

from __future__ import annotations

import pytest

from bot.dialogue.domain import Domain
from bot.dialogue.policy import Policy
from bot.resolution import TurnOutcome, report, resolved
from bot.types import Hit, IntentScore, Parse, Session
from tests.unit.demo_dialogue import demo_domain, demo_policy


@pytest.fixture(scope="module")
def domain() -> Domain:
    return demo_domain()


def policy(domain: Domain, confirm: bool = True) -> Policy:
    return demo_policy(domain, confirm_answers=confirm)


def p(text: str, intent: str | None, conf: float = 0.95) -> Parse:
    return Parse(text=text, intent=intent, confidence=conf, out_of_scope=intent is None,
                 ranking=[IntentScore(name=intent or "out_of_scope", confidence=conf)])


def hit(entry: str = "shipping-free-threshold", score: float = 0.85) -> Hit:
    return Hit(entry_id=entry, question="Is delivery free?", answer="Free over 50 EUR.",
               category="shipping", score=score)


def text(domain: Domain, name: str) -> str:
    return domain.responses[name][0].text


def test_an_answer_asks_whether_it_helped_and_yes_is_recorded(domain: Domain) -> None:
    bot, s = policy(domain), Session(conversation_id="c")
    answer = bot.decide(s, p("is delivery free?", "shipping_cost"), [hit()])
    assert answer.kind == "faq_answer" and answer.feedback is None
    assert answer.replies[-1].text == text(domain, "utter_ask_helpful")
    assert [b.payload for b in answer.replies[-1].buttons] == ["/affirm", "/deny"]
    yes = bot.decide(s, p("/affirm", "affirm", 1.0), [])
    assert yes.feedback == "yes" and yes.replies[0].text == text(domain, "utter_glad_it_helped")
    assert s.offer is None


def test_no_offers_a_person_and_is_recorded(domain: Domain) -> None:
    bot, s = policy(domain), Session(conversation_id="c")
    bot.decide(s, p("is delivery free?", "shipping_cost"), [hit()])
    no = bot.decide(s, p("no", "deny"), [])
    assert no.feedback == "no" and not no.understood and s.offer == "handoff"
    assert "/talk_to_human" in [b.payload for b in no.replies[0].buttons]
    assert bot.decide(s, p("yes please", "affirm"), []).kind == "handoff"


def test_a_new_question_instead_of_an_answer_is_handled_as_usual(domain: Domain) -> None:
    bot, s = policy(domain), Session(conversation_id="c")
    bot.decide(s, p("is delivery free?", "shipping_cost"), [hit()])
    other = bot.decide(s, p("how do I return something?", "return_policy"), [hit("returns-how-to")])
    assert other.kind == "faq_answer" and other.name == "returns-how-to" and other.feedback is None


def test_the_same_entry_twice_in_a_row_is_a_repeated_question(domain: Domain) -> None:
    bot, s = policy(domain, confirm=False), Session(conversation_id="c")
    first = bot.decide(s, p("is delivery free?", "shipping_cost"), [hit()])
    assert first.feedback is None and first.replies[-1].text == "Free over 50 EUR."  # no question asked
    again = bot.decide(s, p("but is delivery free or not", "shipping_cost"), [hit()])
    assert again.feedback == "repeated"
    bot.decide(s, p("hi", "greet"), [])
    assert bot.decide(s, p("is delivery free?", "shipping_cost"), [hit()]).feedback is None


def test_while_waiting_the_bot_answers_acknowledges_and_keeps_an_address(domain: Domain) -> None:
    bot, s = policy(domain), Session(conversation_id="c", handoff=True, handoff_reason="customer_asked")
    ack = bot.while_waiting(s, p("hello??", None, 0.2), [], available=False)
    assert ack.kind == "handoff" and ack.replies[0].text == text(domain, "utter_handoff_pending_ask_email")
    answer = bot.while_waiting(s, p("is delivery free?", "shipping_cost"), [hit()], available=False)
    assert answer.kind == "faq_answer" and answer.replies[0].text == "Free over 50 EUR."
    assert answer.replies[-1].text == text(domain, "utter_ask_email") and s.offer is None
    saved = bot.while_waiting(s, p("it's ana.k@example.com", None, 0.2), [], available=False)
    assert s.contact_email == "ana.k@example.com" and "ana.k@example.com" in saved.replies[0].text
    assert bot.while_waiting(s, p("ok", None, 0.2), [], available=False).replies[0].text == text(
        domain, "utter_handoff_pending")
    weak = bot.while_waiting(s, p("and the other thing", None, 0.2), [hit(score=0.5)], available=True)
    assert weak.kind == "handoff"  # a weak match is not answered while a person is coming
    assert s.handoff


def t(action: str, name: str = "", understood: bool = True, feedback: str | None = None) -> TurnOutcome:
    return TurnOutcome(action, name, understood, feedback)


def test_resolution_definition() -> None:
    assert resolved([t("respond", "greet"), t("faq_answer", "shipping-free-threshold")])
    assert not resolved([t("respond", "greet")])  # nothing was answered
    assert not resolved([t("faq_answer", "x"), t("clarify", "default", understood=False)])
    assert not resolved([t("faq_answer", "x"), t("faq_answer", "x", feedback="repeated")])
    assert not resolved([t("faq_answer", "x"), t("clarify", "feedback:no", False, "no")])
    assert resolved([t("faq_answer", "x"), t("clarify", "feedback:no", False, "no"),
                     t("faq_answer", "y"), t("respond", "feedback:yes", feedback="yes")])
    assert resolved([t("fill_form", "order_status:submitted")])
    assert not resolved([t("faq_answer", "x"), t("handoff", "customer_asked")])
    got = report([[t("faq_answer", "x")], [t("handoff", "complaint")],
                  [t("faq_answer", "x"), t("respond", "feedback:yes", feedback="yes")]])
    assert (got.conversations, got.resolved, got.handed_off, got.confirmed, got.rate) == (3, 2, 1, 1, 0.6667)


def test_an_answer_that_misses_the_point_becomes_an_offer_of_a_person(domain: Domain) -> None:
    bot, s = policy(domain), Session(conversation_id="c")
    bot.decide(s, p("is there a student discount code?", "discount_code"), [hit("payments-discount-code")])
    assert s.offer == "confirm"
    missed = bot.unaddressed(s, ["student"])
    assert missed.kind == "clarify" and not missed.understood and s.offer == "handoff"
    assert '"student"' in missed.replies[0].text and s.answered_entry is None
    assert bot.decide(s, p("yes", "affirm"), []).kind == "handoff"


def test_a_question_answered_inside_a_form_does_not_ask_whether_it_helped(domain: Domain) -> None:
    bot, s = policy(domain), Session(conversation_id="c")
    bot.decide(s, p("where is my order?", "order_status"), [])
    inside = bot.decide(s, p("where do I find my order number?", "order_status"),
                        [hit("orders-order-number", 0.9)])
    assert inside.kind == "faq_answer" and s.active_form == "order_status" and s.offer is None
    assert inside.replies[-1].text != text(domain, "utter_ask_helpful")
