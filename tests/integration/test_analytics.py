"""The console's analytics (bot/storage/analytics.py, /console/api/analytics): the numbers on a small
known data set on SQLite and PostgreSQL, the SQL resolution rate against bot.resolution's (through
`TranscriptStore.resolution`) on random transcripts, the filters, the CSV export, admins only, and
no query parameter ever answered with a 5xx."""

from __future__ import annotations

import csv
import io
import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert
from sqlalchemy.engine import Engine

from bot.config import Settings
from bot.storage.analytics import RESOLUTION_DEFINITION, Analytics, Filters, normalise
from bot.storage.db import TranscriptStore
from bot.storage.models import AgentMessage, Conversation, Rating, TurnRecord
from bot.web.app import create_app
from tests.clients import WidgetClient

pytestmark = pytest.mark.integration
PASSWORD = "correct horse battery"
DAY1 = date(2026, 11, 30)  # a Monday
DAY2 = date(2026, 12, 2)

# (conversation, channel, language, day, handoff reason, turns: (action, name, understood, feedback,
#  vote, intent, faq entry, text)); resolved: c1, c4, c6.
KNOWN = [
    ("c1", "web", "en", DAY1, None, [("faq_answer", "faq", True, None, "up", "delivery", "faq-ship",
                                      "Where is my parcel?")]),
    ("c2", "web", "en", DAY1, "customer_asked", [
        ("faq_answer", "faq", True, None, "down", "refund", "faq-refund", "refund please"),
        ("handoff", "handoff", True, None, None, "human", None, "I want a person!")]),
    ("c3", "telegram", "de", DAY1, None, [("respond", "utter_default", False, None, None, None, None,
                                           "Wo ist mein Paket??")]),
    ("c4", "web", "de", DAY1, None, [
        ("faq_answer", "faq", True, "no", None, "refund", "faq-refund", "refund"),
        ("faq_answer", "faq", True, "yes", "up", "refund", "faq-refund-2", "refund money back")]),
    ("c5", "telegram", "en", DAY2, None, [
        ("generate", "answered", True, None, None, "delivery", None, "how long does shipping take"),
        ("respond", "utter_default", False, None, None, None, None, "i want a person")]),
    ("c6", "web", "en", DAY2, None, [("fill_form", "address_change:submitted", True, None, "up",
                                      "address", None, "change my address")]),
    ("c7", "web", "en", DAY2, None, [
        ("faq_answer", "faq", True, None, None, "delivery", "faq-ship", "where is my parcel"),
        ("faq_answer", "faq", True, "repeated", "down", "delivery", "faq-ship", "WHERE is my parcel")]),
    ("c8", "whatsapp", "fr", DAY2, "complaint", [
        ("handoff", "handoff", True, None, None, "complaint", None, "I want a person")]),
]
# hand-off at the handoff turn's time; agent messages (agent, seconds after the hand-off)
AGENT_MESSAGES = {"c2": [("ana", 60), ("ana", 300)], "c8": [("ben", 120), ("ben", 400), ("ben", 600)]}


def at(day: date, seconds: int) -> datetime:
    return datetime(day.year, day.month, day.day, 9, 0, tzinfo=UTC) + timedelta(seconds=seconds)


def seed(engine: Engine, ratings: bool = True, prefix: str = "") -> None:
    """The known data set above, written as the transcripts hold it (ids prefixed with `prefix`)."""
    with engine.begin() as conn:
        for key, channel, language, day, reason, turns in KNOWN:
            cid = prefix + key
            conn.execute(insert(Conversation).values(
                id=cid, channel=channel, language=language, started_at=at(day, 0),
                last_message_at=at(day, 30 * len(turns)), turns=len(turns), handoff=reason is not None,
                handoff_reason=reason))
            for k, (action, name, understood, feedback, vote, intent, faq, text) in enumerate(turns):
                conn.execute(insert(TurnRecord).values(
                    conversation_id=cid, channel=channel, message_id=f"m{k}", at=at(day, 30 * k),
                    user_text=text, intent=intent, confidence=0.9, out_of_scope=False, action=action,
                    action_name=name, understood=understood, faq_entry=faq, faq_score=0.8 if faq else None,
                    replies=[], ranking=[], latency_ms=5.0, feedback=feedback, vote=vote))
                if action == "handoff":
                    for agent, after in AGENT_MESSAGES.get(key, []):
                        conn.execute(insert(AgentMessage).values(conversation_id=cid, agent=agent,
                                                                 text="hello", at=at(day, 30 * k + after)))
        if ratings:
            conn.execute(insert(Rating).values(conversation_id=prefix + "c2", score=4, agent="ana",
                                               created_at=at(DAY1, 900)))
            conn.execute(insert(Rating).values(conversation_id=prefix + "c8", score=2, agent="ben",
                                               created_at=at(DAY2, 900)))


