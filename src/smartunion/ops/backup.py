"""Encrypted, verified logical backups (数据备份与恢复) for SQLite and PostgreSQL.

A backup is *logical*: every table of ``Base.metadata`` is read in one consistent snapshot,
in primary-key order and in batches, and written as typed Arrow record batches. It does not
depend on the backend, so a SQLite backup restores into PostgreSQL and back. Personal
fields are copied as the ciphertext they are in the database; nothing is decrypted.

File layout (all integers big-endian)::

    header   64 bytes, in clear: magic "SUBACKUP", format version (u16), flags (u16, 0),
             chunk size (u32), key id (16 bytes), salt (32 bytes)
    chunks   AES-256-GCM of the archive, cut into chunks of ``chunk size`` bytes (the last
             one shorter), each followed by its 16-byte tag

    archive  records: kind (1 byte) | length (u64) | payload
             H  manifest header (JSON): format, created_at, app version, Alembic revision,
                source dialect, tables with their columns, Arrow types and row counts,
                data-key versions the ciphertexts need, state of the audit chain
             T  table name (UTF-8); the next B records belong to it
             B  one Arrow IPC stream (schema + one record batch, zstd-compressed buffers)
             E  manifest trailer (JSON): per-table row count and SHA-256

Encryption follows the STREAM construction (Hoang, Reyhanitabar, Rogaway and Vizár 2015;
as in Tink's AES-GCM-HKDF streaming AEAD and in age): a key of its own for every file,
``HKDF-SHA256(backup key, salt, "smartunion-backup-v1 file-key")``, and for chunk ``i`` the
nonce ``i (11 bytes) | final flag (1 byte)``. A fresh key per file makes counter nonces safe;
the counter in the nonce makes reordered or dropped chunks fail their tag, and the final
flag makes a file cut at a chunk boundary fail too. The 64-byte header is the associated
data of every chunk, so it cannot be altered either.

The backup key is derived from the key file's signing key (``KeyRing.derive``, HKDF with
its own label): the key file holds no new secret and needs no new format, key rotation
(which replaces data keys, not the signing key) keeps old backups readable, and the label
keeps the backup key independent of the audit and CSRF keys derived from the same root.
The key file itself is never written into a backup: the operator keeps it separately, and
restoring needs the same file. The key id in the header (another HKDF output, not the key)
tells a wrong key file apart from a damaged backup.

Plaintext rows exist only in memory, one batch at a time; the file is written to a
temporary name (mode 0600, ciphertext only) and renamed when complete and audited.

The manifest checksum of a table is SHA-256 over a canonical encoding of its Arrow columns
(validity bytes, value lengths, values), which does not depend on batch boundaries, the
backend or the pyarrow version. ``restore_backup`` checks it twice: on the rows read from the
file, and on the rows read back from the target after loading, so that a value the target
stored differently (a truncated string, a lost microsecond) is caught before commit.
"""

from __future__ import annotations

import datetime as dt
import decimal
import fcntl
import hashlib
import json
import os
import secrets
import struct
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    Date,
    DateTime,
    Engine,
    Float,
    Integer,
    Interval,
    LargeBinary,
    Numeric,
    String,
    Table,
    Time,
    TypeDecorator,
    Uuid,
    bindparam,
    func,
    select,
    text,
    update,
)
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeEngine

import smartunion
import smartunion.models  # every mapped table must be in the metadata
from smartunion import schema
from smartunion.db import Base, pg_sequence_past_max, run_deferred
from smartunion.security import audit
from smartunion.security.fields import REGISTRY
from smartunion.security.keys import KeyRing

FORMAT_VERSION = 1
MAGIC = b"SUBACKUP"
CHUNK_SIZE = 1 << 20
BATCH_ROWS = 10_000
_HEADER = struct.Struct(">8sHHI16s32s")
_RECORD = struct.Struct(">cQ")
_TAG = 16
_MIN_CHUNK, _MAX_CHUNK = 1 << 10, 64 << 20  # a damaged header must not make us allocate 4 GB
_MAX_RECORD = 1 << 32
SQLITE_RESTORE_CACHE_KIB = 128 * 1024  # page cache cap while restoring into SQLite
LOCK_TIMEOUT_MS = 10_000  # how long a PostgreSQL restore waits for other writers to finish
_IPC_OPTIONS = pa.ipc.IpcWriteOptions(compression="zstd" if pa.Codec.is_available("zstd") else None)

Progress = Callable[[str, int, int], None]


# --- errors ---------------------------------------------------------------------------------


class BackupError(Exception):
    """Base class: every refusal or failure of a backup or restore, with a message for people."""


class NotABackup(BackupError):
    pass


class UnsupportedFormat(BackupError):
    pass


class WrongKey(BackupError):
    pass


class DamagedBackup(BackupError):
    def __init__(self, message: str, *, chunk: int | None = None) -> None:
        super().__init__(message)
        self.chunk = chunk


class SchemaMismatch(BackupError):
    pass


class TargetNotEmpty(BackupError):
    pass


class MissingDataKeys(BackupError):
    def __init__(self, message: str, *, versions: list[int]) -> None:
        super().__init__(message)
        self.versions = versions


class VerificationFailed(BackupError):
    pass


class UnsupportedColumn(BackupError):
    pass


# --- manifest -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TableSummary:
    rows: int
    sha256: str


@dataclass(frozen=True)
class BackupManifest:
    """What a backup holds. ``digest`` identifies it (SHA-256 of the canonical manifest).

    ``file_bytes`` and ``seconds`` describe the run that returned it (writing or restoring).
    """

    format: int
    created_at: dt.datetime
    app_version: str
    revision: str
    dialect: str
    tables: dict[str, TableSummary]
    data_key_versions: tuple[int, ...]
    audit_events: int
    audit_break: str | None
    digest: str
    file_bytes: int = 0
    seconds: float = 0.0

    @property
    def total_rows(self) -> int:
        return sum(t.rows for t in self.tables.values())

    @property
    def counts(self) -> dict[str, int]:
        return {name: t.rows for name, t in self.tables.items()}


