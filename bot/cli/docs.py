"""`supportbot config-reference`: docs/configuration.md, generated from the Settings fields."""

from __future__ import annotations

from pathlib import Path

import typer

from bot.cli.common import console


def config_reference_cmd(
    out: Path = typer.Option(Path("docs/configuration.md"), help="Where to write it; `-` prints it."),
    check: bool = typer.Option(False, help="Write nothing; exit 1 when the file is not current."),
) -> None:
    """Write the configuration reference (every SUPPORTBOT_* variable, its default and meaning)."""
    from bot.config_reference import render

    text = render()
    if check:
        current = out.exists() and out.read_text(encoding="utf-8") == text
        console.print(f"{out}: {'current' if current else 'stale: run supportbot config-reference'}")
        raise typer.Exit(0 if current else 1)
    if str(out) == "-":
        typer.echo(text, nl=False)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    console.print(f"wrote {out}")
