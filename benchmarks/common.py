"""What the benchmarks share: where results go and where the public data sets are (percentiles:
`bot.stats.percentile`, the one definition behind every reported latency)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
DEFAULT_DATASETS = ROOT.parent.parent / "shared" / "datasets"


def arg_parser(doc: str | None) -> argparse.ArgumentParser:
    """A parser with the module docstring as help and `--datasets` (env SUPPORTBOT_DATASETS)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", type=Path,
                        default=Path(os.environ.get("SUPPORTBOT_DATASETS", DEFAULT_DATASETS)))
    return parser