def _canonical_json(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def _manifest(header: dict[str, Any], trailer: dict[str, Any], **run: Any) -> BackupManifest:
    brk = header["audit"]["break"]
    return BackupManifest(
        format=int(header["format"]),
        created_at=dt.datetime.fromisoformat(header["created_at"]),
        app_version=str(header["app_version"]),
        revision=str(header["revision"]),
        dialect=str(header["dialect"]),
        tables={
            name: TableSummary(int(t["rows"]), str(t["sha256"]))
            for name, t in trailer["tables"].items()
        },
        data_key_versions=tuple(header["data_key_versions"]),
        audit_events=int(header["audit"]["events"]),
        audit_break=f"event {brk['event_id']}: {brk['reason']}" if brk else None,
        digest=hashlib.sha256(_canonical_json({"header": header, "trailer": trailer})).hexdigest(),
        **run,
    )


# --- columns: SQLAlchemy type <-> Arrow type --------------------------------------------------


def _json_text(values: Sequence[Any]) -> list[Any]:
    # Canonical text, so that the checksum does not depend on how a backend stores JSON.
    return [None if v is None else _canonical_json(v).decode() for v in values]


def _json_load(values: list[Any]) -> list[Any]:
    return [None if v is None else json.loads(v) for v in values]


def _to_str(values: Sequence[Any]) -> list[Any]:
    return [None if v is None else str(v) for v in values]


def _decimal_text(values: Sequence[Any]) -> list[Any]:
    # Normalised: PostgreSQL gives Decimal("1.10") for NUMERIC(9,2), SQLite Decimal("1.1").
    return [None if v is None else format(decimal.Decimal(v).normalize(), "f") for v in values]


def _decimals(values: list[Any]) -> list[Any]:
    return [None if v is None else decimal.Decimal(v) for v in values]


def _uuids(values: list[Any]) -> list[Any]:
    return [None if v is None else uuid.UUID(v) for v in values]


@dataclass(frozen=True)
class _Codec:
    """How one column travels: its Arrow type, and conversions where Arrow has no equivalent."""

    arrow: Any
    to_arrow: Callable[[Sequence[Any]], Sequence[Any]] | None = None
    from_arrow: Callable[[list[Any]], list[Any]] | None = None


def _codec(column: Column[Any]) -> _Codec:
    sa_type: TypeEngine[Any] = column.type
    if isinstance(sa_type, TypeDecorator):
        sa_type = sa_type.impl_instance
    # Order matters: Float is a Numeric, Enum and Text are Strings.
    if isinstance(sa_type, JSON):
        return _Codec(pa.string(), _json_text, _json_load)
    if isinstance(sa_type, Boolean):
        return _Codec(pa.bool_())
    if isinstance(sa_type, Integer):
        return _Codec(pa.int64())
    if isinstance(sa_type, Float):
        return _Codec(pa.float64())
    if isinstance(sa_type, Numeric):
        # Decimal as text: exact, whatever precision the column has.
        return _Codec(pa.string(), _decimal_text, _decimals if sa_type.asdecimal else None)
    if isinstance(sa_type, DateTime):
        return _Codec(pa.timestamp("us", tz="UTC" if sa_type.timezone else None))
    if isinstance(sa_type, Date):
        return _Codec(pa.date32())
    if isinstance(sa_type, Time):
        return _Codec(pa.time64("us"))
    if isinstance(sa_type, Interval):
        return _Codec(pa.duration("us"))
    if isinstance(sa_type, Uuid):
        return _Codec(pa.string(), _to_str, _uuids if sa_type.as_uuid else None)
    if isinstance(sa_type, LargeBinary):
        return _Codec(pa.binary())
    if isinstance(sa_type, String):
        return _Codec(pa.string())
    raise UnsupportedColumn(
        f"column {column.table.name}.{column.name} has type {column.type!r}, which backups "
        "do not know yet: add it to smartunion.ops.backup._codec"
    )


@dataclass(frozen=True)
class _TablePlan:
    table: Table
    codecs: tuple[_Codec, ...]
    schema: Any  # pa.Schema

    @property
    def name(self) -> str:
        return self.table.name

    def describe(self) -> list[list[str]]:
        return [
            [c.name, str(t)] for c, t in zip(self.table.columns, self.schema.types, strict=True)
        ]


def _plans() -> list[_TablePlan]:
    """Every table, parents before children (FKs marked ``use_alter`` close cycles)."""
    plans = []
    for table in Base.metadata.sorted_tables:
        if not table.primary_key.columns:
            raise UnsupportedColumn(f"table {table.name} has no primary key: no stable order")
        codecs = tuple(_codec(c) for c in table.columns)
        arrow_schema = pa.schema(
            [
                pa.field(c.name, k.arrow, nullable=c.nullable is not False)
                for c, k in zip(table.columns, codecs, strict=True)
            ]
        )
        plans.append(_TablePlan(table, codecs, arrow_schema))
    return plans


def _read_batches(conn: Connection, plan: _TablePlan, batch_rows: int) -> Iterator[Any]:
    """The table in primary-key order, ``batch_rows`` at a time (server-side cursor on PG)."""
    stmt = select(plan.table).order_by(*plan.table.primary_key.columns)
    # Per statement: Connection.execution_options() would change the connection for good.
    with conn.execute(stmt, execution_options={"yield_per": batch_rows}) as result:
        for rows in result.partitions():
            columns = list(zip(*rows, strict=True))
            arrays = [
                pa.array(codec.to_arrow(col) if codec.to_arrow else col, type=codec.arrow)
                for codec, col in zip(plan.codecs, columns, strict=True)
            ]
            yield pa.RecordBatch.from_arrays(arrays, schema=plan.schema)


# --- canonical checksum -------------------------------------------------------------------


def _fixed_width_bytes(arr: Any) -> bytes:
    t = arr.type
    if pa.types.is_boolean(t):
        arr = arr.cast(pa.uint8())
        dtype = "u1"
    elif pa.types.is_floating(t):
        dtype = "<f8"
    elif pa.types.is_date32(t):
        arr = arr.cast(pa.int32())
        dtype = "<i4"
    else:  # integers, timestamps, times and durations: 64-bit counts
        arr = arr.cast(pa.int64())
        dtype = "<i8"
    values = arr.fill_null(0).to_numpy(zero_copy_only=False)
    return bytes(np.ascontiguousarray(values, dtype=dtype).tobytes())


class _TableDigest:
    """SHA-256 of a table's content, the same whatever the batches, backend or pyarrow build.

    Per column, three streams: validity (one byte per row), value lengths (variable-width
    types, nulls as empty) and values (fixed width little-endian, or the concatenated bytes).
    """

    def __init__(self, plan: _TablePlan) -> None:
        self.plan = plan
        self.rows = 0
        self._streams = [
            (hashlib.sha256(), hashlib.sha256(), hashlib.sha256()) for _ in plan.codecs
        ]

    def update(self, batch: Any) -> None:
        self.rows += batch.num_rows
        for arr, (valid, lengths, values) in zip(batch.columns, self._streams, strict=True):
            valid.update(arr.is_valid().to_numpy(zero_copy_only=False).tobytes())
            if pa.types.is_string(arr.type) or pa.types.is_binary(arr.type):
                empty = "" if pa.types.is_string(arr.type) else b""
                filled = arr.fill_null(pa.scalar(empty, arr.type))
                sizes = pc.binary_length(filled).to_numpy(zero_copy_only=False)
                lengths.update(np.ascontiguousarray(sizes, dtype="<i8").tobytes())
                _, offsets_buf, data_buf = filled.buffers()
                offsets = np.frombuffer(offsets_buf, dtype="<i4")
                start, end = offsets[filled.offset], offsets[filled.offset + len(filled)]
                if data_buf is not None and end > start:
                    values.update(memoryview(data_buf)[start:end])
            else:
                values.update(_fixed_width_bytes(arr))

    def summary(self) -> TableSummary:
        body = {
            "rows": self.rows,
            "columns": [
                [name, type_, v.hexdigest(), n.hexdigest(), x.hexdigest()]
                for (name, type_), (v, n, x) in zip(
                    self.plan.describe(), self._streams, strict=True
                )
            ],
        }
        return TableSummary(self.rows, hashlib.sha256(_canonical_json(body)).hexdigest())


def _digest_table(
    conn: Connection, plan: _TablePlan, batch_rows: int, progress: Progress | None, total: int
) -> TableSummary:
    digest = _TableDigest(plan)
    for batch in _read_batches(conn, plan, batch_rows):
        digest.update(batch)
        if progress:
            progress(f"verify {plan.name}", digest.rows, total)
    return digest.summary()


def database_digests(engine: Engine, *, batch_rows: int = BATCH_ROWS) -> dict[str, TableSummary]:
    """Row count and checksum of every table, as a backup's manifest records them."""
    with _snapshot(engine) as conn:
        return {p.name: _digest_table(conn, p, batch_rows, None, 0) for p in _plans()}


# --- keys and chunked encryption -----------------------------------------------------------


def _backup_key(ring: KeyRing) -> bytes:
    return ring.derive(b"smartunion-backup-v1")


def key_id(ring: KeyRing) -> bytes:
    """Names the backup key without revealing it (an independent HKDF output)."""
    return ring.derive(b"smartunion-backup-v1 key-id", 16)


def _file_key(ring: KeyRing, salt: bytes) -> AESGCM:
    key = HKDF(hashes.SHA256(), 32, salt=salt, info=b"smartunion-backup-v1 file-key").derive(
        _backup_key(ring)
    )
    return AESGCM(key)


def _nonce(index: int, final: bool) -> bytes:
    return index.to_bytes(11, "big") + (b"\x01" if final else b"\x00")


class _ChunkWriter:
    """Buffers the archive and writes it as authenticated chunks; the last one is flagged."""

    def __init__(self, fh: IO[bytes], ring: KeyRing, chunk_size: int) -> None:
        if not _MIN_CHUNK <= chunk_size <= _MAX_CHUNK:
            raise ValueError(f"chunk size must be between {_MIN_CHUNK} and {_MAX_CHUNK} bytes")
        salt = secrets.token_bytes(32)
        self._header = _HEADER.pack(MAGIC, FORMAT_VERSION, 0, chunk_size, key_id(ring), salt)
        self._aead = _file_key(ring, salt)
        self._fh = fh
        self._chunk_size = chunk_size
        self._buf = bytearray()
        self._index = 0
        fh.write(self._header)
        self.bytes_written = len(self._header)

    def write(self, data: bytes | memoryview) -> None:
        self._buf += data
        # Keep at least one byte back: only close() knows which chunk is the last.
        while len(self._buf) > self._chunk_size:
            self._emit(bytes(self._buf[: self._chunk_size]), final=False)
            del self._buf[: self._chunk_size]

    def record(self, kind: bytes, payload: bytes | memoryview) -> None:
        self.write(_RECORD.pack(kind, len(payload)))
        self.write(payload)

    def close(self) -> None:
        self._emit(bytes(self._buf), final=True)
        self._buf.clear()

    def _emit(self, plain: bytes, *, final: bool) -> None:
        sealed = self._aead.encrypt(_nonce(self._index, final), plain, self._header)
        self._fh.write(sealed)
        self.bytes_written += len(sealed)
        self._index += 1


class _ChunkReader:
    """Reads the archive back, checking every tag before any byte of a chunk is used."""

    def __init__(self, fh: IO[bytes], ring: KeyRing, path: Path) -> None:
        self._fh, self._path = fh, path
        head = fh.read(_HEADER.size)
        if len(head) < len(MAGIC) or head[: len(MAGIC)] != MAGIC:
            raise NotABackup(f"{path.name} is not a SmartUnion backup")
        if len(head) < _HEADER.size:
            raise DamagedBackup(f"{path.name} is truncated inside its header")
        _, version, flags, chunk_size, kid, salt = _HEADER.unpack(head)
        if version != FORMAT_VERSION or flags != 0:
            raise UnsupportedFormat(
                f"{path.name} is backup format {version} (flags {flags}); this SmartUnion "
                f"reads format {FORMAT_VERSION}: restore it with a newer SmartUnion"
            )
        if not _MIN_CHUNK <= chunk_size <= _MAX_CHUNK:
            raise DamagedBackup(f"{path.name} has a damaged header (chunk size {chunk_size})")
        mine = key_id(ring)
        if kid != mine:
            raise WrongKey(
                f"{path.name} was made with another key file (backup key id {kid.hex()[:16]}, "
                f"this key file has {mine.hex()[:16]}), or its header is damaged: restore "
                "with the key file that was in use when the backup was made"
            )
        self._header = head
        self._aead = _file_key(ring, salt)
        self._block = chunk_size + _TAG
        self._index = 0
        self._offset = _HEADER.size
        self._next = fh.read(self._block)
        self._plain = b""
        self._pos = 0
        self.finished = False  # the chunk flagged final has been read

    def _chunk(self) -> None:
        sealed, start = self._next, self._offset
        if not sealed:
            raise DamagedBackup(
                f"{self._path.name} ends after chunk {self._index - 1} before the archive "
                "does: the file is truncated",
                chunk=self._index,
            )
        self._next = self._fh.read(self._block)
        final = not self._next
        where = f"chunk {self._index} (bytes {start}–{start + len(sealed) - 1})"
        try:
            plain = self._aead.decrypt(_nonce(self._index, final), sealed, self._header)
        except InvalidTag:
            # Tell truncation and appended data apart from altered bytes, for the operator.
            with suppress(InvalidTag):
                self._aead.decrypt(_nonce(self._index, not final), sealed, self._header)
                if final:
                    msg = f"{self._path.name} is truncated: it ends after {where}"
                else:
                    msg = f"{self._path.name} has unexpected data after its end ({where})"
                raise DamagedBackup(msg, chunk=self._index) from None
            cut = " (or the file was cut short)" if final else ""
            raise DamagedBackup(
                f"{self._path.name} is damaged or was altered: {where} fails its "
                f"authentication tag{cut}",
                chunk=self._index,
            ) from None
        self._offset += len(sealed)
        self._plain, self._pos = plain, 0
        self._index += 1
        self.finished = final

    def read(self, n: int) -> bytes:
        parts: list[bytes] = []
        while n > 0:
            if self._pos >= len(self._plain):
                if self.finished:
                    raise DamagedBackup(f"{self._path.name}: the archive ends inside a record")
                self._chunk()
                continue
            take = self._plain[self._pos : self._pos + n]
            self._pos += len(take)
            n -= len(take)
            parts.append(take)
        return b"".join(parts)

    def record(self) -> tuple[bytes, bytes]:
        kind, size = _RECORD.unpack(self.read(_RECORD.size))
        if size > _MAX_RECORD:
            raise DamagedBackup(f"{self._path.name}: implausible record size {size}")
        return kind, self.read(size)

    def at_end(self) -> bool:
        return self.finished and self._pos >= len(self._plain)


# --- archive ---------------------------------------------------------------------------------


def _ipc(batch: Any) -> Any:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema, options=_IPC_OPTIONS) as writer:
        writer.write_batch(batch)
    return sink.getvalue()