PERIOD = Filters(start=DAY1, end=DAY2 + timedelta(days=1))


def test_the_numbers_of_a_known_data_set(engine: Engine) -> None:
    seed(engine)
    r = Analytics(engine).report(PERIOD).as_dict()
    t = r["totals"]
    assert (t["conversations"], t["messages"], t["resolved"], t["handed_off"]) == (8, 12, 3, 2)
    assert t["resolution_rate"] == 0.375 and t["handoff_rate"] == 0.25
    assert [(s["bucket"], s["conversations"], s["messages"], s["resolved"]) for s in r["series"]] == [
        ("2026-11-30", 4, 6, 2), ("2026-12-01", 0, 0, 0), ("2026-12-02", 4, 6, 1), ("2026-12-03", 0, 0, 0)]
    assert r["series"][1]["resolution_rate"] is None  # no conversations: no rate, not 0
    assert r["handoff_reasons"] == [{"reason": "complaint", "conversations": 1, "rate": 0.125},
                                    {"reason": "customer_asked", "conversations": 1, "rate": 0.125}]
    s = r["satisfaction"]
    assert (s["up"], s["down"], s["yes"], s["no"]) == (3, 2, 1, 1)
    assert s["thumbs_up_rate"] == 0.6 and s["answered_yes_rate"] == 0.5
    assert r["ratings"] == {"count": 2, "average": 3.0,
                            "distribution": {"1": 0, "2": 1, "3": 0, "4": 1, "5": 0}}
    a = r["agents"]
    assert (a["conversations"], a["median_first_response_s"], a["median_handling_s"]) == (2, 90.0, 450.0)
    assert a["by_agent"] == [
        {"agent": "ana", "conversations": 1, "median_first_response_s": 60.0, "median_handling_s": 300.0},
        {"agent": "ben", "conversations": 1, "median_first_response_s": 120.0, "median_handling_s": 600.0}]
    assert r["top_intents"][:2] == [{"intent": "delivery", "turns": 4}, {"intent": "refund", "turns": 3}]
    # not understood (c3, c5) and handed off (c2, c8): "I want a person" 3 times, whatever the case
    assert r["unanswered"][0] == {"question": "I want a person", "count": 3, "similar": []}
    assert normalise("  I want a PERSON!! ") == "i want a person"
    assert sum(u["count"] for u in r["unanswered"]) == 4
    assert r["faq_most_used"][0] == {"entry": "faq-ship", "uses": 3, "down": 1, "no": 0}
    assert [e["entry"] for e in r["faq_most_negative"]] == ["faq-refund", "faq-ship"]
    assert r["faq_most_negative"][0]["negative"] == 2
    assert r["channels"] == ["telegram", "web", "whatsapp"] and r["languages"] == ["de", "en", "fr"]
    assert r["definition"] == RESOLUTION_DEFINITION
    # the same rate as bot.resolution over the stored transcripts
    assert TranscriptStore(engine).resolution(since=at(DAY1, -60)).resolved == t["resolved"]


def test_filters_and_weeks(engine: Engine) -> None:
    seed(engine, ratings=False)
    a = Analytics(engine)
    web = a.report(Filters(start=DAY1, end=DAY2, channel="web")).as_dict()
    assert web["totals"]["conversations"] == 5 and web["totals"]["resolved"] == 3
    assert web["totals"]["messages"] == 8
    de = a.report(Filters(start=DAY1, end=DAY2, language="de")).as_dict()
    assert (de["totals"]["conversations"], de["totals"]["messages"], de["totals"]["resolved"]) == (2, 3, 1)
    assert de["top_intents"] == [{"intent": "refund", "turns": 2}]
    day2 = a.report(Filters(start=DAY2, end=DAY2)).as_dict()
    assert day2["totals"]["conversations"] == 4 and day2["agents"]["conversations"] == 1
    week = a.report(Filters(start=DAY1, end=DAY2 + timedelta(days=7), bucket="week")).as_dict()
    weeks = [(s["bucket"], s["conversations"]) for s in week["series"]]
    assert weeks == [("2026-11-30", 8), ("2026-12-07", 0)]
    assert week["ratings"] == {"count": 0, "average": None, "distribution": {str(i): 0 for i in range(1, 6)}}
    none = a.report(Filters(start=DAY1, end=DAY2, channel="nope")).as_dict()
    assert none["totals"]["conversations"] == 0 and none["totals"]["resolution_rate"] is None


