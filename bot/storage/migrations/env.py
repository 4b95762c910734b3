"""Alembic environment: run against the connection `bot.storage.db.migrate` passes in."""

from __future__ import annotations

from alembic import context

from bot.storage.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # `alembic` CLI use: take the URL from the settings
    from bot.config import Settings
    from bot.storage.db import make_engine

    connection = make_engine(Settings().resolved_database_url).connect()

context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