class _ArchiveReader:
    """Walks H, (T, B*)*, E; checks the manifest against this code and the data against it."""

    def __init__(self, reader: _ChunkReader, path: Path) -> None:
        self._reader, self._path = reader, path
        kind, payload = reader.record()
        if kind != b"H":
            raise DamagedBackup(f"{path.name}: the archive does not start with its manifest")
        self.header: dict[str, Any] = json.loads(payload)
        self.trailer: dict[str, Any] | None = None
        self.plans: list[_TablePlan] = []
        self.expected = {t["name"]: int(t["rows"]) for t in self.header["tables"]}
        self.digests: dict[str, TableSummary] = {}

    def match(self, plans: list[_TablePlan]) -> None:
        """Same revision should mean same tables and columns; a locally changed model does not."""
        theirs = {t["name"]: t["columns"] for t in self.header["tables"]}
        ours = {p.name: p.describe() for p in plans}
        if theirs != ours:
            diff = sorted(set(theirs) ^ set(ours)) or sorted(
                n for n in ours if theirs.get(n) != ours[n]
            )
            raise SchemaMismatch(
                f"{self._path.name} holds tables or columns this SmartUnion does not have, or "
                f"the other way round (differences in: {', '.join(diff)}), although the schema "
                f"revision is the same ({self.header['revision']})"
            )
        by_name = {p.name: p for p in plans}
        # The file's order is a valid load order (parents first) as the source computed it.
        self.plans = [by_name[t["name"]] for t in self.header["tables"]]

    def batches(self) -> Iterator[tuple[_TablePlan, Any]]:
        pending = iter(self.plans)
        current: _TablePlan | None = None
        digest: _TableDigest | None = None

        def close_table() -> None:
            if current is not None and digest is not None:
                self.digests[current.name] = digest.summary()

        while True:
            kind, payload = self._reader.record()
            if kind == b"T":
                close_table()
                current = next(pending, None)
                if current is None or payload.decode() != current.name:
                    raise DamagedBackup(f"{self._path.name}: tables out of order")
                digest = _TableDigest(current)
            elif kind == b"B" and current is not None and digest is not None:
                with pa.ipc.open_stream(pa.py_buffer(payload)) as stream:
                    if not stream.schema.equals(current.schema):
                        raise DamagedBackup(f"{self._path.name}: {current.name} batch type")
                    for batch in stream:
                        digest.update(batch)
                        yield current, batch
            elif kind == b"E":
                close_table()
                self.trailer = json.loads(payload)
                break
            else:
                raise DamagedBackup(f"{self._path.name}: unexpected record {kind!r}")
        if not self._reader.at_end():
            raise DamagedBackup(f"{self._path.name}: data after the end of the archive")
        self._check()

    def _check(self) -> None:
        assert self.trailer is not None  # noqa: S101  # nosec B101 (set just before)
        recorded = {
            n: TableSummary(t["rows"], t["sha256"]) for n, t in self.trailer["tables"].items()
        }
        for plan in self.plans:
            got = self.digests.get(plan.name)
            if got is None or got != recorded.get(plan.name):
                raise VerificationFailed(
                    f"{self._path.name}: table {plan.name} does not match its manifest checksum"
                )
            if got.rows != self.expected[plan.name]:
                raise VerificationFailed(
                    f"{self._path.name}: table {plan.name} has {got.rows} rows, its manifest "
                    f"says {self.expected[plan.name]}"
                )

    def manifest(self, **run: Any) -> BackupManifest:
        assert self.trailer is not None  # noqa: S101  # nosec B101 (only after batches() ran to the end)
        return _manifest(self.header, self.trailer, **run)


