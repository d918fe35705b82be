"""Operational store: SQLAlchemy 2 engine, session factory and declarative base.

SQLite (a file under ``var/``) is the embedded default; PostgreSQL is the production
store. Everything here must behave the same on both.
"""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
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
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    ORMExecuteState,
    Session,
    mapped_column,
    sessionmaker,
)
from sqlalchemy.sql import ClauseElement, Executable
from sqlalchemy.sql.util import find_tables
from sqlalchemy.types import TypeDecorator

from smartunion.errors import KeepsTransaction

log = logging.getLogger("smartunion.db")

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


class WriteLockTimeout(RuntimeError):
    """Another writer held the SQLite write lock for longer than the busy timeout."""


class _ProcessWriteLock:
    """One SQLite writer at a time inside this process, handed over without polling.

    SQLite's own busy handler sleeps 1, 2, 5, 10 … ms between attempts, which under load
    turns a 0.2 ms wait into tens of milliseconds; a Python lock wakes the next writer at
    once. Other processes (``serve --workers N``) still meet at SQLite's lock and its
    busy timeout. The holder is a DBAPI connection, not a thread: a request may flush in
    one worker thread and commit in another.
    """

    def __init__(self, timeout: float) -> None:
        self._lock = threading.Lock()
        self._holder: int | None = None
        self.timeout = timeout

    def acquire(self, raw: Any) -> None:
        if self._holder == id(raw):
            return
        if not self._lock.acquire(timeout=self.timeout):
            raise WriteLockTimeout(f"database is locked (waited {self.timeout:.0f} s for a writer)")
        self._holder = id(raw)

    def release(self, raw: Any) -> None:
        if self._holder == id(raw):
            self._holder = None
            self._lock.release()


_READ_HEADS = ("SELECT", "PRAGMA", "EXPLAIN")
_WRITE_WORDS = ("INSERT", "UPDATE", "DELETE", "REPLACE")


def _is_read(statement: str) -> bool:
    head = statement.lstrip()[:8].upper()
    if head.startswith(_READ_HEADS):
        return True
    if head.startswith("WITH"):
        upper = statement.upper()
        return not any(word in upper for word in _WRITE_WORDS)
    return False


def _raw(connection: Any) -> Any:
    return getattr(connection, "dbapi_connection", connection)


WAL_AUTOCHECKPOINT_PAGES = 16_384  # 64 MB of 4 KB pages
WAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024  # the WAL file is cut back to this after a restart
_RESTART_FRAMES = 4096  # a WAL past 16 MB is restarted by the checkpointer...
_RESTART_TRIES = 20  # ...in a moment (of 20, 1 ms apart) when no reader uses it


