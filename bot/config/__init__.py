"""Configuration: one `Settings` object (env prefix SUPPORTBOT_), grouped per concern; the reference
docs/configuration.md is generated from it (bot/config_reference.py)."""

from __future__ import annotations

from bot.config.channels import (
    ChatwootSettings,
    MessengerSettings,
    MetaSettings,
    SlackSettings,
    TelegramSettings,
    TwilioSettings,
    WhatsAppSettings,
)
from bot.config.groups import (
    AttachmentSettings,
    ConsoleSettings,
    HandoffSettings,
    InferenceSettings,
    LimitSettings,
    ModelSettings,
    RedisSettings,
    SessionSettings,
    StorageSettings,
    WebSettings,
)
from bot.config.recipes import (
    DialogueSettings,
    GenerationSettings,
    RasaSettings,
    RateLimitSettings,
    Thresholds,
    TrainSettings,
)
from bot.config.settings import Settings, reveal

__all__ = [
    "AttachmentSettings", "ChatwootSettings", "ConsoleSettings", "DialogueSettings", "GenerationSettings",
    "HandoffSettings",
    "InferenceSettings",
    "LimitSettings", "MessengerSettings", "MetaSettings", "ModelSettings", "RasaSettings",
    "RateLimitSettings",
    "RedisSettings", "SessionSettings", "Settings", "SlackSettings", "StorageSettings", "TelegramSettings",
    "Thresholds", "TrainSettings", "TwilioSettings", "WebSettings", "WhatsAppSettings", "reveal",
]