# --- database helpers ------------------------------------------------------------------------


@contextmanager
def _snapshot(engine: Engine) -> Iterator[Connection]:
    """One read transaction for every table: the backup is a consistent point in time.

    PostgreSQL: REPEATABLE READ, READ ONLY (as pg_dump). SQLite in WAL mode: a read
    transaction sees the snapshot of its first read until it ends; writers go on meanwhile.
    """
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
        with conn.begin():
            yield conn


def _code_revision() -> str:
    script = ScriptDirectory.from_config(schema.alembic_config("sqlite://"))
    return ",".join(sorted(script.get_heads()))


def _db_revision(conn: Connection) -> str:
    return ",".join(sorted(MigrationContext.configure(conn).get_current_heads()))


def _data_key_versions(conn: Connection) -> list[int]:
    """Data-key versions the stored ciphertexts need (their 3-byte header; nothing decrypted)."""
    used: set[int] = set()
    for spec in REGISTRY:
        table = spec.model.__table__
        assert isinstance(table, Table)  # noqa: S101  # nosec B101 (a declarative model maps a Table)
        enc = table.c[spec.ciphertext]
        for (head,) in conn.execute(
            select(func.substr(enc, 2, 2)).where(enc.is_not(None)).distinct()
        ):
            used.add(int.from_bytes(bytes(head), "big"))
    return sorted(used)


