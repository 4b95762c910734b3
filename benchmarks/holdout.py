"""The hold-out conversations (`data/holdout/conversations.yml`, read by no one tuning the bot)
against the served demo, through the public API as the widget uses it: one row per setup, each a
fresh server on a loopback port with agents on duty. Only replies, buttons and the hand-off flag
are checked (what a customer sees). Rows are merged into benchmarks/results/holdout.json.

    .venv/bin/python benchmarks/holdout.py                 # the default and torch, about 3 min
    .venv/bin/python benchmarks/holdout.py --only default
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import subprocess
from collections import Counter
from pathlib import Path

import httpx
from common import RESULTS, arg_parser
from rich.console import Console
from rich.table import Table
from turn_latency import running_server
from variants import with_recipe

from bot.config import Settings
from bot.conversation_tests.runner import HttpBot, Result, run_all
from bot.conversation_tests.spec import load
from bot.dialogue.domain import Domain
from bot.encoders.paths import offline

DATA = Path(__file__).parent / "data" / "holdout" / "conversations.yml"
TORCH = {"models.nlu_runtime": "torch", "models.embedder_runtime": "torch"}
SETUPS: dict[str, dict] = {"default": {}, "torch (the default before int8)": TORCH}


def run_setup(settings: Settings) -> list[Result]:
    conversations = load([DATA])
    domain = Domain.load(settings.domain_file, languages=settings.languages)
    with running_server(settings) as client:
        async def go() -> list[Result]:
            async with httpx.AsyncClient(base_url=str(client.base_url), timeout=60) as http:
                return await run_all(HttpBot(http), conversations, domain)
        return asyncio.run(go())


def summary(results: list[Result]) -> dict:
    total, passed = Counter(), Counter()
    for r in results:
        category = r.conversation.category or "other"
        total[category] += 1
        passed[category] += r.passed
    resolved = sum(passed.values())
    return {"resolved": resolved, "conversations": len(results),
            "resolution": round(resolved / max(1, len(results)), 4),
            "per_category": {c: {"n": total[c], "resolved": passed[c]} for c in sorted(total)},
            "failed": [r.conversation.id for r in results if not r.passed]}


def main() -> None:
    parser = arg_parser(__doc__)
    parser.add_argument("--only", action="append", choices=sorted(SETUPS))
    args = parser.parse_args()
    os.environ.setdefault("SUPPORTBOT_BUSINESS_HOURS", "Mon-Sun 00:00-24:00")  # agents on duty
    os.environ.setdefault("SUPPORTBOT_TIMEZONE", "UTC")
    offline()
    settings = Settings()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    rows = {}
    for name in args.only or list(SETUPS):
        rows[f"{name} ({commit})"] = summary(run_setup(with_recipe(settings, SETUPS[name])))
    out = RESULTS / "holdout.json"
    previous = json.loads(out.read_text()) if out.exists() else {}
    result = {"data": str(DATA.relative_to(Path(__file__).parent.parent)),
              "how": "served demo, one fresh server per row (agents on duty), the public API through "
                     "bot.conversation_tests.HttpBot: replies, buttons and the hand-off flag only",
              "rows": {**previous.get("rows", {}), **rows},
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version()}}
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False))
    table = Table(title=f"Hold-out conversations ({DATA.name})")
    for col in ("setup", "resolved", "failed"):
        table.add_column(col)
    for name, row in rows.items():
        table.add_row(name, f"{row['resolved']} / {row['conversations']}", " ".join(row["failed"]))
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
