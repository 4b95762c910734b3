"""Resolution benchmark: the development set of Kettle & Kin conversations
(benchmarks/data/conversations/, written for the fictional shop, kept out of training data) run
through the pipeline in process, as `supportbot test` runs them, for the default setup and ablations.

Per conversation: resolved = every expectation of every turn met. Reported: resolution overall and
per category; hand-off precision and recall (turns); false hand-offs (conversations handed off where
no turn asked for it); replies in the wrong language; invented answers (a composed sentence found in
no FAQ answer); unanswerable questions refused or handed off; turns of resolved conversations.

    .venv/bin/python benchmarks/conversations.py [--only default] [--data DIR]
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import re
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from benchmarks.common import RESULTS, arg_parser  # noqa: E402
from benchmarks.variants import INDEX_RUNTIME, with_recipe  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.conversation_tests.judge import HAN, Observation, language_of  # noqa: E402
from bot.conversation_tests.runner import InProcessBot, Result, StepResult, run_all  # noqa: E402
from bot.conversation_tests.spec import Conversation, load  # noqa: E402
from bot.knowledge.loader import load_entries  # noqa: E402
from bot.knowledge.retriever import KnowledgeBase  # noqa: E402
from bot.resolution import TurnOutcome, resolved  # noqa: E402
from bot.types import Reply  # noqa: E402

DATA = Path(__file__).resolve().parent / "data" / "conversations"
SENTENCE = re.compile(r"(?<=[.!?。！？])\s*")


class Tally:
    """Counts over every turn of one setup."""

    def __init__(self, faq_sentences: set[str]) -> None:
        self.faq_sentences = faq_sentences
        self.n: dict[str, int] = defaultdict(int)
        self.outcomes: dict[str, list[TurnOutcome]] = defaultdict(list)  # what transcripts would hold

    def turn(self, conversation: Conversation, step: StepResult, seen: Observation) -> None:
        if seen.action is not None:
            self.outcomes[conversation.id].append(TurnOutcome(
                seen.action.kind, seen.action.name, seen.action.understood, seen.action.feedback))
        expected = step.step.expect.handoff is True
        handed = bool(seen.session and seen.session.handoff) and not seen.handoff_before
        self.n["handoff_expected"] += expected
        self.n["handoff_done"] += handed
        self.n["handoff_true_positive"] += expected and handed
        asked = step.step.user or ""
        wanted = step.step.expect.language or (("zh" if HAN.search(asked) else "en")
                                               if len(asked.split()) >= 3 or HAN.search(asked) else None)
        replies = [r.text for r in seen.replies if r.text.strip()]
        self.n["replies"] += len(replies)
        if wanted:
            self.n["wrong_language"] += sum(language_of(text) != wanted for text in replies)
        if seen.action is not None and seen.action.kind == "generate" and seen.action.name == "answered":
            self.n["composed"] += 1
            self.n["invented"] += any(self._invented(_without_sources(r)) for r in seen.replies)

    def _invented(self, text: str) -> bool:
        sentences = [_norm(s) for s in SENTENCE.split(re.sub(r"\s*\[\d+\]", "", text)) if len(s.split()) > 3]
        return any(s and not any(s in known for known in self.faq_sentences) for s in sentences)


def _without_sources(reply: Reply) -> str:
    """The answer without its sources line (the cited entries' questions, not a statement)."""
    titles = [source.title for source in reply.sources]
    return "\n\n".join(p for p in reply.text.split("\n\n") if not any(t in p for t in titles))


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.casefold()).split())


async def run_setup(settings: Settings, conversations: list[Conversation], generator: bool,
                    ranker: bool, faq_sentences: set[str]) -> dict[str, Any]:
    from bot.services import FROM_SETTINGS, build_services, load_models

    nlu, knowledge = load_models(settings)
    if not ranker:
        for kb in _knowledge_bases(knowledge):
            kb.ranker.coef = kb.ranker.intercept = None
    tally = Tally(faq_sentences)
    started = time.perf_counter()
    async with build_services(settings, (nlu, knowledge), FROM_SETTINGS if generator else None) as services:
        results = await run_all(InProcessBot(services), conversations, services.domain, tally.turn)
    return summarise(results, tally, time.perf_counter() - started)


