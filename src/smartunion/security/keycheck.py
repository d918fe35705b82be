"""Which keys the database needs: fingerprints of the key file's keys, kept in the database.

A missing or mistyped ``SMARTUNION_SECRET_KEY_FILE`` used to be replaced by a fresh key,
silently: existing members stopped decrypting, new writes went in under the new key, and
the audit chain could never verify again. Now only ``smartunion init``, on an empty
database, creates a key file; it records a fingerprint of each key here. Every other
command and the server load the key file without creating it and compare: a key the
database names that the file lacks, or holds differently, stops them in one line.

A fingerprint is ``SHA-256("smartunion-key-fingerprint" || key)``: keys are 256 random
bits, so the fingerprint tells nothing about the key.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import delete, func, inspect, select, table
from sqlalchemy.orm import Session

from smartunion.security.keys import KeyRing
from smartunion.security.models import KeyFingerprint


class KeyMismatch(RuntimeError):
    """The key file is not the one the database's data was written with."""


def fingerprint(key: bytes) -> str:
    return hashlib.sha256(b"smartunion-key-fingerprint" + key).hexdigest()


def ring_fingerprints(ring: KeyRing) -> dict[tuple[str, int], str]:
    prints = {("signing", 0): fingerprint(ring.signing_key)}
    prints.update({("data", v): fingerprint(k.key) for v, k in ring.data_keys.items()})
    prints.update({("blind", v): fingerprint(k.key) for v, k in ring.blind_keys.items()})
    return prints


def _recorded(session: Session) -> dict[tuple[str, int], str]:
    rows = session.execute(
        select(KeyFingerprint.kind, KeyFingerprint.version, KeyFingerprint.fingerprint)
    )
    return {(kind, version): fp for kind, version, fp in rows}


# Tables whose rows were written under the keys (by name: this layer imports no domain).
_KEYED_TABLES = ("member", "app_user", "audit_event")


def holds_data(session: Session) -> bool:
    """Whether anything in the database was written under some key."""
    inspector = inspect(session.connection())
    if inspector.has_table(KeyFingerprint.__tablename__) and _recorded(session):
        return True
    return any(
        inspector.has_table(name)
        and (session.scalar(select(func.count()).select_from(table(name))) or 0) > 0
        for name in _KEYED_TABLES
    )


def check(session: Session, ring: KeyRing, key_file: object) -> None:
    """Refuse a key file that lacks or changes a key the database uses; record new ones.

    A database from before fingerprints (no rows yet) takes the key file it runs with
    (trust on first use, once).
    """
    if not inspect(session.connection()).has_table(KeyFingerprint.__tablename__):
        return  # schema older than this check: `smartunion init` migrates it
    recorded = _recorded(session)
    have = ring_fingerprints(ring)
    order = {"signing": 0, "data": 1, "blind": 2}
    for (kind, version), fp in sorted(recorded.items(), key=lambda i: (order[i[0][0]], i[0][1])):
        if have.get((kind, version)) != fp:
            what = "signing key" if kind == "signing" else f"{kind} key version {version}"
            state = "lacks" if (kind, version) not in have else "holds a different"
            raise KeyMismatch(
                f"key file {key_file} {state} {what} that the database was written with: "
                "wrong key file? Point SMARTUNION_SECRET_KEY_FILE at the right one (or "
                "restore it from its backup); without it that data cannot be read"
            )
    record(session, ring, recorded=recorded)


def record(
    session: Session, ring: KeyRing, *, recorded: dict[tuple[str, int], str] | None = None
) -> None:
    """Record the key file's keys that the database does not know yet (after a rotation)."""
    if recorded is None:
        recorded = _recorded(session)
    for (kind, version), fp in ring_fingerprints(ring).items():
        if (kind, version) not in recorded:
            session.add(KeyFingerprint(kind=kind, version=version, fingerprint=fp))
    session.flush()


def forget(session: Session, *, data: set[int], blind: set[int]) -> None:
    """Retired keys: the database no longer needs them."""
    for kind, versions in (("data", data), ("blind", blind)):
        if versions:
            session.execute(
                delete(KeyFingerprint).where(
                    KeyFingerprint.kind == kind, KeyFingerprint.version.in_(versions)
                )
            )