def test_sql_resolution_agrees_with_bot_resolution_on_random_transcripts(engine: Engine) -> None:
    rng = random.Random(5)
    kinds = [("faq_answer", "faq"), ("generate", "answered"), ("generate", "refused"),
             ("fill_form", "address_change:submitted"), ("fill_form", "address_change"),
             ("respond", "utter_greet"), ("handoff", "handoff")]
    with engine.begin() as conn:
        for i in range(300):
            cid = f"r{i}"
            day = DAY1 + timedelta(days=rng.randrange(3))
            n = rng.randint(0, 5)
            conn.execute(insert(Conversation).values(id=cid, channel="web", started_at=at(day, i),
                                                     last_message_at=at(day, i), turns=n))
            for k in range(n):
                action, name = rng.choices(kinds, [5, 2, 1, 1, 1, 3, 0.5])[0]
                conn.execute(insert(TurnRecord).values(
                    conversation_id=cid, channel="web", message_id=f"m{k}", at=at(day, i + k),
                    user_text="q", action=action, action_name=name, understood=rng.random() < 0.8,
                    feedback=rng.choice([None, None, None, "yes", "no", "repeated"]), replies=[], ranking=[],
                    latency_ms=1.0))
    expected = TranscriptStore(engine).resolution(since=at(DAY1, -60))
    got = Analytics(engine).report(Filters(start=DAY1, end=DAY1 + timedelta(days=3))).as_dict()["totals"]
    assert expected.conversations == got["conversations"] > 200  # those with turns
    assert expected.resolved == got["resolved"] and 0 < got["resolved"] < got["conversations"]
    assert expected.handed_off == got["handed_off"]
    assert expected.confirmed == got["confirmed"]


# --- the API ---------------------------------------------------------------------------
@pytest.fixture
def client(app_settings: Settings, demo_models: tuple) -> Iterator[TestClient]:
    with WidgetClient(create_app(app_settings, demo_models)) as c:
        agents = c.app.state.services.agents
        agents.create("admin1", "Ada Admin", PASSWORD, "admin")
        agents.create("agent1", "Sam Lee", PASSWORD, "agent")
        seed(c.app.state.services.transcripts.engine)
        yield c


