"""Commands over the stored records: create-agent, purge (retention) and forget (erasure)."""

from __future__ import annotations

import asyncio
import json

import typer

from bot.cli.common import console
from bot.cli.common import load_settings as _settings
from bot.config import Settings


def create_agent(
    username: str = typer.Argument(..., help="Login name."),
    name: str = typer.Option(..., "--name", help="Name the customer sees."),
    role: str = typer.Option("admin", help="admin (can create agents) or agent."),
    password: str = typer.Option(..., prompt=True, hide_input=True, confirmation_prompt=True,
                                 envvar="SUPPORTBOT_AGENT_PASSWORD",
                                 help="Asked for when not in SUPPORTBOT_AGENT_PASSWORD."),
) -> None:
    """Create a console account (the first admin comes from here; later ones from /console/admin)."""
    from bot.handoff.agents import AgentError, AgentStore
    from bot.storage.agents import AgentRecords
    from bot.storage.db import make_engine, migrate

    settings = _settings()
    engine = make_engine(settings.resolved_database_url)
    migrate(engine)
    try:
        agent = AgentStore(AgentRecords(engine)).create(username, name, password, role)
    except AgentError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    url = f"http://{settings.web.host}:{settings.web.port}/console"
    console.print(f"created {agent.role} {agent.username!r}; log in at {url}")


def purge_cmd(days: int | None = typer.Option(
        None, min=0, help="Keep this many days (default SUPPORTBOT_TRANSCRIPT_RETENTION_DAYS; 0 keeps all).")
) -> None:
    """Delete transcripts older than the retention period: turns, conversations, form requests, agent
    messages, review entries and customers' images (the server also does this at start-up and once
    a day)."""
    from bot.services import open_records, purge_expired

    async def run(settings: Settings) -> dict[str, int]:
        async with open_records(settings) as records:
            return await purge_expired(settings, records.transcripts, records.review, days,
                                       attachments=records.attachments)

    counts = asyncio.run(run(_settings()))
    if not counts:
        console.print("retention is off (0 days): nothing purged")
        return
    console.print("purged " + ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in counts.items()))


def forget_cmd(conversation_ids: list[str] = typer.Argument(..., help="Conversation ids to erase.")) -> None:
    """Erase conversations everywhere (right to erasure): Redis session, reply cache and hand-off
    state, review entries, and every SQL table; prints what was deleted for each."""
    from bot.services import open_records
    from bot.web.privacy import erase_conversation

    async def run(settings: Settings) -> None:
        async with open_records(settings) as r:
            for cid in conversation_ids:
                counts = await erase_conversation(cid, r.store, r.review, r.transcripts, r.queue,
                                                  r.attachments)
                print(json.dumps({"conversation_id": cid, "erased": counts}))

    asyncio.run(run(_settings()))




def resolution_cmd(days: int | None = typer.Option(
        None, min=1, help="Only conversations started in the last DAYS days (default: all)."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a sentence.")) -> None:
    """The bot's resolution rate over the stored transcripts, with the conversation benchmark's
    definition (docs/learning-loop.md): not handed off, and confirmed by the customer or answered
    without a rejected or repeated answer."""
    from datetime import UTC, datetime, timedelta

    from bot.storage.db import TranscriptStore, make_engine, migrate

    engine = make_engine(_settings().resolved_database_url)
    migrate(engine)
    since = datetime.now(UTC) - timedelta(days=days) if days else None
    got = TranscriptStore(engine).resolution(since)
    if as_json:
        console.print_json(json.dumps({**vars(got), "rate": got.rate}))
        return
    rate = f"{got.rate:.1%}" if got.rate is not None else "n/a"
    console.print(f"{got.conversations} conversations: {rate} resolved by the bot; {got.handed_off} handed "
                  f"off; {got.confirmed} confirmed and {got.rejected} with a rejected or repeated answer")
