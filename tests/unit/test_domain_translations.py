"""Translation overlays of the domain (training_data/<lang>/domain_responses.yml): checked at load,
used by render/title/widget_strings, completed for zh; and forms that understand Chinese answers."""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

import pytest
import yaml

from bot.config import Thresholds
from bot.dialogue.actions import CsvOrderBook, default_actions
from bot.dialogue.domain import Domain, DomainError
from bot.dialogue.policy import Policy
from bot.types import Hit, IntentScore, Parse, Session

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = ROOT / "training_data" / "domain.yml"
ZH = ROOT / "training_data" / "zh" / "domain_responses.yml"
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def domain() -> Domain:
    return Domain.load(DOMAIN)


def zh_texts(domain: Domain, name: str) -> set[str]:
    return {v.text for v in domain.translations["zh"].responses[name]}


def project(tmp_path: Path, overlay: dict | str) -> Path:
    """A copy of the demo domain with this zh overlay beside it."""
    (tmp_path / "zh").mkdir(parents=True)
    shutil.copy(DOMAIN, tmp_path / "domain.yml")
    text = overlay if isinstance(overlay, str) else yaml.safe_dump(overlay, allow_unicode=True)
    (tmp_path / "zh" / "domain_responses.yml").write_text(text, encoding="utf-8")
    return tmp_path / "domain.yml"


def zh_overlay() -> dict:
    return yaml.safe_load(ZH.read_text(encoding="utf-8"))


# --- the shipped overlay ------------------------------------------------------------------
def test_shipped_zh_overlay_translates_every_text_of_the_domain(domain: Domain) -> None:
    assert domain.language == "en" and domain.languages == ["en", "zh"]
    assert domain.missing_translations("zh") == []
    for name, variants in domain.translations["zh"].responses.items():
        assert all(CJK.search(v.text) for v in variants), name
        assert all(CJK.search(b.title) for v in variants for b in v.buttons), name


def test_render_title_and_widget_in_a_language_else_the_domains_own(domain: Domain) -> None:
    assert domain.render("utter_greet", language="zh").text in zh_texts(domain, "utter_greet")
    assert domain.render("utter_greet").text in {v.text for v in domain.responses["utter_greet"]}
    english = {v.text for v in domain.responses["utter_greet"]}
    assert domain.render("utter_greet", language="fr").text in english
    reply = domain.render("utter_order_not_found", {"order_number": "KK-000001"}, language="zh")
    assert reply.text.startswith("没有找到订单 KK-000001")
    assert [(b.title, b.payload) for b in reply.buttons] == [("转人工客服", "/talk_to_human")]
    assert domain.title("change_address", "zh") == "修改收货地址"
    assert domain.title("change_address") == "Change a delivery address"
    assert domain.widget_strings("zh").send == "发送" and domain.widget_strings().send == "Send"
    assert domain.widget_strings("fr") == domain.widget


