"""`supportbot test`: conversation tests (ours and Rasa test stories) against the bot."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer

from bot.cli.common import console, load_settings
from bot.config import Settings

DEFAULT_TESTS = Path("tests/conversations")


def test_cmd(
    files: list[Path] = typer.Argument(None, help="Test files or folders (default: tests/conversations)."),
    url: str | None = typer.Option(None, help="Test a running server (e.g. http://127.0.0.1:8000) "
                                              "instead of the pipeline in process."),
    junit: Path | None = typer.Option(None, help="Also write the results as JUnit XML here."),
) -> None:
    """Run conversation tests; exits 1 when one fails, 2 when a test file cannot be read."""
    from bot.conversation_tests.report import junit as write_junit
    from bot.conversation_tests.report import show
    from bot.conversation_tests.spec import SpecError, load

    try:
        conversations = load(files or [DEFAULT_TESTS])
    except (SpecError, OSError) as exc:
        console.print(f"[red]{exc}[/]", highlight=False)
        raise typer.Exit(2) from exc
    if not conversations:
        console.print("[red]no conversations found[/]")
        raise typer.Exit(2)
    settings = load_settings()
    results = asyncio.run(_run(settings, conversations, url))
    show(results, console)
    if junit is not None:
        write_junit(results, junit)
    raise typer.Exit(0 if all(r.passed for r in results) else 1)


async def _run(settings: Settings, conversations: list, url: str | None) -> list:
    import httpx

    from bot.conversation_tests.runner import HttpBot, InProcessBot, run_all
    from bot.dialogue.domain import Domain

    domain = Domain.load(settings.domain_file, languages=settings.languages)
    if url:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            return await run_all(HttpBot(client), conversations, domain)
    from bot.assets import ensure_assets
    from bot.services import build_services

    ensure_assets(settings, console)
    async with build_services(settings) as services:
        return await run_all(InProcessBot(services), conversations, domain)