def _knowledge_bases(knowledge: Any) -> list[KnowledgeBase]:
    if isinstance(knowledge, KnowledgeBase):
        return [knowledge]
    return [v for v in vars(knowledge).values() if isinstance(v, KnowledgeBase)]


def summarise(results: list[Result], tally: Tally, seconds: float) -> dict[str, Any]:
    by_category: dict[str, list[Result]] = defaultdict(list)
    for r in results:
        by_category[r.conversation.category].append(r)
    n = tally.n
    unexpected_handoff = sum(
        1 for r in results
        if not any(s.step.expect.handoff for s in r.steps)
        and any(f.startswith("handoff: expected False") for s in r.steps for f in s.failures))
    unanswerable = by_category.get("unanswerable", [])
    passed = [r for r in results if r.passed]
    answerable = [r for r in results if _expects_an_answer(r.conversation)]
    by_transcript = {r.conversation.id: resolved(tally.outcomes.get(r.conversation.id, [])) for r in results}
    return {
        "conversations": len(results),
        "resolution": round(len(passed) / len(results), 4),
        # bot.resolution's definition, which production transcripts allow (it counts a correct
        # hand-off or refusal as unresolved), and how often the two agree where the bot should answer
        "resolution_transcript_definition": round(sum(by_transcript.values()) / len(results), 4),
        "definitions_agree": _ratio(sum(by_transcript[r.conversation.id] == r.passed for r in answerable),
                                    len(answerable)),
        "per_category": {c: {"n": len(rs), "resolution": round(sum(r.passed for r in rs) / len(rs), 4)}
                         for c, rs in sorted(by_category.items())},
        "handoff_precision": _ratio(n["handoff_true_positive"], n["handoff_done"]),
        "handoff_recall": _ratio(n["handoff_true_positive"], n["handoff_expected"]),
        "false_handoffs": round(unexpected_handoff / len(results), 4),
        "wrong_language_replies": n["wrong_language"],
        "replies": n["replies"],
        "composed_answers": n["composed"],
        "invented_answers": n["invented"],
        "unanswerable_refused_or_handed_off": _ratio(sum(r.passed for r in unanswerable), len(unanswerable)),
        "turns_to_resolution": _ratio(sum(len(r.steps) for r in passed), len(passed), 2),
        "seconds": round(seconds, 1),
        "failed": {r.conversation.id: _first_failure(r) for r in results if not r.passed},
    }


def _first_failure(result: Result) -> str:
    """The failed step's message, what went wrong and the bot's first reply: enough to triage."""
    if result.error:
        return result.error
    for step in result.steps:
        if step.failures:
            reply = step.replies[0].text[:160] if step.replies else "(no reply)"
            return f"{step.step.said!r}: {'; '.join(step.failures)} -> {reply!r}"
    return "unknown"


def _expects_an_answer(conversation: Conversation) -> bool:
    """The bot should resolve it alone: some turn expects an answer or a form done, none a hand-off
    or a refusal."""
    expects = [s.expect for s in conversation.steps]
    return (any(e.faq or e.faq_all or e.form_completed for e in expects)
            and not any(e.handoff or e.refuses or e.offers_handoff for e in expects))


def _ratio(part: int, whole: int, digits: int = 4) -> float | None:
    return round(part / whole, digits) if whole else None


def faq_sentences(settings: Settings) -> set[str]:
    """Every FAQ answer (and translation), normalised: what a composed sentence may quote."""
    texts = []
    for entry in load_entries(settings.knowledge_base):
        texts.append(entry.answer)
        texts += [t.answer for t in entry.translations.values() if t.answer]
    return {_norm(t) for t in texts}


