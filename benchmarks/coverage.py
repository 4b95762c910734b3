"""The FAQ coverage check (bot/knowledge/coverage.py): does it catch questions the FAQ cannot answer
without flagging the ones it can?

Each question is searched with the product's KnowledgeBase (an index built for the run from
knowledge_base/) and the check runs on the top hit:
- unanswerable: benchmarks/data/coverage_calibration.yml, questions we wrote that no entry answers
  (share flagged: higher is better, goal >= 80 %);
- answerable: benchmarks/data/faq_paraphrases.yml plus the calibration file's narrative/typo
  questions, where the top hit is the right entry (share flagged: lower is better, goal <= 3 %);
  those whose top hit is wrong are counted apart (flagging them is right);
over a sweep of the margin; the near-miss check (the question nearer to one of the FAQ's
`unanswered` questions than to the top entry's phrasings, by a margin) and both together as the
product runs them; and, for comparison, sentence-vector occlusion (the cosine gain with the
entry's best phrasing when a word the entry lacks is left out). Time per check: `uncovered` one
question at a time, entry vectors cached as in service (and the first check of each entry apart).

    .venv/bin/python benchmarks/coverage.py        # about 1 min on 2 cores
"""

from __future__ import annotations

import json
import os
import platform
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml
from common import RESULTS, ROOT, arg_parser
from rich.console import Console
from rich.table import Table

from bot.config import Thresholds
from bot.encoders.paths import display_name, offline
from bot.knowledge.coverage import MARGIN, SCORE_WEIGHT, Assessment, CoverageCheck, bare, same_word
from bot.knowledge.embedder import Embedder
from bot.knowledge.index import build_index
from bot.knowledge.loader import FaqEntry, load_entries
from bot.knowledge.retriever import KnowledgeBase
from bot.knowledge.words import content_words
from bot.stats import percentile

console = Console(width=150)
UNANSWERED_MARGIN = Thresholds().unanswered_margin or 0.0  # as the bot runs
MARGINS = (0.50, 0.55, 0.57, 0.58, 0.59, 0.60, 0.62, 0.65, 0.70)
OCCLUSION = (0.06, 0.08, 0.10, 0.12, 0.14)
NEAR_MISS = (-0.05, -0.03, 0.0, 0.05)
HEAD = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
UNANSWERED_HEAD = Thresholds().unanswered_head or 1.0  # as the bot runs


@dataclass
class Case:
    text: str
    kind: str  # unanswerable | answerable | narrative (answerable, with story words and typos)
    entry: str | None  # the answering entry; None when none does
    hit: str = ""
    score: float = 0.0  # the best cosine among the top 3 hits (the bot searches 3)
    near_miss: float | None = None  # the cosine with the nearest question the FAQ marks unanswered
    unanswered_p: float | None = None  # the unanswered head's probability (knowledge/ranker.py)
    assessment: Assessment | None = None
    rises: list[float] | None = None

    @property
    def right_hit(self) -> bool:
        return self.entry is not None and self.hit == self.entry


def load_cases() -> list[Case]:
    calibration = yaml.safe_load((ROOT / "data" / "coverage_calibration.yml").read_text(encoding="utf-8"))
    paraphrases = yaml.safe_load((ROOT / "data" / "faq_paraphrases.yml").read_text(encoding="utf-8"))
    return ([Case(q["text"], "unanswerable", None) for q in calibration["unanswerable"]]
            + [Case(q["text"], "answerable", q["entry"]) for q in paraphrases["queries"]]
            + [Case(q["text"], "narrative", q["entry"]) for q in calibration["answerable"]])


def occlusion_rises(embedder: Embedder, question: str, entry: FaqEntry) -> list[float]:
    """The baseline: per content word the entry lacks, how much the question's cosine with the
    entry's best phrasing rises when the word is left out (one batched encode)."""
    text = " ".join([*entry.phrasings, entry.answer]).lower()
    known = {bare(w) for w in re.findall(r"[a-z][a-z'-]*", text)}
    missing = [w for w in dict.fromkeys(re.findall(r"[A-Za-z][A-Za-z'-]*", question))
               if content_words(bare(w)) and not any(same_word(bare(w), k) for k in known)]
    if len(question.split()) < 3 or not missing:
        return []
    variants = [re.sub(r"\s{2,}", " ", re.sub(rf"(?<![\w'-]){re.escape(w)}(?![\w'-])", "", question))
                for w in missing]
    vectors = embedder.encode([question, *variants, *entry.phrasings])
    best = (vectors[:len(missing) + 1] @ vectors[len(missing) + 1:].T).max(axis=1)
    return [float(b - best[0]) for b in best[1:]]


def share(cases: list[Case], flagged) -> float | None:
    return round(sum(map(flagged, cases)) / len(cases), 4) if cases else None


def near(c: Case, m: float) -> bool:
    return c.near_miss is not None and c.near_miss >= c.score + m


def head(c: Case, t: float) -> bool:
    return c.unanswered_p is not None and c.unanswered_p >= t


def by_default(c: Case) -> bool:
    """Flagged as the bot runs: any of the three checks."""
    return bool(c.assessment.unaddressed()) or near(c, UNANSWERED_MARGIN) or head(c, UNANSWERED_HEAD)


