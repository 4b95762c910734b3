"""Whether the intent model and the FAQ embedder share one pass per message (bot.encoders.shared),
and which runtime each runs on: decided from the settings and the model's manifest alone, so
training, indexing, promotion and start-up agree without loading a network."""

from __future__ import annotations

from bot.config import Settings
from bot.config.groups import ModelSettings
from bot.encoders.e5 import is_e5
from bot.encoders.manifest import Manifest
from bot.encoders.paths import resolve

INT8, TORCH = "onnx-int8", "torch"


def runtimes(settings: Settings, manifest: Manifest | None) -> tuple[str, str]:
    """(the intent model's runtime, the FAQ embedder's runtime), `auto` resolved: ONNX int8 where it
    was measured to win, a fine-tuned model sharing its lower layers with the FAQ embedder (one int8
    graph for both; benchmarks/README.md, int8 by default), torch elsewhere (the frozen tiny-data
    head, another encoder, no model yet)."""
    models = settings.models
    auto = INT8 if manifest is not None and _can_share(models, manifest) else TORCH
    return (auto if models.nlu_runtime == "auto" else models.nlu_runtime,
            auto if models.embedder_runtime == "auto" else models.embedder_runtime)


def current_runtimes(settings: Settings) -> tuple[str, str]:
    """`runtimes` for the model trained into `settings.model_dir` (none yet: as for no model)."""
    has_model = (settings.model_dir / "manifest.json").exists()
    return runtimes(settings, Manifest.load(settings.model_dir) if has_model else None)


def shared_embedder(settings: Settings, manifest: Manifest) -> str | None:
    """The FAQ embedder's folder when it and the intent model share one pass per message
    (bot.encoders.shared): the model kept that encoder's lower layers, both run on the same
    runtime, and sharing is on. None: each runs its own pass."""
    nlu, embedder = runtimes(settings, manifest)
    if nlu != embedder or not _can_share(settings.models, manifest):
        return None
    return resolve(settings.models.embedder)


def _can_share(models: ModelSettings, manifest: Manifest) -> bool:
    return (models.share_encoder and not is_e5(models.embedder)
            and manifest.shares_encoder_with(resolve(models.embedder)))