def _audit_state(conn: Connection, ring: KeyRing) -> dict[str, Any]:
    # A chain already broken at backup time is recorded, not hidden: the restore then expects
    # exactly that break, and an intact chain must come back intact.
    with Session(bind=conn) as session:
        checked, broken = audit.verify_chain(session, ring.audit_key)
    brk = {"event_id": broken.event_id, "reason": broken.reason} if broken else None
    return {"events": checked, "break": brk}


def _audit_alg(ring: KeyRing, audit_alg: str | None) -> str:
    if audit_alg:
        return audit_alg
    return "hmac-sm3" if ring.current_key.cipher == "sm4-gcm" else "hmac-sha256"


def _audit_session(conn: Connection | Engine, ring: KeyRing, alg: str) -> Session:
    return Session(bind=conn, info={"audit_key": ring.audit_key, "audit_alg": alg})


def _counts(conn: Connection, plans: Sequence[_TablePlan]) -> dict[str, int]:
    return {p.name: int(conn.scalar(select(func.count()).select_from(p.table)) or 0) for p in plans}


def _deferred_columns(plans: Sequence[_TablePlan]) -> dict[str, list[Column[Any]]]:
    """FK columns that may point at rows not loaded yet: to a later table or the same one.

    They are loaded as NULL and set once every table is in, which needs no superuser rights
    (unlike disabling triggers on PostgreSQL) and no deferrable constraints.
    """
    order = {p.name: i for i, p in enumerate(plans)}
    out: dict[str, list[Column[Any]]] = {}
    for plan in plans:
        cols: list[Column[Any]] = []
        for fk in plan.table.foreign_keys:
            if order.get(fk.column.table.name, -1) >= order[plan.name] and fk.parent not in cols:
                if fk.parent.nullable is False:
                    raise UnsupportedColumn(
                        f"{plan.name}.{fk.parent.name} closes a foreign-key cycle but is NOT "
                        "NULL: the backup cannot load it"
                    )
                cols.append(fk.parent)
        if cols:
            out[plan.name] = cols
    return out


def _empty_tables(conn: Connection, plans: Sequence[_TablePlan]) -> None:
    if conn.dialect.name == "postgresql":
        # One statement for all tables, inside the transaction (PostgreSQL's TRUNCATE is
        # transactional); DELETE would run a foreign-key check per row: minutes at 1M rows.
        quote = conn.dialect.identifier_preparer.quote
        conn.execute(text(f"TRUNCATE {', '.join(quote(p.name) for p in plans)}"))
        return
    # Children first; cycle-closing FKs cleared before, so no delete trips over them.
    for name, cols in _deferred_columns(plans).items():
        table = next(p.table for p in plans if p.name == name)
        conn.execute(update(table).values({c.name: None for c in cols}))
    for plan in reversed(plans):
        conn.execute(plan.table.delete())


