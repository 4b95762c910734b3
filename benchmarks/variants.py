"""A benchmark row that changes how the intent model is trained, or which runtime builds the FAQ
index, runs from a data folder of its own (`<data dir>/recipes/<name>/`), so rows never retrain or
re-index each other's files; conversations.py and turn_latency.py share it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console

from bot.config import Settings

INDEX_RUNTIME = "index built with"  # not a setting: the runtime a setup's FAQ index is built with


def with_recipe(settings: Settings, changes: dict[str, Any]) -> Settings:
    """`settings` with `changes`; a setup that trains its own intent model, or whose FAQ index is
    built by another runtime than the default's (its `auto` resolved for its model), gets a data
    folder of its own with that model trained and that index built into it; the rest (same data,
    multilingual model and index) is linked."""
    from bot.encoders.sharing import current_runtimes

    changes = dict(changes)
    forced = changes.pop(INDEX_RUNTIME, None)
    recipe = {k: v for k, v in changes.items() if k.startswith("train.")}
    new_model = bool(recipe) and settings.updated(recipe).train != settings.train
    default_runtime = current_runtimes(settings)[1]
    plain = settings.updated(changes)
    if not new_model and forced is None and current_runtimes(plain)[1] == default_runtime:
        return plain
    from bot.assets import build_faq_index, train_model
    from bot.knowledge.embedder import load_embedder

    name = "-".join(f"{k.split('.')[-1]}={v}" for k, v in sorted(
        {**changes, **({INDEX_RUNTIME: forced} if forced else {})}.items())).replace(" ", "_")
    data = settings.data_dir / "recipes" / name
    (data / "models").mkdir(parents=True, exist_ok=True)
    models = settings.data_dir / "models"
    _link([(data / "models" / p.name, p) for p in models.iterdir() if p.name != "intent" or not new_model])
    variant = settings.updated({**changes, "data_dir": data})
    manifest = variant.model_dir / "manifest.json"
    if new_model and (not manifest.exists() or json.loads(manifest.read_text())["data_hash"] != json.loads(
            (settings.model_dir / "manifest.json").read_text())["data_hash"]):
        train_model(variant, out=variant.model_dir, console=Console(stderr=True))
    runtime = forced or current_runtimes(variant)[1]
    if runtime == default_runtime:
        _link([(data / "index", settings.index_dir)])
        return variant
    (data / "index").mkdir(exist_ok=True)
    if settings.multilingual_index_dir is not None:
        _link([(data / "index" / settings.multilingual_index_dir.name, settings.multilingual_index_dir)])
    embedder = load_embedder(variant.models.embedder, runtime, data / "models" / "embedder")
    build_faq_index(variant, console=Console(stderr=True), embedder=embedder)
    return variant


def _link(pairs: list[tuple[Path, Path]]) -> None:
    for link, target in pairs:
        if not link.exists():
            link.symlink_to(target.resolve())
