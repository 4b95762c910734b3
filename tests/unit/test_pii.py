"""Personal data is redacted with typed placeholders; prices, dates and product codes survive."""

from __future__ import annotations

import pytest

from bot.pii import Scrubber, luhn_ok, public_contacts


@pytest.mark.parametrize(("text", "expected"), [
    ("write to anna.berg+shop@example.co.uk please", "write to [EMAIL] please"),
    ("call me on +44 7700 900123", "call me on [PHONE]"),
    ("my number is 0612345678", "my number is [PHONE]"),
    ("card 4111 1111 1111 1111 was charged twice", "card [CARD] was charged twice"),
    ("order KK-902114 is late", "order [ORDER] is late"),
    ("my name is Anna Berg and I ordered a pan", "my name is [NAME] and I ordered a pan"),
    ("Thanks Tom!", "Thanks [NAME]!"),
    ("cheers\n- Sarah Lee", "cheers\n- [NAME]"),
])
def test_personal_data_is_redacted(text: str, expected: str) -> None:
    assert Scrubber().scrub(text) == expected


@pytest.mark.parametrize("text", [
    "Delivered on 12/03/2025 for 49.95 EUR",
    "the 28 cm pan, product code 12345678",
    "card number 4111 1111 1111 1112 is not a valid card",  # fails the Luhn check
    "Hi there, where is my parcel?",
    "Thanks So much",
    "Refund",
])
def test_ordinary_text_is_left_alone(text: str) -> None:
    scrubber = Scrubber()
    assert scrubber.scrub(text) == text
    assert scrubber.report() == {"messages_redacted": 0}


def test_known_names_from_the_record_and_the_report() -> None:
    scrubber = Scrubber()
    out = scrubber.scrub("Oliver here, Twist is my surname; mail oliver@example.com", ["Oliver Twist"])
    assert "Oliver" not in out and "Twist" not in out and "[EMAIL]" in out
    assert scrubber.report() == {"messages_redacted": 1, "EMAIL": 1, "NAME": 2}


def test_company_contacts_from_the_faq_are_kept() -> None:
    keep = public_contacts(["Email help@kettleandkin.example or call +44 20 7946 0000."])
    scrubber = Scrubber(keep=keep)
    text = "I mailed help@kettleandkin.example and called +44 20 7946 0000, reach me at me@example.com"
    assert scrubber.scrub(text) == ("I mailed help@kettleandkin.example and called +44 20 7946 0000, "
                                    "reach me at [EMAIL]")


def test_custom_order_number_pattern() -> None:
    assert Scrubber(order_pattern=r"\bAB\d{4}\b").scrub("order AB1234 and KK-123456") == \
        "order [ORDER] and KK-123456"


def test_luhn() -> None:
    assert luhn_ok("4111111111111111") and luhn_ok("5555555555554444")
    assert not luhn_ok("4111111111111112")
