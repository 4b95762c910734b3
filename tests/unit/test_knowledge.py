from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot.knowledge.embedder import Embedder
from bot.knowledge.index import build_index
from bot.knowledge.loader import KnowledgeBaseError, load_entries
from bot.knowledge.retriever import KnowledgeBase

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


def write_kb(folder: Path, entries: list[dict], name: str = "faq.yml") -> None:
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(yaml.safe_dump({"category": "test", "entries": entries}))


def test_demo_faq_has_at_least_80_entries_with_phrasings() -> None:
    entries = load_entries(ROOT / "knowledge_base")
    assert len(entries) >= 80
    assert all(e.alternatives and e.answer for e in entries)
    assert len({e.category for e in entries}) >= 5


def test_duplicate_ids_and_bad_entries_are_rejected(tmp_path: Path) -> None:
    write_kb(tmp_path / "a", [{"id": "x", "question": "Q one?", "answer": "A"}])
    write_kb(tmp_path / "a", [{"id": "x", "question": "Q two?", "answer": "B"}], "b.yml")
    with pytest.raises(KnowledgeBaseError, match="duplicate id 'x'"):
        load_entries(tmp_path / "a")
    write_kb(tmp_path / "b", [{"id": "y", "question": "Q?"}])
    with pytest.raises(KnowledgeBaseError, match="entry 0"):
        load_entries(tmp_path / "b")


def test_index_search_and_skip_when_unchanged(tmp_path: Path, embedder: Embedder) -> None:
    kb_dir, out = tmp_path / "kb", tmp_path / "index"
    write_kb(kb_dir, [
        {"id": "ship", "question": "How long does delivery take?", "alternatives": ["shipping time"],
         "answer": "Two to four working days."},
        {"id": "pay", "question": "Which payment methods do you accept?", "alternatives": ["pay by card"],
         "answer": "Cards and PayPal."},
        {"id": "ret", "question": "How do I return an item?", "alternatives": ["send it back"],
         "answer": "Within 30 days."},
    ])
    first = build_index(load_entries(kb_dir), embedder, out)
    assert not first.skipped and first.manifest.vectors == 6 and first.manifest.kind == "flat"
    assert build_index(load_entries(kb_dir), embedder, out).skipped
    hits = KnowledgeBase(out, embedder).search("can I pay with my credit card", k=2)
    assert hits[0].entry_id == "pay" and hits[0].score > hits[1].score
    assert len({h.entry_id for h in hits}) == 2
    write_kb(kb_dir, [{"id": "only", "question": "Do you sell kettles?", "answer": "Yes."}])
    rebuilt = build_index(load_entries(kb_dir), embedder, out)
    assert not rebuilt.skipped and rebuilt.manifest.entries == 1


def test_demo_faq_finds_the_right_entry(tmp_path: Path, embedder: Embedder) -> None:
    build_index(load_entries(ROOT / "knowledge_base"), embedder, tmp_path)
    kb = KnowledgeBase(tmp_path, embedder)
    assert kb.search("how do I season my cast iron pan", 1)[0].entry_id == "care-season-cast-iron"
    assert kb.search("", 3) == []


def test_a_message_near_a_question_the_faq_leaves_unanswered_carries_that_nearness(
        tmp_path: Path, embedder: Embedder) -> None:
    kb_dir, out = tmp_path / "kb", tmp_path / "index"
    write_kb(kb_dir, [
        {"id": "code", "question": "How do I use a discount code?",
         "alternatives": ["where do I enter my promo code"],
         "unanswered": ["do students get a discount", "is there a discount for nurses"],
         "answer": "Enter it in the Discount code field at checkout."},
        {"id": "ship", "question": "How long does delivery take?", "answer": "Two to four working days."},
    ])
    build_index(load_entries(kb_dir), embedder, out)
    kb = KnowledgeBase(out, embedder)
    near = kb.search("is there a student discount?", k=2)
    assert near[0].near_miss_question == "do students get a discount"
    assert near[0].near_miss is not None and near[0].near_miss > max(h.score for h in near)
    far = kb.search("where do I type in my promo code?", k=2)
    assert far[0].entry_id == "code" and far[0].near_miss is not None and far[0].near_miss < far[0].score
    write_kb(kb_dir, [{"id": "only", "question": "Do you sell kettles?", "answer": "Yes."}])
    build_index(load_entries(kb_dir), embedder, out)
    assert KnowledgeBase(out, embedder).search("do you sell teapots?", k=1)[0].near_miss is None
