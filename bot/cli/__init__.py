"""supportbot's command line: train, index, serve, chat, test (conversation tests), ingest, discover,
export-review, retrain, purge (retention), forget (right to erasure), resolution (the bot's
resolution rate from the transcripts), config-reference and analytics (refresh or rebuild the
analytics page's rollup).

The commands live by theme (`learning`: models, FAQ and labels; `serving`: the server and the
terminal chat; `records`: agents, retention, erasure) and are registered here, in the order
`supportbot --help` lists them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer

from bot.cli import analytics, docs, learning, records, serving, testing
from bot.cli.common import console, load_settings

__all__ = ["app", "console"]

app = typer.Typer(help="supportbot: a self-hosted customer-service chatbot.", no_args_is_help=True)
_settings = load_settings  # the name scripts (benchmarks/cluster.py) import

_COMMANDS: list[tuple[str, Callable[..., Any]]] = [
    ("train", learning.train_cmd),
    ("index", learning.index_cmd),
    ("serve", serving.serve_cmd),
    ("chat", serving.chat_cmd),
    ("test", testing.test_cmd),
    ("create-agent", records.create_agent),
    ("export-nlu", learning.export_nlu),
    ("ingest", learning.ingest_cmd),
    ("discover", learning.discover_cmd),
    ("export-review", learning.export_review),
    ("purge", records.purge_cmd),
    ("forget", records.forget_cmd),
    ("resolution", records.resolution_cmd),
    ("retrain", learning.retrain_cmd),
    ("config-reference", docs.config_reference_cmd),
]
for _name, _command in _COMMANDS:
    app.command(_name)(_command)
app.add_typer(analytics.app, name="analytics")
