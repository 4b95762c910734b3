"""Reading what a platform sends, for the channels and the Chatwoot bridge alike: JSON with limits,
platform ids, and the keyed conversation ids that keep those ids out of keys, URLs and logs."""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from typing import Any

MAX_JSON_DEPTH = 32  # platform payloads nest about 6 deep


def keyed_conversation_id(key: bytes, channel: str, platform_id: str) -> str:
    """`<channel>-<HMAC of the platform's id>`: stable per sender, yet no phone number or sender id
    appears in a key, a URL or a log, and nobody without the server's secret can compute it."""
    mac = hmac.new(key, f"{channel}\x00{platform_id}".encode("utf-8", "surrogatepass"), hashlib.sha256)
    return f"{channel}-{mac.hexdigest()[:40]}"


def load_json(body: bytes | str) -> Any:
    """json.loads for a body from the network: ValueError (never RecursionError or OverflowError
    later on) for anything but plain JSON: invalid UTF-8, NaN/Infinity/1e999, integers past
    Python's digit limit, nesting deeper than MAX_JSON_DEPTH."""

    def constant(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    try:
        data = json.loads(body, parse_constant=constant)
    except RecursionError as exc:
        raise ValueError("JSON nested too deeply") from exc
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("number out of range")
        if isinstance(value, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise ValueError("JSON nested too deeply")
            stack.extend((v, depth + 1) for v in (value.values() if isinstance(value, dict) else value))
    return data


def platform_id(value: Any, what: str, max_len: int = 256) -> str:
    """A platform's id (chat, user, message...) as text: a non-empty string or an integer, nothing
    else (no objects, lists, booleans or floats whose str() would be a different id)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"{what} is not an id")
    text = str(value).strip()
    if not text or len(text) > max_len:
        raise ValueError(f"{what} is empty or too long")
    return text
