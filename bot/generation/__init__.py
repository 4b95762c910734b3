"""Generative fallback: backends registered in one table, chosen by `Settings.generation.backend`."""

from __future__ import annotations

import logging
from collections.abc import Callable

from bot.config import Settings
from bot.generation import extractive, local, openai_compat
from bot.generation.base import Generator

log = logging.getLogger(__name__)

# name -> factory(settings) -> Generator. Adding a backend is one module and one line here.
REGISTRY: dict[str, Callable[..., Generator]] = {
    "extractive": extractive.from_settings,
    "local": local.from_settings,
    "openai": openai_compat.from_settings,
}


def resolve_backend(settings: Settings) -> str:
    """`auto` is the OpenAI-compatible server when one is configured (`base_url` set), else the
    extractive composer: on our evaluation set it answers two-entry questions correctly far more
    often than the local SmolLM2-135M, in milliseconds (benchmarks/README.md, benchmarks/generation.py).
    `local` stays available by name."""
    g = settings.generation
    if g.backend != "auto":
        return g.backend
    return "openai" if "base_url" in g.model_fields_set else "extractive"


def create_generator(settings: Settings) -> Generator | None:
    backend = resolve_backend(settings)
    if backend == "none":
        return None
    if backend not in REGISTRY:
        raise ValueError(f"unknown generation backend {backend!r}; known: {sorted(REGISTRY)}")
    return REGISTRY[backend](settings)
