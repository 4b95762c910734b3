"""`python -m bot.cli ...`: the `supportbot` command."""

from bot.cli import app

app()