def login(c: TestClient, username: str) -> str:
    csrf = c.get("/console/api/session").json()["csrf"]
    r = c.post("/console/api/login", json={"username": username, "password": PASSWORD},
               headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200, r.text
    return r.json()["csrf"]


QUERY = {"from": DAY1.isoformat(), "to": DAY2.isoformat()}


def test_admins_only(client: TestClient) -> None:
    assert client.get("/console/api/analytics").status_code == 401
    assert client.get("/console/api/analytics.csv").status_code == 401
    assert client.get("/console/analytics", follow_redirects=False).status_code == 303
    login(client, "agent1")
    assert client.get("/console/api/analytics").json()["error"] == "forbidden"
    assert client.get("/console/api/analytics").status_code == 403
    assert client.get("/console/api/analytics.csv").status_code == 403
    page = client.get("/console/analytics")
    assert page.status_code == 403 and "Admins only" in page.text


def test_the_api_the_page_and_the_csv(client: TestClient) -> None:
    login(client, "admin1")
    page = client.get("/console/analytics")
    assert page.status_code == 200 and "analytics.js" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    r = client.get("/console/api/analytics", params={**QUERY, "charts": "true"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["totals"]["conversations"] == 8 and body["totals"]["resolved"] == 3
    assert body["definition"] == RESOLUTION_DEFINITION
    for svg in body["charts"].values():
        assert svg.startswith("<svg") and 'role="img"' in svg and "<title" in svg and "<desc" in svg
    assert "<script" not in "".join(body["charts"].values())
    filtered = client.get("/console/api/analytics", params={**QUERY, "channel": "telegram", "bucket": "week"})
    assert filtered.json()["totals"]["conversations"] == 2 and len(filtered.json()["series"]) == 1
    assert "charts" not in filtered.json()
    exported = client.get("/console/api/analytics.csv", params=QUERY)
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    assert "attachment" in exported.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(exported.text)))
    assert rows[0][:5] == ["bucket", "conversations", "messages", "resolved", "resolution_rate"]
    assert rows[1][:4] == ["2026-11-30", "4", "6", "2"] and len(rows) == 4
    bad = client.get("/console/api/analytics", params={"from": "yesterday"})
    assert bad.status_code == 422 and bad.json()["error"] == "invalid_filter"
    backwards = {"from": "2026-12-05", "to": "2026-12-01"}
    assert client.get("/console/api/analytics", params=backwards).status_code == 422
    assert client.get("/console/api/analytics", params={"bucket": "year"}).status_code == 422


def test_the_admin_api_key_works_too(app_settings: Settings, demo_models: tuple) -> None:
    settings = app_settings.updated({"console.admin_api_key": "k" * 32})
    with TestClient(create_app(settings, demo_models)) as c:
        key = {"Authorization": "Bearer " + "k" * 32}
        assert c.get("/console/api/analytics", headers=key).status_code == 200
        assert c.get("/console/api/analytics", headers={"X-API-Key": "wrong"}).status_code == 401


texts = st.one_of(st.none(), st.text(max_size=40), st.dates().map(str),
                  st.sampled_from(["day", "week", "", "2026-02-30", "0001-01-01", "9999-12-31", "web"]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(start=texts, end=texts, channel=texts, language=texts, bucket=texts, charts=texts,
       extra=st.dictionaries(st.text(min_size=1, max_size=8), st.text(max_size=8), max_size=2))
def test_no_query_parameter_is_a_server_error(client: TestClient, start, end, channel, language, bucket,
                                              charts, extra) -> None:
    if not client.cookies.get("sb_console"):
        login(client, "admin1")
    params = {k: v for k, v in {"from": start, "to": end, "channel": channel, "language": language,
                                "bucket": bucket, "charts": charts, **extra}.items() if v is not None}
    for path in ("/console/api/analytics", "/console/api/analytics.csv"):
        r = client.get(path, params=params)
        assert r.status_code < 500, (params, r.text)
        assert r.status_code in (200, 422), (params, r.status_code, r.text)


def test_unanswered_questions_are_grouped_by_meaning_on_the_page(client: TestClient) -> None:
    """The page's top unanswered questions are clusters: rephrasings of one question count together
    (the FAQ encoder's vectors), each with a few of its other phrasings."""
    engine = client.app.state.services.transcripts.engine
    asked = {"is there a student discount?": 3, "Do students get a discount": 2, "student discount pls": 1,
             "is there an iphone app": 2, "do you have a mobile app?": 1, "my kettle leaks": 1}
    with engine.begin() as conn:
        conn.execute(insert(Conversation).values(id="u1", channel="web", language="en",
                                                 started_at=at(DAY1, 0), last_message_at=at(DAY1, 0),
                                                 turns=10, handoff=False))
        k = 0
        for text, times in asked.items():
            for _ in range(times):
                conn.execute(insert(TurnRecord).values(
                    conversation_id="u1", channel="web", message_id=f"u{k}", at=at(DAY1, k), user_text=text,
                    intent=None, confidence=0.2, out_of_scope=True, action="respond",
                    action_name="utter_out_of_scope", understood=False, replies=[], ranking=[],
                    latency_ms=5.0))
                k += 1
    login(client, "admin1")
    top = client.get("/console/api/analytics", params=QUERY).json()["unanswered"]
    by_question = {u["question"]: u for u in top}
    students = by_question["is there a student discount?"]
    assert students["count"] == 6
    assert sorted(students["similar"]) == ["Do students get a discount", "student discount pls"]
    assert by_question["is there an iphone app"]["count"] == 3
    assert by_question["my kettle leaks"]["count"] == 1  # nothing like it: alone
    assert top[0]["question"] == "is there a student discount?"  # the biggest cluster first
