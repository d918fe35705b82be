"""Key rotation: re-encrypt every registered field to the current key, online and resumable.

``rotate`` adds a new data key and blind-index key to the key file, waits until running
servers have re-read it (they check every couple of seconds), then walks each encrypted
column in id order, one committed batch at a time. A batch writes a row only if its
ciphertext is still the one read (compare-and-set), so a concurrent edit made through the
app is never overwritten; such rows already carry the new key. Interrupted? Run it again
with ``resume=True``: rows already on the current key are skipped. Plaintext exists only
in memory, for one batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import BindParameter, Table, and_, bindparam, func, select, update

import smartunion.models  # noqa: F401  (registers every encrypted field)
from smartunion.db import Database
from smartunion.security import audit, keycheck
from smartunion.security.crypto import FieldCrypto
from smartunion.security.fields import REGISTRY, EncryptedField
from smartunion.security.keys import (
    Cipher,
    KeyRing,
    archive_retired,
    load_keyring,
    retired_file,
    save_keyring,
)

Progress = Callable[[str, int, int], None]


@dataclass
class RotationReport:
    data_version: int
    blind_version: int
    rewritten: dict[str, int] = field(default_factory=dict)
    skipped_concurrent: int = 0
    seconds: float = 0.0
    retired: list[int] = field(default_factory=list)

    @property
    def rows_per_second(self) -> float:
        return sum(self.rewritten.values()) / self.seconds if self.seconds else 0.0


def _rotate_field(
    db: Database, crypto: FieldCrypto, spec: EncryptedField, batch: int, progress: Progress | None
) -> tuple[int, int]:
    table = spec.model.__table__
    if not isinstance(table, Table):  # a declarative model always maps a Table
        raise TypeError(f"{spec.model.__name__} is not mapped to a table")
    pk, enc = table.c.id, table.c[spec.ciphertext]
    ring = crypto.ring
    with db.session() as s:
        total = s.scalar(select(func.count()).select_from(table).where(enc.is_not(None))) or 0
    values: dict[str, BindParameter[Any]] = {spec.ciphertext: bindparam("new_enc")}
    if spec.blind_index:
        values[spec.blind_index] = bindparam("new_bidx")
    stmt = (
        update(table).where(and_(pk == bindparam("pk"), enc == bindparam("old"))).values(**values)
    )
    last_id, seen, rewritten, skipped = 0, 0, 0, 0
    while True:
        with db.session() as s:
            rows = s.execute(
                select(pk, enc).where(pk > last_id, enc.is_not(None)).order_by(pk).limit(batch)
            ).all()
            if not rows:
                break
            last_id = rows[-1][0]
            seen += len(rows)
            stale = [(r[0], r[1]) for r in rows if FieldCrypto.key_version(r[1]) != ring.current]
            if stale:
                plain = [crypto.decrypt(blob, spec.name) for _, blob in stale]
                new_enc = crypto.encrypt_many(plain, spec.name)
                new_bidx = (
                    crypto.blind_index_many(plain, spec.name, version=ring.blind_current)
                    if spec.blind_index
                    else [None] * len(plain)
                )
                del plain
                params = [
                    {"pk": pk_, "old": old, "new_enc": e, "new_bidx": b}
                    for (pk_, old), e, b in zip(stale, new_enc, new_bidx, strict=True)
                ]
                result = s.connection().execute(stmt, params)
                changed = result.rowcount if result.rowcount >= 0 else len(params)
                rewritten += changed
                skipped += len(params) - changed
        if progress:
            progress(spec.name, seen, total)
    return rewritten, skipped


def rotate(
    db: Database,
    key_file: Path,
    *,
    cipher: Cipher = "aes-256-gcm",
    resume: bool = False,
    batch: int = 5_000,
    settle_seconds: float = 3.0,
    retire_old: bool = False,
    progress: Progress | None = None,
) -> RotationReport:
    started = time.perf_counter()
    ring = load_keyring(key_file, create=False)
    if not resume:
        ring = ring.with_new_version(cipher)
        save_keyring(ring, key_file)
        with db.session() as s:
            keycheck.record(s, ring)
            audit.record(
                s,
                None,
                "keys.rotate.start",
                username="cli",
                details={
                    "data_version": ring.current,
                    "blind_version": ring.blind_current,
                    "cipher": cipher,
                },
            )
        # Running servers re-read the key file every couple of seconds; let them, before
        # rows under the new key appear.
        time.sleep(settle_seconds)
    crypto = FieldCrypto(ring)
    report = RotationReport(ring.current, ring.blind_current)
    for spec in REGISTRY:
        rewritten, skipped = _rotate_field(db, crypto, spec, batch, progress)
        report.rewritten[spec.name] = rewritten
        report.skipped_concurrent += skipped
    if retire_old:
        report.retired = retire_unused(db, key_file)
    report.seconds = time.perf_counter() - started
    with db.session() as s:
        audit.record(
            s,
            None,
            "keys.rotate.done",
            username="cli",
            details={
                "data_version": ring.current,
                "rewritten": report.rewritten,
                "skipped_concurrent": report.skipped_concurrent,
                "retired": report.retired,
                "seconds": round(report.seconds, 1),
            },
        )
    return report


def versions_in_use(db: Database) -> set[int]:
    """Data-key versions some stored ciphertext still needs (reads only the 3-byte header)."""
    used: set[int] = set()
    with db.session() as s:
        for spec in REGISTRY:
            enc = getattr(spec.model, spec.ciphertext)
            header = func.substr(enc, 2, 2)
            for (head,) in s.execute(select(header).where(enc.is_not(None)).distinct()):
                used.add(int.from_bytes(bytes(head), "big"))
    return used


def retire_unused(db: Database, key_file: Path) -> list[int]:
    """Drop old data and blind keys no row needs from the key file, into the archive of
    retired keys beside it (``keys.retired_file``), which restores of older backups use."""
    ring: KeyRing = load_keyring(key_file, create=False)
    in_use = versions_in_use(db)
    old_data = {v for v in ring.data_keys if v != ring.current and v not in in_use}
    if in_use - {ring.current}:
        # Some rows still use an old data key: their blind indexes are old too.
        return []
    old_blind = {v for v in ring.blind_keys if v != ring.blind_current}
    # The database forgets them first: a crash in between leaves keys it does not need,
    # never a key file without keys it still names.
    if not old_data and not old_blind:
        return []
    # Kept apart first, so that backups made before stay restorable (``smartunion restore``
    # reads the archive): a crash leaves a key in both files, never in neither.
    archive_retired(
        retired_file(key_file),
        [ring.data_keys[v] for v in sorted(old_data)],
        [ring.blind_keys[v] for v in sorted(old_blind)],
    )
    with db.session() as s:
        keycheck.forget(s, data=old_data, blind=old_blind)
    save_keyring(ring.without_versions(old_data, old_blind), key_file)
    return sorted(old_data)
