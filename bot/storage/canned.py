"""Canned replies in SQL: the `canned_replies` table read and written, nothing else. Agents insert
one with its `/shortcut` in the console; admins create, edit and delete them (bot/web/console/canned.py
checks who may and what is valid)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session as DbSession

from bot.storage.models import CannedReply


@dataclass(frozen=True)
class CannedRecord:
    """One row of `canned_replies`, detached from the database."""

    id: int
    shortcut: str
    title: str
    text: str
    updated_by: str
    updated_at: datetime


class ShortcutTaken(ValueError):
    pass


class NoSuchReply(LookupError):
    pass


class CannedReplies:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def all(self) -> list[CannedRecord]:
        with DbSession(self.engine) as db:
            return [_record(r) for r in db.scalars(select(CannedReply).order_by(CannedReply.shortcut))]

    def add(self, shortcut: str, title: str, text: str, by: str) -> CannedRecord:
        row = CannedReply(shortcut=shortcut, title=title, text=text, updated_by=by,
                          updated_at=datetime.now(UTC))
        try:
            with DbSession(self.engine, expire_on_commit=False) as db, db.begin():
                db.add(row)
        except IntegrityError as exc:
            raise ShortcutTaken(shortcut) from exc
        return _record(row)

    def update(self, reply_id: int, shortcut: str, title: str, text: str, by: str) -> CannedRecord:
        try:
            with DbSession(self.engine, expire_on_commit=False) as db, db.begin():
                row = db.get(CannedReply, reply_id)
                if row is None:
                    raise NoSuchReply(reply_id)
                row.shortcut, row.title, row.text = shortcut, title, text
                row.updated_by, row.updated_at = by, datetime.now(UTC)
        except IntegrityError as exc:
            raise ShortcutTaken(shortcut) from exc
        return _record(row)

    def delete(self, reply_id: int) -> None:
        with DbSession(self.engine) as db, db.begin():
            row = db.get(CannedReply, reply_id)
            if row is None:
                raise NoSuchReply(reply_id)
            db.delete(row)


def _record(row: CannedReply) -> CannedRecord:
    return CannedRecord(row.id, row.shortcut, row.title, row.text, row.updated_by, row.updated_at)
