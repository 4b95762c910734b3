"""What every command shares: the console it prints to and the settings it starts from."""

from __future__ import annotations

from rich.console import Console

from bot.config import Settings

console = Console(stderr=True)


def load_settings() -> Settings:
    """The settings from the environment, with every model library kept offline."""
    from bot.encoders.paths import offline

    offline()
    return Settings()