def _configure_sqlite(engine: Engine, *, busy_timeout_ms: int, synchronous: str) -> None:
    """Transactions start deferred (readers never take a lock) and become writers late.

    A deferred SQLite transaction that has read and then writes fails at once with
    SQLITE_BUSY_SNAPSHOT when another connection committed in between, and BEGIN IMMEDIATE
    for every request made every request wait for every other. So: a transaction reads
    without any lock; just before its first write it ends its read snapshot (it has written
    nothing yet, so nothing is lost), waits for this process's writer lock, and begins
    again with ``BEGIN IMMEDIATE``. Later reads see the latest data under the lock. The
    effect is PostgreSQL's READ COMMITTED: what a transaction read before its first write
    may have changed since, which the code already has to handle on PostgreSQL.
    Requests defer their bookkeeping writes (audit events, session touches) to commit time
    (``defer_write``), and read requests commit them together (``_GroupCommit``), so the
    lock is held for microseconds, not while a request reads or renders.
    """
    lock = _ProcessWriteLock(busy_timeout_ms / 1000)
    _SQLITE_LOCKS[engine] = lock
    _GROUPS[engine] = _GroupCommit()

    # pysqlite's own transaction handling defers BEGIN and breaks SAVEPOINT; take it over
    # (SQLAlchemy docs, "Serializable isolation / Savepoints / Transactional DDL").
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        # Checkpoints are the server's checkpointer's work (``Database.checkpoint``), not a
        # request's: SQLite's default runs one, with an fsync, in whichever commit finds
        # 1000 pages in the WAL, and under constant readers that is every commit. This
        # threshold is the fallback for processes without a checkpointer (the commands).
        cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
        cursor.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT_BYTES}")
        # Lets "name LIKE '张%'" use the name index (prefix search on 1M members).
        cursor.execute("PRAGMA case_sensitive_like=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if getattr(_intent, "write", False):
            _begin_writer(conn, lock)
            return
        conn.exec_driver_sql("BEGIN")
        conn.info["su_txn"] = "read"

    @event.listens_for(engine, "before_cursor_execute")
    def _before_execute(conn: Connection, _cursor: Any, statement: str, *_args: Any) -> None:
        if conn.info.get("su_txn") == "read" and not _is_read(statement):
            _upgrade(conn, lock)

    dialect = engine.dialect
    commit, rollback = dialect.do_commit, dialect.do_rollback

    def _commit(dbapi_connection: Any) -> None:
        try:
            commit(dbapi_connection)
        finally:
            _end(dbapi_connection, lock)

    def _rollback(dbapi_connection: Any) -> None:
        try:
            rollback(dbapi_connection)
        finally:
            _end(dbapi_connection, lock)

    # Instance attributes: this engine's dialect only. The pool's reset-on-return and
    # invalidation go through do_rollback too, so the lock cannot be left held.
    dialect.do_commit = _commit  # type: ignore[method-assign]
    dialect.do_rollback = _rollback  # type: ignore[method-assign]

    @event.listens_for(engine, "close")
    def _on_close(dbapi_connection: Any, record: Any) -> None:
        lock.release(dbapi_connection)
        record.info.pop("su_txn", None)


def _upgrade(conn: Connection, lock: _ProcessWriteLock) -> None:
    _raw(conn.connection).execute("ROLLBACK")  # only a read snapshot: nothing written yet
    _begin_writer(conn, lock)


def _begin_writer(conn: Connection, lock: _ProcessWriteLock) -> None:
    raw = _raw(conn.connection)
    lock.acquire(raw)
    try:
        raw.execute("BEGIN IMMEDIATE")
    except BaseException:
        lock.release(raw)
        raise
    conn.info["su_txn"] = "write"


def _end(dbapi_connection: Any, lock: _ProcessWriteLock) -> None:
    # A bare DBAPI connection (at first connect) has no info dict.
    with suppress(AttributeError, NotImplementedError):
        dbapi_connection.info.pop("su_txn", None)
    lock.release(_raw(dbapi_connection))


_SQLITE_LOCKS: weakref.WeakKeyDictionary[Engine, _ProcessWriteLock] = weakref.WeakKeyDictionary()


# Set while a transaction that will write is being begun: it begins as a writer at once
# instead of BEGIN, ROLLBACK, BEGIN IMMEDIATE.
_intent = threading.local()


def begin_write(session: Session) -> None:
    """Make the session's transaction a writer now (SQLite: take the write lock).

    For work that reads and must not be overtaken before it writes (the audit sealer reads
    the chain head, then links onto it), and for work that only writes. PostgreSQL code
    uses row or advisory locks.
    """
    _intent.write = True
    try:
        conn = session.connection()
    finally:
        _intent.write = False
    lock = _SQLITE_LOCKS.get(conn.engine)
    if lock is not None and conn.info.get("su_txn") == "read":
        _upgrade(conn, lock)


def holds_write_lock(session: Session) -> bool:
    """Whether this session's SQLite transaction already writes (and so holds the lock)."""
    if session.get_transaction() is None:
        return False
    conn = session.connection()
    return conn.engine.dialect.name == "sqlite" and conn.info.get("su_txn") == "write"


# Deferred writes (``defer_write``): bookkeeping statements executed at commit time.
_DEFERRED = "su_deferred"


def defer_write(
    session: Session, statement: Executable, params: dict[str, Any] | None = None
) -> None:
    """Run ``statement`` in this transaction just before it commits (and not at all if it
    rolls back).

    For the bookkeeping writes beside a request's real work (audit events, session
    touches), which depend on nothing else it writes: at commit they take the SQLite write
    lock for microseconds instead of from the middle of the request to its end. A query of
    the same session that reads one of the written tables runs them first, so a session
    still reads its own writes. A constant ``statement`` with ``params`` compiles once, and
    entries with the same statement run as one executemany.
    """
    session.info.setdefault(_DEFERRED, []).append((statement, params))


def run_deferred(session: Session) -> None:
    _run_writes(session, session.info.pop(_DEFERRED, []))


def _run_writes(session: Session, writes: list[tuple[Executable, dict[str, Any] | None]]) -> None:
    """Parameterised writes grouped by statement (one executemany each), then the rest."""
    grouped: dict[int, tuple[Executable, list[dict[str, Any]]]] = {}
    plain: list[Executable] = []
    for statement, params in writes:
        if params is None:
            plain.append(statement)
        else:
            grouped.setdefault(id(statement), (statement, []))[1].append(params)
    for statement, rows in grouped.values():
        session.connection().execute(statement, rows)
    for statement in plain:
        session.execute(statement)


def _deferred_tables(session: Session) -> set[Any]:
    return {getattr(stmt, "table", None) for stmt, _ in session.info.get(_DEFERRED, ())} - {None}


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    run_deferred(session)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_DEFERRED, None)


