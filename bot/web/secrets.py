"""The cookie-signing key: from SUPPORTBOT_SECRET_KEY, else a random one kept in the data folder
(mode 0600) so console logins survive a restart on a single machine."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets

from bot.config import Settings


def secret_key(settings: Settings) -> str:
    if settings.console.secret_key:
        return settings.console.secret_key.get_secret_value()
    path = settings.data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key


def conversation_id_key(settings: Settings) -> bytes:
    """The key of channel conversation ids (`keyed_conversation_id`), derived from the secret key so
    ids stay stable across restarts and replicas that share the secret."""
    return hmac.new(secret_key(settings).encode(), b"supportbot conversation ids", hashlib.sha256).digest()
