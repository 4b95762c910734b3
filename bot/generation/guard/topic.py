"""The topic check: a question no FAQ passage is near is outside the company's domain."""

from __future__ import annotations


def off_topic(best_score: float | None, threshold: float) -> bool:
    """No FAQ passage near the question: it is outside what the company's assistant answers."""
    return best_score is None or best_score < threshold