# --- loading and checking overlays --------------------------------------------------------
def test_missing_keys_fall_back_and_are_logged_once_at_load(tmp_path: Path,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    overlay = zh_overlay()
    del overlay["responses"]["utter_greet"], overlay["intents"]["greet"], overlay["widget"]["send"]
    with caplog.at_level(logging.WARNING, logger="bot.dialogue.domain"):
        d = Domain.load(project(tmp_path, overlay))
    assert d.missing_translations("zh") == ["widget.send", "intents.greet.title", "responses.utter_greet"]
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "responses.utter_greet" in warnings[0] and "zh" in warnings[0]
    assert d.render("utter_greet", language="zh").text in {v.text for v in d.responses["utter_greet"]}
    assert d.title("greet", "zh") == "Say hello" and d.widget_strings("zh").send == "Send"
    assert d.widget_strings("zh").title == "Kettle & Kin 客服"


def break_variants(o: dict) -> None:
    o["responses"]["utter_greet"].pop()


def break_payload(o: dict) -> None:
    o["responses"]["utter_offer_handoff"][0]["buttons"][0]["payload"] = "/human"


def drop_button(o: dict) -> None:
    o["responses"]["utter_bot_challenge"][0]["buttons"] = []


def rename_placeholder(o: dict) -> None:
    o["responses"]["utter_agent_joined"][0]["text"] = "客服 {name} 已加入对话。"


def drop_placeholder(o: dict) -> None:
    o["responses"]["utter_order_found"][0]["text"] = "订单 {order_number}：{status}。"


def unbalanced_brace(o: dict) -> None:
    o["responses"]["utter_order_found"][0]["text"] = "订单 {order_number：{status}。{detail}"


def unknown_response(o: dict) -> None:
    o["responses"]["utter_hello_there"] = [{"text": "你好"}]


def unknown_intent(o: dict) -> None:
    o["intents"]["order_pizza"] = {"title": "订披萨"}


def intent_action(o: dict) -> None:
    o["intents"]["greet"] = {"title": "打招呼", "action": "handoff"}


def unknown_widget(o: dict) -> None:
    o["widget"]["banner"] = "欢迎"


def unknown_part(o: dict) -> None:
    o["forms"] = {}


def no_text(o: dict) -> None:
    o["responses"]["utter_deny"] = [{"txt": "没问题"}]


@pytest.mark.parametrize(("breakage", "key"), [
    (break_variants, "responses.utter_greet"), (break_payload, "responses.utter_offer_handoff"),
    (drop_button, "responses.utter_bot_challenge"), (rename_placeholder, "responses.utter_agent_joined"),
    (drop_placeholder, "responses.utter_order_found"), (unbalanced_brace, "responses.utter_order_found"),
    (unknown_response, "responses.utter_hello_there"), (unknown_intent, "intents.order_pizza"),
    (intent_action, "intents.greet"), (unknown_widget, "widget.banner"), (unknown_part, "forms"),
    (no_text, "responses.utter_deny"),
])
def test_a_broken_overlay_is_a_load_error_naming_file_and_key(tmp_path: Path, breakage, key: str) -> None:
    overlay = zh_overlay()
    breakage(overlay)
    path = project(tmp_path, overlay)
    with pytest.raises(DomainError) as err:
        Domain.load(path)
    message = str(err.value)
    assert str(tmp_path / "zh" / "domain_responses.yml") in message and f"{key}:" in message


def test_overlay_that_is_not_yaml_or_not_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(DomainError, match="domain_responses.yml: not valid YAML"):
        Domain.load(project(tmp_path / "a", "responses: [unclosed"))
    with pytest.raises(DomainError, match="domain_responses.yml: an overlay is a mapping"):
        Domain.load(project(tmp_path / "b", "- just a list"))


def test_overlays_load_for_the_served_languages_only(tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    assert Domain.load(DOMAIN, languages=["en"]).languages == ["en"]
    with caplog.at_level(logging.WARNING, logger="bot.dialogue.domain"):
        d = Domain.load(DOMAIN, languages=["en", "zh", "fr"])
    assert d.languages == ["en", "zh"]
    assert [r.getMessage() for r in caplog.records if "fr" in r.getMessage()]
    en = project(tmp_path, zh_overlay())
    (tmp_path / "zh").rename(tmp_path / "en")
    with pytest.raises(DomainError, match="the language the domain is written in"):
        Domain.load(en)


# --- forms in Chinese -----------------------------------------------------------------------
def slot(domain: Domain, form: str, name: str):
    found = domain.forms[form].slot(name)
    assert found is not None
    return found


@pytest.mark.parametrize(("text", "value"), [
    ("我的订单号是KK123456", "KK-123456"), ("订单 kk-123456", "KK-123456"), ("订单号KK123456", "KK-123456"),
    ("KK123456号订单", "KK-123456"), ("ＫＫ１２３４５６", "KK-123456"),
    ("订单号：ｋｋ－６５４３２１。", "KK-654321"),
    ("订单号是 KK 111222，谢谢", "KK-111222"), ("我的订单KK-123456到哪了？", "KK-123456"),
    ("my order is kk123456", "KK-123456"),
    ("订单号KK1234567", None), ("订单号123456", None), ("订单号ＫＫ１２３４５", None), ("XKK-123456", None),
])
def test_order_number_in_chinese_text(domain: Domain, text: str, value: str | None) -> None:
    for form in ("order_status", "change_address", "cancel_order"):
        assert slot(domain, form, "order_number").extract(text) == value


def test_order_number_entity_in_chinese_text(domain: Domain) -> None:
    assert domain.extract_entities("我的订单号是ＫＫ２０４８７１，还没到") == {"order_number": "KK204871"}
    assert domain.extract_entities("KK204871号订单到哪了") == {"order_number": "KK204871"}


@pytest.mark.parametrize(("text", "value"), [
    ("朝阳路88号", "朝阳路88号"), ("朝阳路８８号。", "朝阳路88号"),
    ("  北京市朝阳区建国路 8 号 ", "北京市朝阳区建国路 8 号"),
    ("人民路八十八号", "人民路八十八号"), ("中关村大街1号院3号楼", "中关村大街1号院3号楼"),
    ("14 Millbrook Lane.", "14 Millbrook Lane"),
    ("朝阳路", None), ("一心路", None), ("8号", None), ("Millbrook Lane", None),
])
def test_street_in_chinese(domain: Domain, text: str, value: str | None) -> None:
    assert slot(domain, "change_address", "street").extract(text) == value


@pytest.mark.parametrize(("text", "value"), [
    ("100020", "100020"), ("邮编是１０００２０", "100020"), ("邮编：100020。", "100020"),
    ("200000号", "200000"),
    ("1043 ab", "1043 AB"), ("SW1A 1AA", "SW1A 1AA"), ("10115", "10115"),
    ("我不知道", None), ("13800138000", None),
])
def test_postcode_in_chinese(domain: Domain, text: str, value: str | None) -> None:
    assert slot(domain, "change_address", "postcode").extract(text) == value


@pytest.mark.parametrize(("text", "value"), [
    ("北京", "北京"), ("北京市。", "北京市"), ("上海，", "上海"), ("　深圳！", "深圳"),
    ("Amsterdam", "Amsterdam"),
    ("100020", None), ("北", None),
])
def test_city_in_chinese(domain: Domain, text: str, value: str | None) -> None:
    assert slot(domain, "change_address", "city").extract(text) == value


# --- the policy answers in the conversation's language ----------------------------------------
@pytest.fixture
def policy(domain: Domain) -> Policy:
    orders = CsvOrderBook(ROOT / "training_data" / "demo_orders.csv")
    return Policy(domain, Thresholds(), default_actions(orders), seed=1, languages=["en", "zh"],
                  default_language="en")


def p(text: str, intent: str | None, conf: float = 0.95, ranking: list[tuple[str, float]] | None = None,
      language: str | None = "zh", **entities: str) -> Parse:
    ranking = ranking or [(intent or "out_of_scope", conf)]
    return Parse(text=text, intent=intent, confidence=conf, entities=entities, language=language,
                 ranking=[IntentScore(name=n, confidence=c) for n, c in ranking])


def zh_session() -> Session:
    return Session(conversation_id="zh1", language="zh")


def test_a_form_in_chinese_asks_and_answers_in_chinese(policy: Policy, domain: Domain) -> None:
    s = zh_session()
    ask = policy.decide(s, p("/change_address", "change_address"), []).replies[0]
    assert ask.text in zh_texts(domain, "utter_ask_order_number")
    wrong = policy.decide(s, p("我不记得了", None, 0.1), []).replies[0]
    assert wrong.text in zh_texts(domain, "utter_invalid_order_number")
    steps = [("我的订单号是ＫＫ２０４８７１", "utter_ask_street"), ("朝阳路88号", "utter_ask_postcode"),
             ("邮编100020", "utter_ask_city")]
    for text, response in steps:
        assert policy.decide(s, p(text, None, 0.1), []).replies[0].text in zh_texts(domain, response)
    done = policy.decide(s, p("北京。", None, 0.1), [])
    assert done.submitted == {"form": "change_address", "slots": {
        "order_number": "KK-204871", "street": "朝阳路88号", "postcode": "100020", "city": "北京"}}
    assert done.replies[0].text.startswith(
        "谢谢！我已通知仓库将订单 KK-204871 寄往 北京朝阳路88号（邮编 100020）")


def test_order_lookup_and_clarify_buttons_in_chinese(policy: Policy, domain: Domain) -> None:
    s = zh_session()
    found = policy.decide(s, p("/order_status", "order_status", order_number="KK-204871"), [])
    assert found.replies[0].text.startswith("订单 KK-204871：")
    missing = policy.decide(s, p("/order_status", "order_status", order_number="KK-999999"), [])
    assert missing.replies[0].text in {t.replace("{order_number}", "KK-999999")
                                        for t in zh_texts(domain, "utter_order_not_found")}
    clarify = policy.decide(s, p("嗯……地址", None, 0.3, ranking=[("change_address", 0.3),
                                                             ("order_status", 0.25)]), [])
    assert clarify.replies[0].text in zh_texts(domain, "utter_clarify")
    assert [b.title for b in clarify.replies[0].buttons] == ["修改收货地址", "我的订单到哪了？"]


def test_unsupported_language_is_answered_in_the_default_language(policy: Policy, domain: Domain) -> None:
    german = p("Guten Tag, wo ist meine Bestellung?", None, 0.1, language="de")
    action = policy.decide(zh_session(), german, [])
    assert action.replies[0].text == domain.responses["utter_language_unsupported"][0].text
    s = Session(conversation_id="de1", language="de")  # not served: the default language
    assert policy.decide(s, p("/greet", "greet", language="de"), []).replies[0].text in {
        v.text for v in domain.responses["utter_greet"]}


def test_faq_without_translation_and_generation_fallbacks_in_chinese(policy: Policy, domain: Domain) -> None:
    s = zh_session()
    hit = Hit(entry_id="account-create", question="Create account", answer="Click Create account.",
              category="account", score=0.9)
    replies = policy.decide(s, p('/faq{"entry": "account-create"}', "faq"), [hit]).replies
    assert replies[0].text in zh_texts(domain, "utter_answer_in_default_language")
    assert replies[1].text == "Click Create account."

    class Result:
        status, reason, answer = "unsure", "ungrounded", None

    unsure = policy.after_generation(s, Result(), []).replies[0]
    assert unsure.text in zh_texts(domain, "utter_generation_unsure")
    assert [b.payload for b in unsure.buttons] == ["/talk_to_human", "/deny"]
    handoff = policy.decide(s, p("/talk_to_human", "talk_to_human"), []).replies[0]
    assert handoff.text in zh_texts(domain, "utter_handoff")