@contextmanager
def _sqlite_cache(conn: Connection, kib: int) -> Iterator[None]:
    """SQLite: a larger page cache while loading (the index B-trees of a million members do
    not fit the 2 MiB default; ~25% faster); the pooled connection gets its old value back."""
    if conn.dialect.name != "sqlite":
        yield
        return
    # On the driver connection: through SQLAlchemy the PRAGMA would begin the transaction.
    raw = conn.connection.driver_connection
    assert raw is not None  # noqa: S101  # nosec B101 (an open connection has its driver connection)
    old = int(raw.execute("PRAGMA cache_size").fetchone()[0])
    raw.execute(f"PRAGMA cache_size = -{int(kib)}")
    try:
        yield
    finally:
        raw.execute(f"PRAGMA cache_size = {old}")


def _lock_tables(conn: Connection, plans: Sequence[_TablePlan]) -> None:
    """PostgreSQL: no one writes while the restore runs (readers may go on until commit).

    A running server holding transactions open would make us wait: give up after a while
    with a clear message instead of hanging. SQLite locks the whole file at the first write.
    """
    if conn.dialect.name != "postgresql":
        return
    quote = conn.dialect.identifier_preparer.quote
    conn.execute(text(f"SET LOCAL lock_timeout = {int(LOCK_TIMEOUT_MS)}"))
    try:
        names = ", ".join(quote(p.name) for p in plans)
        conn.execute(text(f"LOCK TABLE {names} IN EXCLUSIVE MODE"))
    except OperationalError as exc:
        raise BackupError(
            "the target database is in use (is a SmartUnion server running on it?): stop "
            "it and try again"
        ) from exc
    conn.execute(text("SET LOCAL lock_timeout = 0"))


def _reset_sequences(conn: Connection, plans: Sequence[_TablePlan]) -> None:
    """PostgreSQL: the next generated id follows the restored ones (setval is not rolled back,
    which at worst leaves a gap in the ids)."""
    if conn.dialect.name != "postgresql":
        return  # SQLite's rowid continues from max(id) by itself
    for plan in plans:
        for col in plan.table.primary_key.columns:
            if isinstance(col.type, Integer):  # only integer keys can have a sequence
                conn.execute(text(pg_sequence_past_max(plan.name, col.name)))


# --- backup -------------------------------------------------------------------------------


