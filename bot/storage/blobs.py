"""Where the bytes of customers' images are kept: local files or any S3-compatible server.

Keys are random ids the server made (`new_key`), never anything a client sent; every store checks
that, so no key can name a path outside its folder or prefix. The calls are synchronous (file I/O,
boto3): callers run them in a thread.
"""

from __future__ import annotations

import os
import re
import secrets
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from bot.config import AttachmentSettings, reveal

KEY = re.compile(r"[0-9a-f]{32}")


class BlobMissing(LookupError):
    """The store has no object under this key (deleted, or never written)."""


def new_key() -> str:
    return secrets.token_hex(16)


def _checked(key: str) -> str:
    if not KEY.fullmatch(key):
        raise ValueError("not a storage key made by new_key()")
    return key


class AttachmentStore(Protocol):
    def put(self, key: str, data: bytes, content_type: str) -> None: ...
    def get(self, key: str) -> bytes: ...  # BlobMissing when absent
    def delete(self, key: str) -> None: ...  # absent: nothing to do


class LocalAttachmentStore:
    """Files under one folder (`<data_dir>/attachments/`), two levels of hex fan-out, each written
    to a temporary file first and renamed, so a reader never sees half an image."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        key = _checked(key)
        return self.root / key[:2] / key

    def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as exc:
            raise BlobMissing(key) from exc

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


class S3AttachmentStore:
    """Objects `<prefix><key>` in one bucket of an S3-compatible server (AWS, MinIO, Ceph, R2)."""

    def __init__(self, client: Any, bucket: str, prefix: str = "attachments/") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix

    def _key(self, key: str) -> str:
        return self.prefix + _checked(key)

    def put(self, key: str, data: bytes, content_type: str) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, ContentType=content_type)

    def get(self, key: str) -> bytes:
        from botocore.exceptions import ClientError

        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                raise BlobMissing(key) from exc
            raise
        body = answer["Body"]
        try:
            return bytes(body.read())
        finally:
            body.close()

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))


def _local(settings: AttachmentSettings, data_dir: Path) -> AttachmentStore:
    return LocalAttachmentStore(data_dir / "attachments")


def _s3(settings: AttachmentSettings, data_dir: Path) -> AttachmentStore:
    import boto3

    if not settings.s3_bucket:
        raise ValueError("SUPPORTBOT_ATTACHMENTS_BACKEND=s3 needs SUPPORTBOT_ATTACHMENTS_S3_BUCKET")
    client = boto3.client("s3", endpoint_url=settings.s3_endpoint_url, region_name=settings.s3_region,
                          aws_access_key_id=reveal(settings.s3_access_key_id),
                          aws_secret_access_key=reveal(settings.s3_secret_access_key))
    return S3AttachmentStore(client, settings.s3_bucket, settings.s3_prefix)


# The one table of backends (`Settings.attachments.backend`).
BACKENDS: dict[str, Callable[[AttachmentSettings, Path], AttachmentStore]] = {"local": _local, "s3": _s3}


def attachment_store(settings: AttachmentSettings, data_dir: Path) -> AttachmentStore:
    """The configured backend."""
    return BACKENDS[settings.backend](settings, data_dir)
