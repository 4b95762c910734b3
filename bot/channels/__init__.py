"""The channel registry: one line per messaging platform.

Each module exposes `from_settings(settings, http) -> Channel | None` (None when its secrets are not
set). Adding a platform = writing `bot/channels/<name>.py` and one line here.
"""

from __future__ import annotations

import importlib

import httpx

from bot.channels.base import Channel
from bot.config import Settings

REGISTRY: dict[str, str] = {
    "telegram": "bot.channels.telegram",
    "whatsapp": "bot.channels.whatsapp",
    "messenger": "bot.channels.messenger",
    "slack": "bot.channels.slack",
    "twilio": "bot.channels.twilio",
}


def enabled_channels(settings: Settings, http: httpx.AsyncClient) -> dict[str, Channel]:
    channels: dict[str, Channel] = {}
    for name, module in REGISTRY.items():
        channel = importlib.import_module(module).from_settings(settings, http)
        if channel is not None:
            channels[name] = channel
    return channels
