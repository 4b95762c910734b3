"""What the benchmarks share: where results go, where the public data sets are, percentiles."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
DEFAULT_DATASETS = ROOT.parent.parent / "shared" / "datasets"


def arg_parser(doc: str | None) -> argparse.ArgumentParser:
    """A parser with the module docstring as help and `--datasets` (env SUPPORTBOT_DATASETS)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", type=Path,
                        default=Path(os.environ.get("SUPPORTBOT_DATASETS", DEFAULT_DATASETS)))
    return parser


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else 0.0
