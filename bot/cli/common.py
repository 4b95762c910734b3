"""What every command shares: the console it prints to and the settings it starts from."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from bot.config import Settings

console = Console(stderr=True)
RASA_OPTION = typer.Option(None, "--rasa", help="Run a Rasa 3 project folder (config.yml, domain.yml, "
                                                "data/, endpoints.yml) instead of the demo "
                                                "(SUPPORTBOT_RASA__PROJECT).")


def load_settings(rasa: Path | None = None) -> Settings:
    """The settings from the environment, with every model library kept offline; with `rasa` (or
    SUPPORTBOT_RASA__PROJECT), serving that Rasa project. Its notices are printed once."""
    from bot.encoders.paths import offline

    offline()
    settings = Settings()
    project = rasa or settings.rasa.project
    if project is None:
        return settings
    from bot.rasa.project import ProjectError, RasaProject

    try:
        loaded = RasaProject.load(project)
    except (ProjectError, OSError) as exc:
        console.print(f"[red]{exc}[/]", highlight=False)
        raise typer.Exit(2) from exc
    for notice in loaded.notices:
        console.print(f"[yellow]notice:[/] {notice}", highlight=False)
    return settings.for_rasa_project(project, loaded.config.language)