def sweep(cases: list[Case]) -> list[dict]:
    groups = {
        "unanswerable": [c for c in cases if c.kind == "unanswerable"],
        "answerable": [c for c in cases if c.kind != "unanswerable" and c.right_hit],
        "narrative": [c for c in cases if c.kind == "narrative" and c.right_hit],
        "answerable_wrong_hit": [c for c in cases if c.kind != "unanswerable" and not c.right_hit],
    }
    rows = []
    for margin in MARGINS:
        rows.append({"method": "coverage", "threshold": f"margin {margin:.2f}", **{
            name: share(group, lambda c, m=margin: bool(c.assessment.unaddressed(m, SCORE_WEIGHT)))
            for name, group in groups.items()}})
    for m in NEAR_MISS:
        rows.append({"method": "near miss", "threshold": f"margin {m:+.2f}", **{
            name: share(group, lambda c, m=m: near(c, m)) for name, group in groups.items()}})
    for t in HEAD:
        rows.append({"method": "unanswered head", "threshold": f"p >= {t:.1f}", **{
            name: share(group, lambda c, t=t: head(c, t)) for name, group in groups.items()}})
    both = f"{MARGIN:.2f} / {UNANSWERED_MARGIN:+.2f}"
    rows.append({"method": "coverage + near miss", "threshold": both, **{
        name: share(group, lambda c: bool(c.assessment.unaddressed(MARGIN, SCORE_WEIGHT))
                    or near(c, UNANSWERED_MARGIN)) for name, group in groups.items()}})
    rows.append({"method": "all three (default)",
                 "threshold": f"{MARGIN:.2f} / {UNANSWERED_MARGIN:+.2f} / p >= {UNANSWERED_HEAD:.1f}", **{
                     name: share(group, by_default) for name, group in groups.items()}})
    for rise in OCCLUSION:
        rows.append({"method": "occlusion", "threshold": f"rise {rise:.2f}", **{
            name: share(group, lambda c, r=rise: any(x >= r for x in c.rises))
            for name, group in groups.items()}})
    return rows


def main() -> None:
    arg_parser(__doc__).parse_args()
    offline()
    embedder = Embedder()
    cases = load_cases()
    with tempfile.TemporaryDirectory() as tmp:  # the knowledge base as it is now
        build_index(load_entries(ROOT.parent / "knowledge_base"), embedder, Path(tmp), force=True)
        kb = KnowledgeBase(Path(tmp), embedder)
    entries = {e.id: e for e in kb.entries}
    for case, hits in zip(cases, kb.search_batch([c.text for c in cases], k=3), strict=True):  # the bot's k
        case.hit, case.score, case.near_miss = hits[0].entry_id, max(h.score for h in hits), hits[0].near_miss
        case.unanswered_p = hits[0].unanswered_p

    check = CoverageCheck(embedder.encode_tokens, kb.entries)
    first = []
    for case in cases:  # a fresh check: the first question on each entry also encodes the entry
        t0 = time.perf_counter()
        check.uncovered(case.text, entries[case.hit])
        first.append((time.perf_counter() - t0) * 1000)
    warm = []
    for case in cases:  # the same again, entries cached: what a running bot mostly sees
        t0 = time.perf_counter()
        case.assessment = check.assess(case.text, entries[case.hit])
        warm.append((time.perf_counter() - t0) * 1000)
        case.rises = occlusion_rises(embedder, case.text, entries[case.hit])
    results = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "embedder": display_name(embedder.path),
        "index": "built for the run from knowledge_base/",
        "defaults": {"margin": MARGIN, "score_weight": SCORE_WEIGHT, "unanswered_margin": UNANSWERED_MARGIN,
                     "unanswered_head": UNANSWERED_HEAD},
        "questions": {k: sum(c.kind == k for c in cases)
                      for k in ("unanswerable", "answerable", "narrative")},
        "right_top_hit": sum(c.right_hit for c in cases if c.entry),
        "sweep": sweep(cases),
        "check_ms": {"p50": round(percentile(warm, 50), 2), "p95": round(percentile(warm, 95), 2),
                     "first_pass_p50": round(percentile(first, 50), 2),
                     "first_pass_p95": round(percentile(first, 95), 2), "checks": len(warm)},
        "flagged_at_default": [
            {"text": c.text, "kind": c.kind, "hit": c.hit, "words": c.assessment.unaddressed(),
             "near_miss": near(c, UNANSWERED_MARGIN), "unanswered_p": c.unanswered_p}
            for c in cases if by_default(c) and (c.kind == "unanswerable" or c.right_hit)],
        "missed_at_default": [c.text for c in cases if c.kind == "unanswerable" and not by_default(c)],
    }
    show(results)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "coverage.json"
    out.write_text(json.dumps(results, indent=2))
    console.print(f"wrote {out}")


def show(results: dict) -> None:
    q = results["questions"]
    table = Table(title=f"FAQ coverage check ({results['embedder']}): % flagged on the top hit")
    for col in ("method", "threshold", f"unanswerable ({q['unanswerable']}) ↑", "answerable, right hit ↓",
                "narrative ↓", "answerable, wrong hit"):
        table.add_column(col, justify="left" if col in ("method", "threshold") else "right")

    def pct(value: float | None) -> str:
        return "–" if value is None else f"{value * 100:.1f}"

    for r in results["sweep"]:
        table.add_row(r["method"], r["threshold"], pct(r["unanswerable"]), pct(r["answerable"]),
                      pct(r["narrative"]), pct(r["answerable_wrong_hit"]))
    console.print(table)
    ms = results["check_ms"]
    console.print(f"time per check: p50 {ms['p50']:.1f} ms, p95 {ms['p95']:.1f} ms, entry vectors cached; "
                  f"first pass (an entry's first check also encodes it) p50 {ms['first_pass_p50']:.1f} ms, "
                  f"p95 {ms['first_pass_p95']:.1f} ms ({ms['checks']} questions)")


if __name__ == "__main__":
    main()
