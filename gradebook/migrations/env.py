"""Alembic environment for the gradebook. ``gradebook.store.upgrade`` runs it programmatically
with an open connection (``config.attributes["connection"]``); no alembic.ini is needed."""

from __future__ import annotations

from alembic import context

from gradebook.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only when someone runs the alembic CLI by hand
    raise RuntimeError("run the gradebook migrations through gradebook.store.upgrade(url), "
                       "or `autograder gradebook migrate`")

context.configure(connection=connection, target_metadata=Base.metadata,
                  render_as_batch=connection.dialect.name == "sqlite", compare_type=True)
with context.begin_transaction():
    context.run_migrations()