@event.listens_for(Session, "do_orm_execute")
def _read_own_writes(state: ORMExecuteState) -> None:
    session = state.session
    if not session.info.get(_DEFERRED) or not state.is_select:
        return
    wanted = _deferred_tables(session)
    statement = state.statement
    if isinstance(statement, ClauseElement) and wanted & set(find_tables(statement)):
        run_deferred(session)


def make_engine(
    url: str,
    *,
    echo: bool = False,
    pool_size: int = 10,
    pool_timeout: float = 10.0,
    busy_timeout_ms: int = 10_000,
    sqlite_synchronous: str = "NORMAL",
) -> Engine:
    """An engine for ``url``: ``pool_size`` connections and no overflow.

    The web layer admits no more concurrent requests than it has connections for
    (``web.admission``), so a request never waits for a connection while it holds a
    worker thread another request needs.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            from pathlib import Path

            from smartunion.files import private_sqlite

            private_sqlite(Path(parsed.database))  # 0600 file (and WAL, SHM), 0700 folder
        engine = create_engine(
            url,
            echo=echo,
            connect_args={"check_same_thread": False},
            pool_size=pool_size,
            max_overflow=0,
            pool_timeout=pool_timeout,
        )
        _configure_sqlite(engine, busy_timeout_ms=busy_timeout_ms, synchronous=sqlite_synchronous)
        return engine
    return create_engine(
        url,
        echo=echo,
        pool_pre_ping=True,
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=pool_timeout,
    )


def pg_sequence_past_max(table: str, column: str = "id") -> str:
    """PostgreSQL: SQL that moves ``table.column``'s id sequence past its largest value, for
    after rows went in with their ids (generate, restore); a column without a sequence is
    left alone (``setval(NULL, ...)`` is NULL). Names come from the schema, never a user:
    they are quoted, not bound."""
    quote = _PG_PREPARER.quote
    t, c = quote(table), quote(column)
    return (
        f"SELECT setval(pg_get_serial_sequence('{t}', '{column}'), "  # noqa: S608  # nosec B608 (schema names)
        f"COALESCE((SELECT MAX({c}) FROM {t}), 0) + 1, false)"
    )


_PG_PREPARER = postgresql.dialect().identifier_preparer  # type: ignore[no-untyped-call]


def is_unique_violation(exc: IntegrityError) -> bool:
    """A unique constraint (not a foreign key or check) refused the write, on either backend."""
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate is not None:
        return bool(sqlstate == "23505")
    return "UNIQUE constraint failed" in str(exc.orig)


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
        self._checkpoint_lock = threading.Lock()
        self._checkpoint_conn: sqlite3.Connection | None = None

    def make_sessionmaker(self, bind: Engine | Connection, **kw: Any) -> sessionmaker[Session]:
        info = {
            "audit_key": self.audit_key,
            "audit_alg": self.audit_alg,
            "guard_policy": self.guard_policy,
            "database": self,
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
        **engine_options: Any,
    ) -> Database:
        return cls(
            make_engine(url, echo=echo, **engine_options),
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
        except BaseException as exc:
            finish(session, exc)
            raise
        finish(session, None)

    def checkpoint(self) -> tuple[int, int] | None:
        """SQLite: copy the WAL into the database file, and restart a large WAL if no
        reader uses it; (frames in the WAL, frames copied), or None on PostgreSQL.

        Never waits for a request, and takes none of the pool's connections (sized for the
        requests, the sealer and the readiness probe): a connection of its own, with no busy
        timeout, outside any transaction. The passive pass copies what it can. Past
        ``_RESTART_FRAMES`` a truncating pass tries, a few times a millisecond apart, to find
        a moment when no reader holds an old snapshot (at a few hundred requests a second
        there are many), which keeps the WAL, and the work of every later checkpoint, small.
        """
        path = self.engine.url.database
        if self.dialect != "sqlite" or not path or path == ":memory:":
            return None
        with self._checkpoint_lock:
            if self._checkpoint_conn is None:
                self._checkpoint_conn = sqlite3.connect(
                    path, timeout=0, isolation_level=None, check_same_thread=False
                )
            conn = self._checkpoint_conn
            busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            tries = _RESTART_TRIES if frames >= _RESTART_FRAMES else 0
            while tries and frames:
                busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                if not busy:
                    break
                tries -= 1
                time.sleep(0.001)  # for the readers of old snapshots to finish
        return int(frames), int(copied)

    def close_checkpoints(self) -> None:
        with self._checkpoint_lock:
            if self._checkpoint_conn is not None:
                self._checkpoint_conn.close()
                self._checkpoint_conn = None

    @contextmanager
    def side_transaction(self, session: Session) -> Iterator[Session]:
        """A short transaction beside ``session``'s, committed when the block ends.

        For counters that must hold across concurrent requests (the insider guard): they
        commit before the request goes on, so a parallel request sees them at once. When
        ``session`` already writes on SQLite it holds the only write lock, so the work
        joins it instead (a second connection would wait for the first).
        """
        if holds_write_lock(session):
            yield session
            return
        with self.session() as side:
            begin_write(side)  # it writes first: begin as a writer
            yield side


class WalCheckpointer:
    """SQLite: ``Database.checkpoint`` every ``interval`` seconds in a daemon thread, so
    that no request's commit pays for a checkpoint (one per server process)."""

    def __init__(self, db: Database, *, interval: float = 0.5) -> None:
        self.db = db
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.db.dialect != "sqlite":
            return
        self._thread = threading.Thread(target=self._run, name="wal-checkpointer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.db.close_checkpoints()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.db.checkpoint()
            except Exception:  # a busy or locked file: the next round copies it
                log.exception("SQLite checkpoint failed; retrying")


class _Entry:
    __slots__ = ("done", "error", "writes")

    def __init__(self, writes: list[tuple[Executable, dict[str, Any] | None]]) -> None:
        self.writes = writes
        self.done = False
        self.error: BaseException | None = None


class _GroupCommit:
    """SQLite group commit for the bookkeeping writes of read requests.

    A read request's only writes are its audit events and session touch (``defer_write``).
    Instead of one write transaction each, requests that finish together hand them to one
    of them, the leader, which writes them all (one ``executemany`` per statement) in one
    transaction and one commit; the others wait for that commit and answer after it, as
    they would after their own. Under load this turns a hundred lock hand-overs and commits
    a second into a few. A batch that fails is retried entry by entry, so one request's
    bad write fails that request only.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._queue: list[_Entry] = []
        self._leading = False

    def commit(
        self, engine: Engine, writes: list[tuple[Executable, dict[str, Any] | None]]
    ) -> None:
        entry = _Entry(writes)
        batch: list[_Entry] = []
        with self._cond:
            self._queue.append(entry)
            while self._leading and not entry.done:
                self._cond.wait()
            if not entry.done:
                self._leading = True
                batch, self._queue = self._queue, []
        if batch:
            try:
                with Session(bind=engine, expire_on_commit=False) as session:
                    self._write(session, batch)
            finally:
                with self._cond:
                    self._leading = False
                    self._cond.notify_all()
        if entry.error is not None:
            raise entry.error

    @staticmethod
    def _write(session: Session, batch: list[_Entry]) -> None:
        try:
            begin_write(session)
            _run_writes(session, [w for e in batch for w in e.writes])
            session.commit()
        except Exception as exc:
            session.rollback()
            if len(batch) == 1:
                batch[0].error = exc
            else:
                for e in batch:
                    try:
                        begin_write(session)
                        _run_writes(session, e.writes)
                        session.commit()
                    except Exception as one:
                        session.rollback()
                        e.error = one
        finally:
            for e in batch:
                e.done = True


_GROUPS: weakref.WeakKeyDictionary[Engine, _GroupCommit] = weakref.WeakKeyDictionary()


def _group_commit(session: Session) -> bool:
    """Commit a read request's deferred writes with others' (SQLite); False if not one."""
    pending = session.info.get(_DEFERRED)
    if not pending or session.new or session.dirty or session.deleted:
        return False
    if session.get_transaction() is None:
        return False
    conn = session.connection()
    group = _GROUPS.get(conn.engine)
    if group is None or conn.info.get("su_txn") != "read":
        return False
    session.info.pop(_DEFERRED)
    # The leader writes on a session of its own; this one wrote nothing and is closed
    # (not rolled back, which would expire the objects its caller still reads). Closed
    # *before* the write: an open read snapshot keeps SQLite from restarting the WAL.
    engine = conn.engine
    session.close()
    group.commit(engine, pending)
    return True


def finish(session: Session, exc: BaseException | None) -> None:
    """End a unit of work: commit unless ``exc`` (a ``KeepsTransaction`` still commits),
    roll back otherwise, and close. A failed commit raises."""
    try:
        if exc is None or isinstance(exc, KeepsTransaction):
            if not _group_commit(session):
                session.commit()
        else:
            session.rollback()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def side_transaction(session: Session) -> AbstractContextManager[Session]:
    """``Database.side_transaction`` for a session made by a ``Database``."""
    database: Database | None = session.info.get("database")
    if database is None:
        return nullcontext(session)
    return database.side_transaction(session)
