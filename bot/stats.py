"""The one percentile behind every latency the benchmarks and the README report.

Definition: linear interpolation between the two closest ranks of the sorted values, numpy's
default `np.percentile(values, q)` ("linear", type 7 of Hyndman & Fan, also Excel's PERCENTILE.INC):
the position of the q-th percentile among n sorted values is (n - 1) * q / 100, so p50 is the median
(2.5 for [1, 2, 3, 4]) and p100 the largest value. Pure Python, so anything may import it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable


def percentile(values: Iterable[float], q: float) -> float:
    """The `q`-th percentile (0 <= q <= 100) of `values` as defined above; 0.0 when there are none."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile q must be within 0..100, got {q}")
    data = sorted(values)
    if not data:
        return 0.0
    position = (len(data) - 1) * (q / 100)
    below = math.floor(position)
    lo, hi = data[below], data[min(below + 1, len(data) - 1)]
    t = position - below
    # numpy's lerp, so that both give the same float: from the nearer end of the interval
    return float(lo + (hi - lo) * t if t < 0.5 else hi - (hi - lo) * (1 - t))
