"""`supportbot test`: conversation tests (ours and Rasa test stories) against the bot."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer

from bot.cli.common import RASA_OPTION, console, load_settings
from bot.config import Settings

DEFAULT_TESTS = Path("tests/conversations")


def test_cmd(
    files: list[Path] = typer.Argument(None, help="Test files or folders (default: tests/conversations)."),
    url: str | None = typer.Option(None, help="Test a running server (e.g. http://127.0.0.1:8000) "
                                              "instead of the pipeline in process."),
    junit: Path | None = typer.Option(None, help="Also write the results as JUnit XML here."),
    rasa: Path | None = RASA_OPTION,
) -> None:
    """Run conversation tests; exits 1 when one fails, 2 when a test file cannot be read. With
    --rasa DIR: the project's test stories (its tests/, or FILES), evaluated as `rasa test` does."""
    if rasa is not None:
        raise typer.Exit(_rasa_tests(rasa, files, junit))
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


def _rasa_tests(project_dir: Path, files: list[Path] | None, junit: Path | None) -> int:
    """Intent and next-action predictions along each test story; 0 when every story passes."""
    from rich.table import Table

    from bot.assets import ensure_assets
    from bot.rasa.agent import RasaAgent
    from bot.rasa.dialogue import parse_data
    from bot.rasa.evaluate import describe, evaluate, junit_xml
    from bot.rasa.policies import PolicyEnsemble
    from bot.rasa.project import RasaProject
    from bot.rasa.stories import StoryError, read_stories
    from bot.services import load_models

    settings = load_settings(project_dir)
    project = RasaProject.load(project_dir)
    try:
        stories = read_stories(files or project.test_paths).stories
    except (StoryError, OSError) as exc:
        console.print(f"[red]{exc}[/]", highlight=False)
        return 2
    if not stories:
        console.print("[red]no test stories found[/]")
        return 2
    ensure_assets(settings, console)
    nlu, _ = load_models(settings)
    policies = PolicyEnsemble(project.domain, project.stories, project.config.max_history)
    agent = RasaAgent(project.domain, policies, nlu_fallback_threshold=project.config.nlu_fallback_threshold)

    async def parse(text: str) -> dict:
        return agent.apply_nlu_fallback(parse_data(await asyncio.to_thread(nlu.parse, text)))

    results = asyncio.run(evaluate(stories, project.domain, policies, parse))
    table = Table("story", "result", "actions", "intents", "no prediction")
    for r in results:
        table.add_row(r.name, "[green]passed[/]" if r.passed else "[red]failed[/]", str(r.actions),
                      str(r.intents), str(r.fallbacks))
    console.print(table)
    for r in results:
        for miss in r.misses:
            console.print(f"[red]{r.name}[/] ({r.source}): {describe(miss)}", highlight=False)
    passed = sum(r.passed for r in results)
    colour = "green" if passed == len(results) else "red"
    console.print(f"[{colour}]{passed}/{len(results)} test stories passed[/]", highlight=False)
    if junit is not None:
        junit.parent.mkdir(parents=True, exist_ok=True)
        junit_xml(results).write(junit, encoding="utf-8", xml_declaration=True)
    return 0 if passed == len(results) else 1
