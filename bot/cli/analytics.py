"""`supportbot analytics refresh|rebuild`: keep the analytics page's rollup (bot/storage/rollup.py) current
from a terminal or cron, without opening the page."""

from __future__ import annotations

import typer

from bot.cli.common import console
from bot.cli.common import load_settings as _settings

app = typer.Typer(help="The analytics page's rollup: refresh the changed days, or rebuild it all.",
                  no_args_is_help=True)


@app.command("refresh")
def refresh_cmd() -> None:
    """Recompute the days changed since the last refresh (the page does this before each view; a
    nightly run keeps the list of changed days short when nobody opens the page)."""
    from bot.storage import rollup
    from bot.storage.db import make_engine, migrate

    engine = make_engine(_settings().resolved_database_url)
    migrate(engine)
    days = rollup.refresh(engine)
    console.print(f"refreshed {len(days)} day(s)" + (f": {days[0]} .. {days[-1]}" if days else ""))


@app.command("rebuild")
def rebuild_cmd() -> None:
    """Recompute the whole rollup from the stored transcripts (idempotent; for a database written
    while its triggers were missing, or after a restore)."""
    from bot.storage import rollup
    from bot.storage.db import make_engine, migrate

    engine = make_engine(_settings().resolved_database_url)
    migrate(engine)
    span = rollup.rebuild(engine)
    console.print("rebuilt: no transcripts" if span is None else f"rebuilt {span[0]} .. {span[1]}")
