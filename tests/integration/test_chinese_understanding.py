"""Chinese messages are understood: the multilingual intent model and the multilingual FAQ index
serve languages other than the default, English keeps its own model and index."""

from __future__ import annotations

import pytest

from bot.knowledge.index import build_index
from bot.knowledge.retriever import KnowledgeBase, LanguageRoutedKnowledgeBase
from bot.nlu.model import LanguageRoutedIntentModel

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def nlu(demo_models: tuple) -> LanguageRoutedIntentModel:
    assert isinstance(demo_models[0], LanguageRoutedIntentModel)
    return demo_models[0]


@pytest.fixture(scope="module")
def kb(demo_models: tuple) -> LanguageRoutedKnowledgeBase:
    assert isinstance(demo_models[1], LanguageRoutedKnowledgeBase)
    return demo_models[1]


@pytest.mark.parametrize(("text", "intent"), [
    ("我想退货，怎么操作", "return_policy"),
    ("我的订单到哪了", "order_status"),
    ("转人工", "talk_to_human"),
    ("能帮我改一下收货地址吗", "change_address"),
    ("好的", "affirm"),
])
def test_chinese_intents(nlu: LanguageRoutedIntentModel, text: str, intent: str) -> None:
    parse = nlu.parse(text, "zh")
    assert parse.intent == intent, parse.ranking
    assert not parse.out_of_scope


def test_english_keeps_its_own_model(nlu: LanguageRoutedIntentModel) -> None:
    assert nlu.for_language("en") is nlu.default and nlu.default.manifest.mode != "multilingual"
    assert nlu.for_language("zh") is nlu.multilingual
    assert nlu.multilingual is not None and nlu.multilingual.manifest.mode == "multilingual"
    assert nlu.parse("where is my order?", "en").intent == "order_status"


@pytest.fixture(scope="module")
def english_only(kb: LanguageRoutedKnowledgeBase, tmp_path_factory: pytest.TempPathFactory) -> KnowledgeBase:
    """The multilingual index of the demo FAQ with every translation removed: the demo translates
    all its entries, a company's FAQ often does not."""
    assert kb.multilingual is not None
    entries = [e.model_copy(update={"translations": {}}) for e in kb.entries]
    folder = tmp_path_factory.mktemp("english_only_index")
    build_index(entries, kb.multilingual.embedder, folder, force=True)
    return KnowledgeBase(folder, kb.multilingual.embedder)


# Chinese questions for entries in an index without Chinese text. Written before measuring.
CROSS_LINGUAL = {
    "care-cast-iron-rust": "我的铸铁锅生锈了，还能用吗",
    "gift-cards-balance": "怎么查礼品卡余额",
    "payments-bank-transfer": "可以银行转账付款吗",
    "care-knife-sharpening": "刀钝了怎么磨",
    "company-careers": "你们公司招人吗",
    "loyalty-check-points": "我有多少积分，在哪里看",
    "products-oven-safe": "这个锅能放进烤箱吗",
    "shipping-click-and-collect": "可以自己去取货吗",
    "returns-exchange": "能换个颜色吗",
    "payments-vat": "价格含增值税吗",
}


def test_chinese_questions_find_english_only_entries(english_only: KnowledgeBase) -> None:
    found = []
    for entry_id, question in CROSS_LINGUAL.items():
        hits = english_only.search(question, k=3, language="zh")
        hit = next((h for h in hits if h.entry_id == entry_id), None)
        if hit is not None:
            entry = english_only.get(entry_id)
            assert entry is not None and hit.language is None and hit.answer == entry.answer  # in English
            found.append(entry_id)
    assert len(found) >= 7, f"only {found} of {len(CROSS_LINGUAL)} in the top 3"


def test_translated_entries_answer_in_chinese(kb: LanguageRoutedKnowledgeBase) -> None:
    hit = kb.search("忘了密码怎么办", k=1, language="zh")[0]
    assert hit.entry_id == "account-reset-password" and hit.language == "zh"
    assert "密码" in hit.answer


def test_english_questions_use_the_english_index(kb: LanguageRoutedKnowledgeBase) -> None:
    assert kb.for_language("en") is kb.default and kb.for_language("zh") is kb.multilingual
    assert kb.search("how long does standard delivery take", k=1, language="en")[0].entry_id \
        == "shipping-standard-time"
