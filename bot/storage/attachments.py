"""Customers' images as durable records: the `attachments` table and the bytes in an
`AttachmentStore`, written, read, erased and purged together. Synchronous: callers use a thread."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, delete, insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session as DbSession

from bot.storage.blobs import AttachmentStore, BlobMissing, new_key
from bot.storage.models import AttachmentRecord


@dataclass(frozen=True)
class StoredAttachment:
    """One row of `attachments`, detached from the database."""

    id: str
    conversation_id: str
    sender: str
    content_type: str
    size: int
    width: int
    height: int
    storage_key: str
    created_at: datetime


def _detached(row: AttachmentRecord) -> StoredAttachment:
    at = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)  # SQLite
    return StoredAttachment(row.id, row.conversation_id, row.sender, row.content_type, row.size, row.width,
                            row.height, row.storage_key, at)


class AttachmentRecords:
    def __init__(self, engine: Engine, blobs: AttachmentStore) -> None:
        self.engine = engine
        self.blobs = blobs

    def add(self, conversation_id: str, data: bytes, content_type: str, width: int, height: int,
            sender: str = "customer") -> StoredAttachment:
        """The bytes first, then the row that makes them reachable (a failed insert deletes them)."""
        record = StoredAttachment(secrets.token_hex(16), conversation_id, sender, content_type, len(data),
                                  width, height, new_key(), datetime.now(UTC))
        self.blobs.put(record.storage_key, data, content_type)
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(AttachmentRecord).values(
                    id=record.id, conversation_id=conversation_id, sender=sender, content_type=content_type,
                    size=record.size, width=width, height=height, storage_key=record.storage_key,
                    created_at=record.created_at))
        except BaseException:
            self.blobs.delete(record.storage_key)
            raise
        return record

    def find(self, conversation_id: str, attachment_id: str) -> StoredAttachment | None:
        """The attachment, only if it belongs to this conversation."""
        with DbSession(self.engine) as db:
            row = db.scalar(select(AttachmentRecord).where(
                AttachmentRecord.id == attachment_id, AttachmentRecord.conversation_id == conversation_id))
            return _detached(row) if row is not None else None

    def read(self, conversation_id: str, attachment_id: str) -> tuple[StoredAttachment, bytes] | None:
        """The attachment and its bytes; None when either is gone (or it is another conversation's)."""
        found = self.find(conversation_id, attachment_id)
        if found is None:
            return None
        try:
            return found, self.blobs.get(found.storage_key)
        except BlobMissing:
            return None

    def of(self, conversation_id: str) -> list[StoredAttachment]:
        with DbSession(self.engine) as db:
            rows = db.scalars(select(AttachmentRecord).where(
                AttachmentRecord.conversation_id == conversation_id).order_by(AttachmentRecord.created_at))
            return [_detached(row) for row in rows]

    def erase(self, conversation_id: str) -> int:
        """The right to erasure: every attachment of one conversation, bytes and rows."""
        return self._delete(AttachmentRecord.conversation_id == conversation_id)

    def remove(self, attachment_id: str) -> int:
        """One attachment, bytes and row (one whose conversation could not take it)."""
        return self._delete(AttachmentRecord.id == attachment_id)

    def purge(self, before: datetime) -> int:
        """Retention: the attachments sent before `before`, bytes and rows."""
        return self._delete(AttachmentRecord.created_at < before)

    def _delete(self, condition: ColumnElement[bool]) -> int:
        """Bytes first, rows after: a failure halfway leaves rows that the next run deletes again,
        never bytes that no row names."""
        with self.engine.connect() as conn:
            doomed = list(conn.execute(select(AttachmentRecord.id, AttachmentRecord.storage_key)
                                       .where(condition)))
        for _, key in doomed:
            self.blobs.delete(key)
        if not doomed:
            return 0
        with self.engine.begin() as conn:
            ids = [attachment_id for attachment_id, _ in doomed]
            return int(conn.execute(delete(AttachmentRecord).where(AttachmentRecord.id.in_(ids))).rowcount)
