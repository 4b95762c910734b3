"""A benchmark row that changes how the intent model is trained, or which runtime builds the FAQ
index, runs from a data folder of its own (`<data dir>/recipes/<name>/`), so rows never retrain or
re-index each other's files; conversations.py and turn_latency.py share it."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console

from bot.config import Settings

INDEX_RUNTIME = "index built with"  # not a setting: the runtime a setup's FAQ index is built with


def with_recipe(settings: Settings, changes: dict[str, Any]) -> Settings:
    """A setup that changes how the intent model is trained, or what the FAQ index is built with,
    gets a data folder of its own, with that model trained (or that index built) into it; the rest
    (same data, same multilingual model and index) is linked."""
    changes = dict(changes)
    recipe = {k: v for k, v in changes.items() if k.startswith("train.")}
    serving = changes.get("models.embedder_runtime", settings.models.embedder_runtime)
    runtime = changes.pop(INDEX_RUNTIME, serving)
    new_model = bool(recipe) and settings.updated(recipe).train != settings.train
    new_index = runtime != settings.models.embedder_runtime
    if not new_model and not new_index:
        return settings.updated(changes)
    from bot.assets import build_faq_index, train_model
    from bot.knowledge.embedder import load_embedder

    name = "-".join(f"{k.split('.')[1]}={v}" for k, v in sorted({**recipe, **(
        {"models.embedder_runtime": runtime} if new_index else {})}.items()))
    data = settings.data_dir / "recipes" / name
    (data / "models").mkdir(parents=True, exist_ok=True)
    models = settings.data_dir / "models"
    links = [(data / "models" / p.name, p) for p in models.iterdir() if p.name != "intent" or not new_model]
    if new_index:
        (data / "index").mkdir(exist_ok=True)
        multilingual = settings.multilingual_index_dir
        if multilingual is not None:
            links.append((data / "index" / multilingual.name, multilingual))
    else:
        links.append((data / "index", settings.index_dir))
    for link, target in links:
        if not link.exists():
            link.symlink_to(target.resolve())
    variant = settings.updated({**changes, "data_dir": data})
    manifest = variant.model_dir / "manifest.json"
    if new_model and (not manifest.exists() or json.loads(manifest.read_text())["data_hash"] != json.loads(
            (settings.model_dir / "manifest.json").read_text())["data_hash"]):
        train_model(variant, out=variant.model_dir, console=Console(stderr=True))
    if new_index:
        embedder = load_embedder(variant.models.embedder, runtime, data / "models" / "embedder")
        build_faq_index(variant, console=Console(stderr=True), embedder=embedder)
    return variant
