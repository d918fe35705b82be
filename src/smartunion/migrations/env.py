"""Alembic environment: the schema is smartunion.models' metadata."""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from sqlalchemy import Connection

from smartunion.db import UTCDateTime, make_engine
from smartunion.models import Base

config = context.config
target_metadata = Base.metadata


def _render_item(type_: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    # Migrations must not import application types: UTCDateTime is a timezone-aware DateTime.
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        render_item=_render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def _url() -> str:
    """The configured database (``SMARTUNION_DATABASE_URL``, or the data folder's SQLite
    file), unless the caller (``smartunion init``) passed one."""
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from smartunion.config import get_settings

    return get_settings().database_url


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    # The `alembic` command: the same path as `smartunion init` (SQLite's foreign keys off
    # around the transaction, checked before it commits).
    from smartunion import schema

    engine = make_engine(_url())
    try:
        schema._migrate(engine, lambda cfg: _run_with(cfg))
    finally:
        engine.dispose()


def _run_with(cfg: Any) -> None:
    _run(cfg.attributes["connection"])


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
