"""What the benchmarks share: where results go and where the public data sets are (percentiles:
`bot.stats.percentile`, the one definition behind every reported latency)."""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
DEFAULT_DATASETS = ROOT.parent.parent / "shared" / "datasets"


def arg_parser(doc: str | None) -> argparse.ArgumentParser:
    """A parser with the module docstring as help and `--datasets` (env SUPPORTBOT_DATASETS)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", type=Path,
                        default=Path(os.environ.get("SUPPORTBOT_DATASETS", DEFAULT_DATASETS)))
    return parser



def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def wait_until_quiet(max_load: float = 1.0, within_s: float = 120.0) -> list[float]:
    """Wait (up to `within_s`) until the 1-minute load average is at most `max_load`, so a
    latency row does not measure someone else's work; returns the load average it starts at."""
    deadline = time.monotonic() + within_s
    while os.getloadavg()[0] > max_load and time.monotonic() < deadline:
        time.sleep(5)
    return load_average()


def busy(before: list[float], after: list[float], own: float = 1.5) -> bool:
    """Whether something besides the benchmark (about `own` cores of load) ran during a row: the
    1-minute load started high or ended above what the row itself adds."""
    return before[0] > own or after[0] > own + before[0]


T = TypeVar("T")


def quietly(measure: Callable[[], T], attempts: int = 2) -> tuple[T, dict[str, Any]]:
    """Run a latency measurement on a quiet machine: wait for one, record the load average before
    and after, and measure again (up to `attempts` times) when something else ran meanwhile."""
    for attempt in range(1, attempts + 1):
        before = wait_until_quiet()
        result = measure()
        after = load_average()
        load = {"load_before": before, "load_after": after, "attempt": attempt, "busy": busy(before, after)}
        if not load["busy"]:
            break
    return result, load
