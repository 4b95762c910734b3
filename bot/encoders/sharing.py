"""Whether the intent model and the FAQ embedder share one pass per message (bot.encoders.shared):
decided from the settings and the model's manifest alone, so training, promotion and start-up
agree without loading a network."""

from __future__ import annotations

from bot.config import Settings
from bot.encoders.e5 import is_e5
from bot.encoders.manifest import Manifest
from bot.encoders.paths import resolve


def shared_embedder(settings: Settings, manifest: Manifest) -> str | None:
    """The FAQ embedder's folder when it and the intent model share one pass per message
    (bot.encoders.shared): the model kept that encoder's lower layers, both run on the same
    runtime, and sharing is on. None: each runs its own pass."""
    models = settings.models
    if not models.share_encoder or models.nlu_runtime != models.embedder_runtime or is_e5(models.embedder):
        return None
    embedder = resolve(models.embedder)
    return embedder if manifest.shares_encoder_with(embedder) else None
