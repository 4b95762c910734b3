"""Generative fallback: backends registered in one table, chosen by `Settings.generation.backend`."""

from __future__ import annotations

import logging
from collections.abc import Callable

from bot.generation import local, openai_compat
from bot.generation.base import Generator

log = logging.getLogger(__name__)

# name -> factory(settings) -> Generator. Adding a backend is one module and one line here.
REGISTRY: dict[str, Callable[..., Generator]] = {
    "local": local.from_settings,
    "openai": openai_compat.from_settings,
}


def resolve_backend(settings) -> str:  # type: ignore[no-untyped-def]
    """`auto` is the local model when its package is installed, else no generator."""
    g = settings.generation
    if g.backend != "auto":
        return g.backend
    return "local" if local.available(g.model, g.gguf_file) else "none"


def create_generator(settings) -> Generator | None:  # type: ignore[no-untyped-def]
    backend = resolve_backend(settings)
    if backend == "none":
        return None
    if backend not in REGISTRY:
        raise ValueError(f"unknown generation backend {backend!r}; known: {sorted(REGISTRY)}")
    return REGISTRY[backend](settings)