def _claim_partial(tmp: Path, out: Path) -> int:
    """Create the partial file (0600, before any row is read, never holding anything but
    ciphertext) and hold an exclusive lock on it while the backup runs.

    A partial file whose lock nobody holds was left by a process that died (the kernel
    drops a dead process's locks): it is replaced. One whose lock is held belongs to a
    backup that is running: refused.
    """
    while True:
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            try:
                old = os.open(tmp, os.O_WRONLY)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(old, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(old)
                raise BackupError(
                    f"another backup to {out.name} is running (it holds {tmp})"
                ) from None
            tmp.unlink()  # a dead process's leftover: ours is made afresh
            os.close(old)
            continue
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return fd


def create_backup(
    engine: Engine,
    ring: KeyRing,
    out_path: Path | str,
    *,
    progress: Progress | None = None,
    batch_rows: int = BATCH_ROWS,
    chunk_size: int = CHUNK_SIZE,
    actor: str = "cli",
    audit_alg: str | None = None,
) -> BackupManifest:
    """Write an encrypted backup of the whole database to ``out_path`` (never overwritten).

    Appends a ``backup.create`` audit event (file name, counts, manifest digest) once the
    file is complete; a backup whose event cannot be written is not kept.
    """
    out = Path(out_path)
    if out.exists():
        raise BackupError(f"{out} exists already: backups are never overwritten")
    plans = _plans()
    _deferred_columns(plans)  # refuse now a schema that could not be restored
    started = time.perf_counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.partial")
    fd = _claim_partial(tmp, out)
    try:
        with os.fdopen(fd, "wb") as fh, _snapshot(engine) as conn:
            revision, code_revision = _db_revision(conn), _code_revision()
            if revision != code_revision:
                raise SchemaMismatch(
                    f"the database is at schema revision {revision or 'none'}, this SmartUnion "
                    f"expects {code_revision}: run `smartunion init` first"
                )
            counts = _counts(conn, plans)
            header = {
                "format": FORMAT_VERSION,
                "app": "smartunion",
                "app_version": smartunion.__version__,
                "created_at": dt.datetime.now(dt.UTC).isoformat(),
                "revision": revision,
                "dialect": conn.dialect.name,
                "batch_rows": batch_rows,
                "tables": [
                    {"name": p.name, "columns": p.describe(), "rows": counts[p.name]} for p in plans
                ],
                "data_key_versions": _data_key_versions(conn),
                "audit": _audit_state(conn, ring),
            }
            summaries: dict[str, TableSummary] = {}
            writer = _ChunkWriter(fh, ring, chunk_size)
            writer.record(b"H", _canonical_json(header))
            for plan in plans:
                writer.record(b"T", plan.name.encode())
                digest = _TableDigest(plan)
                for batch in _read_batches(conn, plan, batch_rows):
                    digest.update(batch)
                    writer.record(b"B", memoryview(_ipc(batch)))
                    if progress:
                        progress(plan.name, digest.rows, counts[plan.name])
                if progress and not digest.rows:
                    progress(plan.name, 0, 0)
                summaries[plan.name] = digest.summary()
                if digest.rows != counts[plan.name]:  # cannot happen inside one snapshot
                    raise VerificationFailed(f"{plan.name} changed while being read")
            trailer = {
                "tables": {n: {"rows": s.rows, "sha256": s.sha256} for n, s in summaries.items()}
            }
            writer.record(b"E", _canonical_json(trailer))
            writer.close()
            fh.flush()
            os.fsync(fh.fileno())
        manifest = _manifest(
            header,
            trailer,
            file_bytes=writer.bytes_written,
            seconds=time.perf_counter() - started,
        )
        with _audit_session(engine, ring, _audit_alg(ring, audit_alg)) as session, session.begin():
            audit.record(
                session,
                None,
                "backup.create",
                object_type="backup",
                object_id=manifest.digest[:16],
                username=actor,
                details={
                    "file": out.name,
                    "bytes": manifest.file_bytes,
                    "tables": manifest.counts,
                    "manifest_sha256": manifest.digest,
                },
            )
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return manifest


# --- restore -------------------------------------------------------------------------------


def _open_archive(
    fh: IO[bytes], ring: KeyRing, path: Path, plans: list[_TablePlan]
) -> _ArchiveReader:
    archive = _ArchiveReader(_ChunkReader(fh, ring, path), path)
    header = archive.header
    if header.get("format") != FORMAT_VERSION:
        raise UnsupportedFormat(f"{path.name}: manifest format {header.get('format')}")
    code_revision = _code_revision()
    if header["revision"] != code_revision:
        raise SchemaMismatch(
            f"{path.name} is from schema revision {header['revision']}, this SmartUnion is at "
            f"{code_revision}: restore it with the SmartUnion version that made it "
            f"({header['app_version']}), then upgrade"
        )
    archive.match(plans)
    missing = sorted(set(header["data_key_versions"]) - set(ring.data_keys))
    if missing:
        raise MissingDataKeys(
            f"the personal data in {path.name} is encrypted with data key version(s) "
            f"{missing}, which this key file no longer holds (retired after the backup): "
            "restore with the key file of that time, or keep the retired-key archive "
            "(secret.key.retired) beside the key file",
            versions=missing,
        )
    return archive


def verify_backup(
    ring: KeyRing, in_path: Path | str, *, progress: Progress | None = None
) -> BackupManifest:
    """Decrypt and check a whole backup (every tag, the manifest, every checksum); no database."""
    path = Path(in_path)
    started = time.perf_counter()
    with path.open("rb") as fh:
        archive = _open_archive(fh, ring, path, _plans())
        done: dict[str, int] = {}
        for plan, batch in archive.batches():
            done[plan.name] = done.get(plan.name, 0) + batch.num_rows
            if progress:
                progress(plan.name, done[plan.name], archive.expected[plan.name])
    return archive.manifest(file_bytes=path.stat().st_size, seconds=time.perf_counter() - started)


def _onupdate_columns(table: Table) -> list[Column[Any]]:
    return [c for c in table.columns if c.onupdate is not None]


def _python_values(arr: Any, codec: _Codec) -> list[Any]:
    """Arrow column to the Python values SQLAlchemy binds (numpy for dates: ~4x to_pylist)."""
    t = arr.type
    if pa.types.is_timestamp(t):
        values = arr.cast(pa.timestamp("us")).to_numpy(zero_copy_only=False).tolist()
        if t.tz is not None:
            values = [None if v is None else v.replace(tzinfo=dt.UTC) for v in values]
    elif pa.types.is_date32(t):
        values = arr.to_numpy(zero_copy_only=False).tolist()
    else:
        values = arr.to_pylist()
    return codec.from_arrow(values) if codec.from_arrow else values


class _Loader:
    """Inserts batches at driver level; holds back cycle-closing FK values until the end.

    Values go through each column's own SQLAlchemy bind processor, so they are stored
    exactly as the application would store them, but without building a dict per row:
    SQLite gets ``executemany``, PostgreSQL (psycopg 3) ``COPY FROM STDIN``, which is an
    order of magnitude faster there than row-by-row INSERTs.
    """

    def __init__(self, conn: Connection, deferred: dict[str, list[Column[Any]]]) -> None:
        self.conn = conn
        self.deferred = deferred
        self.later: dict[str, list[dict[str, Any]]] = {}
        dialect = conn.dialect
        self._copy = dialect.name == "postgresql" and dialect.driver == "psycopg"
        marker = {"qmark": "?", "format": "%s", "pyformat": "%s"}.get(str(dialect.paramstyle))
        if marker is None:  # every driver for SQLite and PostgreSQL is one of these
            raise BackupError(f"restore does not support the {dialect.driver} driver")
        self._marker = marker

    def load(self, plan: _TablePlan, batch: Any) -> None:
        columns = [
            _python_values(arr, codec)
            for codec, arr in zip(plan.codecs, batch.columns, strict=True)
        ]
        held = self.deferred.get(plan.name)
        if held:
            self._hold_back(plan, held, columns)
        table, dialect = plan.table, self.conn.dialect
        processors = [c.type.dialect_impl(dialect).bind_processor(dialect) for c in table.columns]
        stored = [
            [proc(v) for v in col] if proc else col
            for proc, col in zip(processors, columns, strict=True)
        ]
        tuples = list(zip(*stored, strict=True))
        quote = dialect.identifier_preparer.quote
        names = ", ".join(quote(c.name) for c in table.columns)
        if self._copy:
            raw = self.conn.connection.driver_connection
            assert raw is not None  # noqa: S101  # nosec B101 (an open connection has its driver connection)
            with (
                raw.cursor() as cur,
                cur.copy(f"COPY {quote(plan.name)} ({names}) FROM STDIN") as cp,
            ):
                for row in tuples:
                    cp.write_row(row)
        else:
            marks = ", ".join([self._marker] * len(table.columns))
            sql = f"INSERT INTO {quote(plan.name)} ({names}) VALUES ({marks})"  # noqa: S608  # nosec B608 (names from the metadata)
            self.conn.exec_driver_sql(sql, tuples)

    def _hold_back(
        self, plan: _TablePlan, held: list[Column[Any]], columns: list[list[Any]]
    ) -> None:
        index = {c.name: i for i, c in enumerate(plan.table.columns)}
        pks = [c.name for c in plan.table.primary_key.columns]
        stamps = [c.name for c in _onupdate_columns(plan.table)]
        keep = self.later.setdefault(plan.name, [])
        for row in range(len(columns[0]) if columns else 0):
            values = {c.name: columns[index[c.name]][row] for c in held}
            if any(v is not None for v in values.values()):
                keep.append(
                    {f"pk_{k}": columns[index[k]][row] for k in pks}
                    | values
                    | {f"keep_{k}": columns[index[k]][row] for k in stamps}
                )
        for col in held:
            columns[index[col.name]] = [None] * len(columns[index[col.name]])

    def finish(self, plans: Sequence[_TablePlan]) -> None:
        for plan in plans:
            params = self.later.get(plan.name)
            if not params:
                continue
            table = plan.table
            # The stored updated_at must survive: set it explicitly, or onupdate would stamp now.
            stmt = update(table).values(
                {c.name: bindparam(c.name) for c in self.deferred[plan.name]}
                | {c.name: bindparam(f"keep_{c.name}") for c in _onupdate_columns(table)}
            )
            for col in table.primary_key.columns:
                stmt = stmt.where(col == bindparam(f"pk_{col.name}"))
            self.conn.execute(stmt, params)


def restore_backup(
    engine: Engine,
    ring: KeyRing,
    in_path: Path | str,
    *,
    force: bool = False,
    progress: Progress | None = None,
    verify: bool = True,
    actor: str = "cli",
    audit_alg: str | None = None,
) -> BackupManifest:
    """Load a backup into an empty database at the same schema revision, all or nothing.

    In one transaction: (with ``force``) empty the tables, load every batch, check every tag,
    the manifest checksums and counts of the file, set cycle-closing foreign keys, reset
    PostgreSQL sequences, read the target back and compare counts and checksums
    (``verify``), check the restored audit chain, and append a ``backup.restore`` event.
    Any failure rolls everything back.
    """
    path = Path(in_path)
    if not path.is_file():
        raise BackupError(f"{path} does not exist or is not a file")
    plans = _plans()
    started = time.perf_counter()
    with (
        path.open("rb") as fh,
        engine.connect() as conn,
        _sqlite_cache(conn, SQLITE_RESTORE_CACHE_KIB),
        conn.begin(),
    ):
        archive = _open_archive(fh, ring, path, plans)
        header = archive.header
        target_revision = _db_revision(conn)
        if target_revision != header["revision"]:
            raise SchemaMismatch(
                "the target database has no schema: run `smartunion init` first"
                if not target_revision
                else f"the target database is at schema revision {target_revision}, "
                f"{path.name} at {header['revision']}: run `smartunion init` on the target"
            )
        _lock_tables(conn, archive.plans)
        before = _counts(conn, plans)
        with Session(bind=conn) as peek:
            replaced_head = audit.chain_head(peek)
        # `smartunion init` records the key fingerprints: that is not data to protect, and
        # the backup brings the same installation's.
        held_data = {n: c for n, c in before.items() if c and n != "key_fingerprint"}
        if any(before.values()):
            if held_data and not force:
                held = ", ".join(f"{n} ({c})" for n, c in held_data.items())
                raise TargetNotEmpty(
                    f"the target database is not empty ({held}): restore into an empty "
                    "database, or use --force to replace its contents"
                )
            _empty_tables(conn, archive.plans)
        loader = _Loader(conn, _deferred_columns(archive.plans))
        loaded: dict[str, int] = {}
        for plan, batch in archive.batches():
            loader.load(plan, batch)
            loaded[plan.name] = loaded.get(plan.name, 0) + batch.num_rows
            if progress:
                progress(f"load {plan.name}", loaded[plan.name], archive.expected[plan.name])
        loader.finish(archive.plans)
        _reset_sequences(conn, archive.plans)
        manifest = archive.manifest(file_bytes=path.stat().st_size)

        after = _counts(conn, archive.plans)
        if after != manifest.counts:
            bad = sorted(n for n in after if after[n] != manifest.counts[n])
            raise VerificationFailed(f"row counts differ after loading: {', '.join(bad)}")
        if verify:
            for plan in archive.plans:
                got = _digest_table(conn, plan, BATCH_ROWS, progress, manifest.counts[plan.name])
                if got != manifest.tables[plan.name]:
                    raise VerificationFailed(
                        f"table {plan.name} reads back differently from the backup (the "
                        "target stored some value otherwise): nothing was restored"
                    )
        state = _audit_state(conn, ring)
        if state != header["audit"]:
            raise VerificationFailed(
                f"the restored audit chain differs from the backup's ({state['events']} "
                f"events verified, break: {state['break']}): nothing was restored"
            )
        with _audit_session(conn, ring, _audit_alg(ring, audit_alg)) as session:
            restored_head = audit.chain_head(session)
            audit.record(
                session,
                None,
                "backup.restore",
                object_type="backup",
                object_id=manifest.digest[:16],
                username=actor,
                details={
                    "file": path.name,
                    "tables": manifest.counts,
                    "manifest_sha256": manifest.digest,
                    "source_dialect": manifest.dialect,
                    "backup_created_at": manifest.created_at.isoformat(),
                    "replaced_rows": sum(before.values()),
                    # The checkpoints start a new epoch here (security/checkpoints.py).
                    "restored_head": {"seq": restored_head[0], "hash": restored_head[1]},
                    "replaced_head": {"seq": replaced_head[0], "hash": replaced_head[1]},
                },
            )
            # Into the restore's own transaction (the session does not commit: ``conn`` does).
            run_deferred(session)
    return replace(manifest, seconds=time.perf_counter() - started)