# name: (generator, entry ranker, settings changed)
SETUPS: dict[str, tuple[bool, bool, dict[str, Any]]] = {
    "default": (True, True, {}),
    "no generation": (False, True, {}),
    "no entry ranker": (True, False, {}),
    "no intent rerank": (True, True, {"thresholds.entry_intent_weight": 0.0}),
    "no coverage check": (True, True, {"thresholds.coverage_margin": None}),
    "no near-miss check": (True, True, {"thresholds.unanswered_margin": None}),
    "no unanswered head": (True, True, {"thresholds.unanswered_head": None}),
    "no unanswered checks": (True, True, {"thresholds.unanswered_margin": None,
                                          "thresholds.unanswered_head": None}),
    "no spelling correction": (True, True, {"models.spelling": False}),
    "two encoder passes": (True, True, {"models.share_encoder": False}),
    "torch (the default before int8)": (True, True, {"models.nlu_runtime": "torch",
                                                     "models.embedder_runtime": "torch"}),
    "ONNX int8, index built with torch": (True, True, {"models.nlu_runtime": "onnx-int8",
                                                       "models.embedder_runtime": "onnx-int8",
                                                       INDEX_RUNTIME: "torch"}),
    "all layers tuned": (True, True, {"train.tuned_layers": None}),
    "top 3 layers tuned": (True, True, {"train.tuned_layers": 3}),
    "6 epochs": (True, True, {"train.epochs": 6}),
    "label smoothing 0.1": (True, True, {"train.label_smoothing": 0.1}),
    "R-Drop 1 + label smoothing 0.1": (True, True, {"train.rdrop": 1.0, "train.label_smoothing": 0.1}),
    "out of scope by k-NN distance": (True, True, {"train.oos_method": "knn"}),
    "out of scope by Mahalanobis distance": (True, True, {"train.oos_method": "mahalanobis"}),
}


def main() -> None:
    parser = arg_parser(__doc__)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--only", choices=sorted(SETUPS), action="append")
    args = parser.parse_args()
    os.environ.setdefault("SUPPORTBOT_BUSINESS_HOURS", "Mon-Sun 00:00-24:00")  # agents on duty
    os.environ.setdefault("SUPPORTBOT_TIMEZONE", "UTC")
    from bot.assets import ensure_assets
    from bot.encoders.paths import offline

    offline()
    settings = Settings()
    ensure_assets(settings, Console(stderr=True))
    conversations = load([args.data])
    known = faq_sentences(settings)
    rows = {}
    for name in args.only or list(SETUPS):
        generator, ranker, changes = SETUPS[name]
        rows[name] = asyncio.run(run_setup(with_recipe(settings, changes), conversations, generator,
                                           ranker, known))
    show(rows)
    manifest = json.loads((settings.model_dir / "manifest.json").read_text())
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "conversations.json"
    if args.only and out.exists():  # a partial run updates its rows and keeps the others
        rows = {**json.loads(out.read_text()).get("rows", {}), **rows}
    result = {"data": str(args.data), "model": manifest.get("mode"),
              "recipe": {k: manifest.get(k) for k in ("frozen_layers", "epochs_run", "train_seconds")},
              "generation": settings.generation.backend, "rows": rows,
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version()}}
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False))


def show(rows: dict[str, dict[str, Any]]) -> None:
    table = Table(title="Conversations resolved (development set)")
    keys = ["resolution", "resolution_transcript_definition", "definitions_agree", "handoff_precision",
            "handoff_recall", "false_handoffs", "wrong_language_replies", "invented_answers",
            "unanswerable_refused_or_handed_off", "turns_to_resolution"]
    table.add_column("setup")
    for k in keys:
        table.add_column(k.replace("_", " "), justify="right")
    for name, row in rows.items():
        table.add_row(name, *[str(row[k]) for k in keys])
    Console(width=200).print(table)
    categories = Table(title="Resolution per category")
    categories.add_column("category")
    for name in rows:
        categories.add_column(name, justify="right")
    first = next(iter(rows.values()))
    for c, v in first["per_category"].items():
        categories.add_row(f"{c} ({v['n']})", *[str(rows[n]["per_category"][c]["resolution"]) for n in rows])
    Console(width=200).print(categories)


if __name__ == "__main__":
    main()
