from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
import yaml

from bot.knowledge.loader import FaqEntry, KnowledgeBaseError, load_entries

ROOT = Path(__file__).resolve().parents[2]
DIGITS = re.compile(r"\d+")
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
CURRENCIES = ("EUR",)


@pytest.fixture(scope="module")
def entries() -> list[FaqEntry]:
    return load_entries(ROOT / "knowledge_base")


def test_demo_faq_has_chinese_translations_in_every_category(entries: list[FaqEntry]) -> None:
    translated = [e for e in entries if "zh" in e.translations]
    assert len(translated) >= 40
    assert {e.category for e in translated} == {e.category for e in entries}
    for entry in translated:
        zh = entry.translations["zh"]
        assert zh.question.strip() and zh.answer.strip() and zh.alternatives, entry.id
        # Written in Chinese, not left in English.
        assert re.search(r"[\u4e00-\u9fff]", zh.question + zh.answer), entry.id


def test_translations_keep_every_number_email_and_currency(entries: list[FaqEntry]) -> None:
    problems = []
    for entry in entries:
        for lang, translation in entry.translations.items():
            english, local = entry.answer, translation.answer
            if Counter(DIGITS.findall(english)) != Counter(DIGITS.findall(local)):
                problems.append(f"{entry.id}/{lang}: numbers {DIGITS.findall(english)} "
                                f"!= {DIGITS.findall(local)}")
            for email in EMAIL.findall(english):
                if email.rstrip(".") not in local:
                    problems.append(f"{entry.id}/{lang}: lost {email}")
            for currency in CURRENCIES:
                if english.count(currency) != local.count(currency):
                    problems.append(f"{entry.id}/{lang}: {currency} count differs")
    assert not problems, "\n".join(problems)


def test_localized_returns_the_translation_or_none(entries: list[FaqEntry]) -> None:
    entry = next(e for e in entries if e.id == "shipping-free-threshold")
    question, answer = entry.localized("zh")
    assert question == entry.translations["zh"].question and "4.95 EUR" in answer
    assert entry.localized("zh-CN") == (question, answer)
    assert entry.localized("fr") is None


def write_kb(folder: Path, translations: dict) -> Path:
    folder.mkdir()
    entry = {"id": "x", "question": "Is delivery free?", "alternatives": ["free shipping"],
             "answer": "Over 50 EUR.", "translations": translations}
    (folder / "faq.yml").write_text(yaml.safe_dump({"category": "test", "entries": [entry]},
                                                   allow_unicode=True), encoding="utf-8")
    return folder


def test_valid_translation_keys_load(tmp_path: Path) -> None:
    good = {"zh": {"question": "包邮吗？", "answer": "满 50 EUR 包邮。"},
            "pt-BR": {"question": "O frete é grátis?", "alternatives": ["frete grátis"],
                      "answer": "Acima de 50 EUR."}}
    [entry] = load_entries(write_kb(tmp_path / "kb", good))
    assert set(entry.translations) == {"zh", "pt-BR"}
    assert entry.translations["zh"].alternatives == []


@pytest.mark.parametrize("translations", [
    {"chinese": {"question": "包邮吗？", "answer": "满 50 EUR 包邮。"}},
    {"ZH": {"question": "包邮吗？", "answer": "满 50 EUR 包邮。"}},
    {"zh_CN": {"question": "包邮吗？", "answer": "满 50 EUR 包邮。"}},
    {"zh": {"question": "包邮吗？"}},
    {"zh": {"question": "包邮吗？", "answer": ""}},
    {"zh": {"answer": "满 50 EUR 包邮。"}},
], ids=["word-key", "upper-key", "underscore-key", "no-answer", "empty-answer", "no-question"])
def test_bad_translations_are_rejected(tmp_path: Path, translations: dict) -> None:
    with pytest.raises(KnowledgeBaseError, match="entry 0"):
        load_entries(write_kb(tmp_path / "kb", translations))
