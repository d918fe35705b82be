"""Bulk writers: the fastest ordinary path into each backend, inside one transaction.

* SQLite: ``executemany`` of tuples on the raw ``sqlite3`` connection, with a large page
  cache, CHECK constraints skipped (every value comes from the enums' values) and the
  member table's secondary indexes dropped for the load and recreated from their own
  stored SQL, so the schema stays exactly what Alembic made.
* PostgreSQL: binary ``COPY``; the member table's secondary indexes and foreign keys are
  dropped for the load and recreated from ``pg_get_indexdef``/``pg_get_constraintdef``
  (adding a foreign key validates the whole table in one pass, far cheaper than a
  trigger per row).

Measured on the shared 2-core machine (bench/bench_generate.py, scratch A/B runs):
evaluating the schema's ``CHECK (x IN (...))`` constraints made SQLite inserts 2–3x
slower (≈ 60 µs a row instead of ≈ 40 with 100k rows); rebuilding the five member
indexes after the load (≈ 5 s per million) beats maintaining them row by row; turning
foreign keys off and running ``PRAGMA foreign_key_check`` at the end saved no CPU, so
they stay on. On PostgreSQL, dropping the member foreign keys for the COPY halved it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from sqlalchemy import Engine

from smartunion.db import UTCDateTime, pg_sequence_past_max

Row = Sequence[object]
_TABLES = ("union_org", "enterprise", "department", "member")
_PG_LOCK_KEY = 0x5375_4745_4E00  # "SuGEN": any fixed bigint, private to this module


class Sink(Protocol):
    dialect: str

    def max_id(self, table: str) -> int: ...
    def scalar(self, sql: str, params: Sequence[object] = ()) -> Any: ...
    def insert(self, table: str, columns: Sequence[str], rows: Iterable[Row]) -> None: ...
    def set_enterprises(self, org_ids: Sequence[int], enterprise_ids: Sequence[int]) -> None: ...
    def begin_bulk(self, table: str, expected_rows: int) -> None: ...
    def end_bulk(self, table: str) -> None: ...
    def dates(self, values: npt.NDArray[np.datetime64]) -> list[object]: ...
    def timestamp(self, value: dt.datetime) -> object: ...
    def boolean(self, value: bool) -> object: ...
    def analyze(self) -> None: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...
    def close(self) -> None: ...


def open_sink(engine: Engine) -> Sink:
    name = engine.dialect.name
    if name == "sqlite":
        return SQLiteSink(engine)
    if name == "postgresql" and engine.dialect.driver == "psycopg":
        return PostgresSink(engine)
    raise NotImplementedError(
        f"bulk generation supports SQLite and PostgreSQL through psycopg 3, not {name}"
        f"+{engine.dialect.driver}"
    )


class _DateTable:
    """Dates → the backend's values through a lookup table over the range seen.

    A province's dates span a few decades (≈ 20,000 distinct days), so converting the
    range once and indexing it is ~10x faster than converting a million values.
    """

    def __init__(self, convert: Any) -> None:
        self._convert = convert
        self._low = 0
        self._table: npt.NDArray[np.object_] = np.empty(0, dtype=object)

    def __call__(self, values: npt.NDArray[np.datetime64]) -> list[object]:
        days = values.astype("datetime64[D]").astype(np.int64)
        if days.size == 0:
            return []
        low, high = int(days.min()), int(days.max())
        if low < self._low or high >= self._low + len(self._table):
            low = min(low, self._low) if len(self._table) else low
            high = max(high, self._low + len(self._table) - 1)
            span = np.arange(low, high + 1).astype("datetime64[D]")
            self._table = np.asarray(self._convert(span), dtype=object)
            self._low = low
        out: list[object] = self._table[days - self._low].tolist()
        return out


def _driver(connection: Any | None) -> Any:
    if connection is None:  # pragma: no cover - only after the pool connection is closed
        raise RuntimeError("the pooled connection has no DBAPI connection")
    return connection


class SQLiteSink:
    dialect = "sqlite"

    def __init__(self, engine: Engine) -> None:
        self._pooled = engine.raw_connection()
        self.conn: Any = _driver(self._pooled.driver_connection)
        # The ORM's own conversion (TypeDecorator + SQLite DATETIME), so rows match its format.
        self._ts = UTCDateTime().dialect_impl(engine.dialect).bind_processor(engine.dialect)
        self._dropped: dict[str, list[str]] = {}
        # SQLAlchemy stores Date on SQLite as ISO text.
        self._dates = _DateTable(lambda span: np.datetime_as_string(span, unit="D"))
        self._cache = self.conn.execute("PRAGMA cache_size").fetchone()[0]
        try:
            # ~1 GB of page cache keeps the random-order unique blind-index B-tree (and
            # the rest of the load) in memory until commit.
            self.conn.execute("PRAGMA cache_size=-1000000")
            self.conn.execute("PRAGMA ignore_check_constraints=ON")
            # Take the write lock now: the existence check and the load are one unit.
            self.conn.execute("BEGIN IMMEDIATE")
        except BaseException:
            self.close()
            raise

    def max_id(self, table: str) -> int:
        return int(self.scalar(f"SELECT coalesce(max(id), 0) FROM {table}"))  # noqa: S608  # nosec B608

    def scalar(self, sql: str, params: Sequence[object] = ()) -> Any:
        row = self.conn.execute(sql, tuple(params)).fetchone()
        return None if row is None else row[0]

    def insert(self, table: str, columns: Sequence[str], rows: Iterable[Row]) -> None:
        marks = ", ".join("?" * len(columns))
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"  # noqa: S608  # nosec B608
        self.conn.executemany(sql, rows)

    def set_enterprises(self, org_ids: Sequence[int], enterprise_ids: Sequence[int]) -> None:
        self.conn.executemany(
            "UPDATE union_org SET enterprise_id = ? WHERE id = ?",
            zip(enterprise_ids, org_ids, strict=True),
        )

    def begin_bulk(self, table: str, expected_rows: int) -> None:
        existing = int(self.scalar(f"SELECT count(*) FROM {table}"))  # noqa: S608  # nosec B608
        if expected_rows < max(existing, 10_000):
            return  # rebuilding would cost more than it saves
        found = self.conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
            "AND sql IS NOT NULL ORDER BY name",
            (table,),
        ).fetchall()
        for name, _ in found:
            self.conn.execute(f'DROP INDEX "{name}"')
        self._dropped[table] = [sql for _, sql in found]

    def end_bulk(self, table: str) -> None:
        for sql in self._dropped.pop(table, []):
            self.conn.execute(sql)

    def dates(self, values: npt.NDArray[np.datetime64]) -> list[object]:
        return self._dates(values)

    def timestamp(self, value: dt.datetime) -> object:
        return self._ts(value) if self._ts else value

    def boolean(self, value: bool) -> object:
        return int(value)

    def analyze(self) -> None:
        # Planner statistics for the new rows (≈ 1 s per million members): without them
        # SQLite guesses ten rows per key, and would take the 7-value employment_form
        # index for a selective one.
        for table in _TABLES:
            self.conn.execute(f"ANALYZE {table}")

    def commit(self) -> None:
        self.conn.execute("COMMIT")
        # The load went through the WAL (≈ the size of the data); give the disk back.
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def rollback(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    def close(self) -> None:
        try:
            self.conn.execute("PRAGMA ignore_check_constraints=OFF")
            self.conn.execute(f"PRAGMA cache_size={int(self._cache)}")
        finally:
            self._pooled.close()


class PostgresSink:
    dialect = "postgresql"

    def __init__(self, engine: Engine) -> None:
        self._pooled = engine.raw_connection()
        self.conn: Any = _driver(self._pooled.driver_connection)
        self._indexes: dict[str, list[str]] = {}
        self._foreign_keys: dict[str, list[tuple[str, str]]] = {}
        self._dates = _DateTable(lambda span: span.tolist())  # datetime.date for COPY
        # Two generators at once would both find the province absent: serialise them
        # (the lock ends with the transaction).
        self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (_PG_LOCK_KEY,))

    def max_id(self, table: str) -> int:
        return int(self.scalar(f"SELECT coalesce(max(id), 0) FROM {table}"))  # noqa: S608  # nosec B608

    def scalar(self, sql: str, params: Sequence[object] = ()) -> Any:
        row = self.conn.execute(sql.replace("?", "%s"), tuple(params)).fetchone()
        return None if row is None else row[0]

    def _types(self, table: str, columns: Sequence[str]) -> list[int]:
        rows = self.conn.execute(
            "SELECT attname, atttypid::int FROM pg_attribute "
            "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
            (table,),
        ).fetchall()
        oids = dict(rows)
        return [oids[c] for c in columns]

    def insert(self, table: str, columns: Sequence[str], rows: Iterable[Row]) -> None:
        types = self._types(table, columns)
        sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
        with self.conn.cursor() as cur, cur.copy(sql) as copy:
            copy.set_types(types)
            for row in rows:
                copy.write_row(row)

    def set_enterprises(self, org_ids: Sequence[int], enterprise_ids: Sequence[int]) -> None:
        self.conn.execute(
            "UPDATE union_org AS u SET enterprise_id = v.e "
            "FROM unnest(%s::int[], %s::int[]) AS v(id, e) WHERE u.id = v.id",
            (list(org_ids), list(enterprise_ids)),
        )

    def begin_bulk(self, table: str, expected_rows: int) -> None:
        existing = int(self.scalar(f"SELECT count(*) FROM {table}"))  # noqa: S608  # nosec B608
        if expected_rows < max(existing, 10_000):
            return
        indexes = self.conn.execute(
            "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x "
            "JOIN pg_class i ON i.oid = x.indexrelid "
            "WHERE x.indrelid = %s::regclass "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.oid) "
            "ORDER BY i.relname",
            (table,),
        ).fetchall()
        fks = self.conn.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype = 'f' ORDER BY conname",
            (table,),
        ).fetchall()
        for name, _ in fks:
            self.conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        for name, _ in indexes:
            self.conn.execute(f'DROP INDEX "{name}"')
        self._indexes[table] = [sql for _, sql in indexes]
        self._foreign_keys[table] = [(name, sql) for name, sql in fks]

    def end_bulk(self, table: str) -> None:
        for sql in self._indexes.pop(table, []):
            self.conn.execute(sql)
        for name, definition in self._foreign_keys.pop(table, []):
            self.conn.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')

    def dates(self, values: npt.NDArray[np.datetime64]) -> list[object]:
        return self._dates(values)

    def timestamp(self, value: dt.datetime) -> object:
        return value

    def boolean(self, value: bool) -> object:
        return value

    def analyze(self) -> None:
        for table in _TABLES:
            self.conn.execute(f"ANALYZE {table}")

    def commit(self) -> None:
        # Rows went in with explicit ids: move each id sequence past them, or every later
        # insert through the app collides with a generated row (500 once per existing id).
        for table in _TABLES:
            self.conn.execute(pg_sequence_past_max(table))
        self.conn.commit()

    def rollback(self) -> None:
        self.conn.rollback()

    def close(self) -> None:
        self._pooled.close()
