"""Operational store: SQLAlchemy 2 engine, session factory and declarative base.

SQLite (a file under ``var/``) is the embedded default; PostgreSQL is the production
store. Everything here must behave the same on both.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import Annotated, Any

from annotated_types import Interval
from sqlalchemy import (
    ColumnElement,
    Connection,
    DateTime,
    Engine,
    Enum,
    MetaData,
    create_engine,
    event,
    func,
)
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.types import TypeDecorator

from smartunion.errors import KeepsTransaction

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


MAX_ID = 2_147_483_647
# An id a client may send: fits the Integer keys on both backends (PostgreSQL's int4).
DbId = Annotated[int, Interval(ge=1, le=MAX_ID)]


def starts_with(column: ColumnElement[str] | Mapped[str], prefix: str) -> ColumnElement[bool]:
    """``column LIKE 'prefix%'`` with the pattern built here, not in SQL.

    SQLAlchemy's ``startswith`` sends ``LIKE :p || '%'``; SQLite cannot use an index for
    an expression pattern, which turned a name search on 1M members into a table scan.
    """
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.like(escaped + "%", escape="\\")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC timestamps on both SQLite (which drops tzinfo) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where UTC is required")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value


def str_enum(cls: type[StrEnum], name: str) -> Enum:
    """A StrEnum column stored as its value, checked by a named constraint on both backends."""
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=24,
        values_callable=lambda e: [m.value for m in e],
    )


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class TimestampMixin:
    created_at: Mapped[dt.datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=func.current_timestamp()
    )
    updated_at: Mapped[dt.datetime] = mapped_column(
        UTCDateTime, default=utcnow, onupdate=utcnow, server_default=func.current_timestamp()
    )


def _configure_sqlite(engine: Engine) -> None:
    # pysqlite's own transaction handling defers BEGIN and breaks SAVEPOINT; take it over
    # (SQLAlchemy docs, "Serializable isolation / Savepoints / Transactional DDL").
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        # Lets "name LIKE '张%'" use the name index (prefix search on 1M members).
        cursor.execute("PRAGMA case_sensitive_like=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # IMMEDIATE: nearly every request writes (audit event, guard counter), and a deferred
        # transaction that reads first and then writes fails at once with "database is
        # locked" when another connection committed in between (SQLITE_BUSY_SNAPSHOT);
        # taking the write lock up front waits for busy_timeout instead.
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str, *, echo: bool = False) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            from pathlib import Path

            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, echo=echo, connect_args={"check_same_thread": False})
        _configure_sqlite(engine)
        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=10)


class Database:
    """Engine plus session factory; tests swap the factory to bind an outer transaction.

    ``audit_key`` seals the audit chain (``security.audit``); sessions carry it in
    ``session.info`` so that every service can append audit events without plumbing.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        audit_key: bytes | None = None,
        audit_alg: str = "hmac-sha256",
        guard_policy: Any = None,
    ) -> None:
        self.engine = engine
        self.audit_key = audit_key
        self.audit_alg = audit_alg
        self.guard_policy = guard_policy  # security.guard.GuardPolicy; None means defaults
        self.sessionmaker: sessionmaker[Session] = self.make_sessionmaker(engine)

    def make_sessionmaker(self, bind: Engine | Connection, **kw: Any) -> sessionmaker[Session]:
        info = {
            "audit_key": self.audit_key,
            "audit_alg": self.audit_alg,
            "guard_policy": self.guard_policy,
        }
        return sessionmaker(bind=bind, expire_on_commit=False, info=info, **kw)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        audit_key: bytes | None = None,
        audit_alg: str = "hmac-sha256",
        guard_policy: Any = None,
        echo: bool = False,
    ) -> Database:
        return cls(
            make_engine(url, echo=echo),
            audit_key=audit_key,
            audit_alg=audit_alg,
            guard_policy=guard_policy,
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One unit of work: commit on success, roll back on error (services never commit)."""
        session = self.sessionmaker()
        try:
            yield session
            session.commit()
        except KeepsTransaction:
            session.commit()
            raise
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()
