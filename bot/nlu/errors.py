"""The error of every reader of training data (support logs, help-desk exports, nlu.yml, CSV)."""

from __future__ import annotations


class DataError(ValueError):
    """Training data that cannot be used as it is; the message says where."""
