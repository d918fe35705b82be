"""Audit trail (审计日志): append-only events, sealed on append and chained after commit.

Two seals, so that no request waits for another:

1. **On append**, inside the caller's transaction, each event gets its own ``mac``:
   ``HMAC(audit key, "event:" || canonical JSON of the event without its id, with a random
   ``uid``)``. No chain link, so no lock: concurrent requests append independently, and an
   event commits or rolls back with the work it records.
2. **After commit**, the sealer (``seal_pending``: a thread in every server process, and
   every ``audit`` command) links committed events into one chain in the order it finds
   them: ``seq`` = the next position, ``hash = HMAC(key, prev_hash || canonical JSON with
   the id)``. Ids come from a sequence and may commit out of order; the chain order is the
   sealing order (``seq``), not the id. Sealers take a lock of their own (an advisory lock
   on PostgreSQL, the write lock on SQLite), never one a request waits for.

HMAC-SHA256, or HMAC-SM3 under the national-algorithm profile (``alg``, per event). The key
is derived from the key file, which is not in the database: someone who can write the
database but lacks the key file can neither forge an event nor re-seal a changed one. A
removed, changed, inserted or reordered sealed event breaks the chain; a changed or forged
unsealed event fails its own seal; a copied one repeats its ``uid``. A removed *tail* leaves
no trace in the database, so ``smartunion audit verify`` also checks the external, chained
and signed checkpoint file (``security/checkpoints.py``). The one thing the chain cannot
show is an unsealed event deleted before the sealer ran: that window is the seal interval
(``docs/security.md``).
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import secrets
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, text
from sqlalchemy.orm import Session

from smartunion.db import begin_write, defer_write, utcnow
from smartunion.security import checkpoints, identifiers
from smartunion.security.checkpoints import Checkpoint
from smartunion.security.models import AuditEvent
from smartunion.security.principal import Principal

GENESIS = "0" * 64
ALGORITHMS = {"hmac-sha256": "sha256", "hmac-sm3": "sm3"}
_PG_SEAL_LOCK = 0x5347_4155  # "SGAU": taken by sealers only, never by requests
SEAL_BATCH = 2000
_BODY_FIELDS = (
    "occurred_at",
    "actor_user_id",
    "actor_username",
    "actor_role",
    "actor_org_id",
    "action",
    "object_type",
    "object_id",
    "outcome",
    "details",
    "client_ip",
    "alg",
)


# One statement for every append: compiled once, parameters bound per event.
_INSERT = insert(AuditEvent)


class AuditNotConfigured(RuntimeError):
    pass


def _body(values: Mapping[str, Any]) -> dict[str, Any]:
    body = {name: values[name] for name in _BODY_FIELDS}
    body["occurred_at"] = values["occurred_at"].astimezone(dt.UTC).isoformat()
    return body


def _dump(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def _values(event: AuditEvent) -> dict[str, Any]:
    return {name: getattr(event, name) for name in (*_BODY_FIELDS, "id", "uid")}


def _canonical(event: AuditEvent) -> bytes:
    return _dump({**_body(_values(event)), "id": event.id})


def compute_hash(key: bytes, prev_hash: str, event: AuditEvent) -> str:
    """The chain seal: links ``event`` (with its id) to the one before it."""
    digest = ALGORITHMS[event.alg]
    return hmac.new(key, prev_hash.encode() + _canonical(event), digest).hexdigest()


def compute_mac(key: bytes, values: Mapping[str, Any]) -> str:
    """The append seal of one event: its content and ``uid``, not its id (not known yet)."""
    digest = ALGORITHMS[values["alg"]]
    payload = b"event:" + _dump({**_body(values), "uid": values["uid"]})
    return hmac.new(key, payload, digest).hexdigest()


def _seal_key(session: Session) -> tuple[bytes, str]:
    key = session.info.get("audit_key")
    if not key:
        raise AuditNotConfigured("this session has no audit key: build Database with audit_key")
    return key, session.info.get("audit_alg") or "hmac-sha256"


def record(
    session: Session,
    principal: Principal | None,
    action: str,
    *,
    object_type: str = "",
    object_id: str | int = "",
    outcome: str = "ok",
    details: dict[str, Any] | None = None,
    client_ip: str = "",
    username: str | None = None,
    org_id: int | None = None,
) -> None:
    """Append one event to this transaction. ``details`` must never hold sensitive plaintext.

    The event is written when the transaction commits (``defer_write``) and only then: a
    rolled-back transaction leaves no event, a committed one always has its event. Without
    a principal (log-ins, CLI), ``org_id`` places the event in an organisation, so auditors
    of other branches do not see it.
    """
    key, alg = _seal_key(session)
    values: dict[str, Any] = {
        "uid": secrets.token_hex(16),
        "occurred_at": utcnow(),
        "actor_user_id": principal.user_id if principal else None,
        # A member account by number only: its row, scrubbed on deletion, holds the name.
        "actor_username": identifiers.audit_username(
            principal.user_id, principal.username, principal.role
        )
        if principal
        else (username or ""),
        "actor_role": str(principal.role) if principal else "",
        "actor_org_id": principal.org_id if principal else org_id,
        "action": action,
        "object_type": object_type,
        "object_id": str(object_id),
        "outcome": outcome,
        "details": details or {},
        "client_ip": client_ip,
        "alg": alg,
    }
    # The JSON column stores what json.dumps makes of details: seal exactly that.
    values["details"] = json.loads(json.dumps(values["details"], ensure_ascii=False))
    values["mac"] = compute_mac(key, values)
    defer_write(session, _INSERT, values)


def _mac_ok(key: bytes, event: AuditEvent) -> bool:
    if event.mac is None or event.uid is None or event.alg not in ALGORITHMS:
        return False
    return hmac.compare_digest(event.mac, compute_mac(key, _values(event)))


def _lock_chain(session: Session) -> None:
    begin_write(session)
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_SEAL_LOCK})


def chain_head(session: Session) -> tuple[int, str]:
    last = session.execute(
        select(AuditEvent.seq, AuditEvent.hash)
        .where(AuditEvent.seq.is_not(None))
        .order_by(AuditEvent.seq.desc())
        .limit(1)
    ).first()
    if last is None or last[0] is None:
        return 0, GENESIS
    return int(last[0]), str(last[1])


def seal_pending(session: Session, key: bytes, *, limit: int = SEAL_BATCH) -> int:
    """Link up to ``limit`` committed, unsealed events into the chain; return how many.

    The caller commits. An event whose own seal fails (forged or changed before it was
    sealed) is left out of the chain, so ``verify`` names it.
    """
    _lock_chain(session)
    seq, prev_hash = chain_head(session)
    pending = session.scalars(
        select(AuditEvent).where(AuditEvent.seq.is_(None)).order_by(AuditEvent.id).limit(limit)
    ).all()
    sealed = 0
    for event in pending:
        if not _mac_ok(key, event):
            continue
        seq += 1
        event.seq = seq
        event.prev_hash = prev_hash
        event.hash = prev_hash = compute_hash(key, prev_hash, event)
        sealed += 1
    session.flush()
    return sealed


def seal_all(session_factory: Callable[[], AbstractContextManager[Session]], key: bytes) -> int:
    """Seal every committed event, one short transaction per batch (CLI, tests, shutdown)."""
    total = 0
    while True:
        with session_factory() as session:
            sealed = seal_pending(session, key)
        total += sealed
        if sealed < SEAL_BATCH:
            return total


@dataclass(frozen=True)
class ChainBreak:
    """``event_id``: the chain position (``seq``) of a sealed event, the row id of an
    unsealed one (the reason says which)."""

    event_id: int
    reason: str


@dataclass(frozen=True)
class Verification:
    """What ``verify`` found: sealed events checked, unsealed ones and the first break."""

    sealed: int
    unsealed: int
    oldest_unsealed: dt.datetime | None
    broken: ChainBreak | None

    @property
    def checked(self) -> int:
        return self.sealed + self.unsealed


def verify(
    session: Session,
    key: bytes,
    *,
    checkpoints: list[Checkpoint] | None = None,
    batch: int = 10_000,
) -> Verification:
    """Walk the chain in ``seq`` order, then check every unsealed event's own seal."""
    prev_hash, expected, sealed = GENESIS, 1, 0
    pending = sorted(checkpoints or [], key=lambda c: c.event_id)
    broken: ChainBreak | None = None
    while broken is None:
        rows = (
            session.execute(
                select(AuditEvent)
                .where(AuditEvent.seq >= expected)
                .order_by(AuditEvent.seq)
                .limit(batch)
            )
            .scalars()
            .all()
        )
        if not rows:
            break
        for event in rows:
            broken = _check_link(key, event, expected, prev_hash)
            if broken is None:
                while pending and pending[0].event_id == expected:
                    if pending[0].hash != event.hash:
                        broken = ChainBreak(expected, "differs from the checkpointed event")
                        break
                    pending.pop(0)
            if broken is not None:
                break
            prev_hash, expected = str(event.hash), expected + 1
            sealed += 1
        session.expunge_all()
    if broken is None and pending:
        broken = ChainBreak(pending[0].event_id, "checkpointed event is gone (trail truncated)")
    unsealed, oldest, bad = _check_unsealed(session, key, batch)
    if broken is None and bad is not None:
        broken = bad
    return Verification(sealed, unsealed, oldest, broken)


def _check_link(key: bytes, event: AuditEvent, expected: int, prev: str) -> ChainBreak | None:
    if event.seq != expected:
        return ChainBreak(expected, f"event {expected} is missing (next present: {event.seq})")
    if event.prev_hash != prev:
        return ChainBreak(expected, "does not link to the event before it")
    if event.alg not in ALGORITHMS or compute_hash(key, prev, event) != event.hash:
        return ChainBreak(expected, "content does not match its seal")
    if event.mac is not None and not _mac_ok(key, event):
        return ChainBreak(expected, "content does not match its append seal")
    return None


def _check_unsealed(
    session: Session, key: bytes, batch: int
) -> tuple[int, dt.datetime | None, ChainBreak | None]:
    count, oldest, last_id = 0, None, 0
    seen: set[str] = set()
    while True:
        rows = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.seq.is_(None), AuditEvent.id > last_id)
            .order_by(AuditEvent.id)
            .limit(batch)
        ).all()
        if not rows:
            return count, oldest, None
        # uid is unique in the schema; checked anyway, for someone who dropped the constraint.
        uids = [str(e.uid) for e in rows]
        sealed_uids = set(
            session.scalars(
                select(AuditEvent.uid).where(AuditEvent.uid.in_(uids), AuditEvent.seq.is_not(None))
            )
        )
        for event in rows:
            if not _mac_ok(key, event):
                return (
                    count,
                    oldest,
                    ChainBreak(event.id, "unsealed event (row id) fails its own seal"),
                )
            if event.uid in seen or event.uid in sealed_uids:
                return (
                    count,
                    oldest,
                    ChainBreak(event.id, "unsealed event (row id) repeats another event"),
                )
            seen.add(str(event.uid))
            count += 1
            oldest = event.occurred_at if oldest is None else min(oldest, event.occurred_at)
            last_id = event.id
        session.expunge_all()


def verify_chain(
    session: Session,
    key: bytes,
    *,
    checkpoints: list[Checkpoint] | None = None,
    batch: int = 10_000,
) -> tuple[int, ChainBreak | None]:
    """(events checked, first break or None): ``verify`` in short."""
    result = verify(session, key, checkpoints=checkpoints, batch=batch)
    return result.checked, result.broken


def read_checkpoints(path: Path, key: bytes) -> list[Checkpoint]:
    """The checkpoints the trail must match (``security/checkpoints.py``); a damaged or forged
    line raises ``CheckpointDamaged`` (a ``ValueError``)."""
    return checkpoints.read_checkpoints(path, key)


def append_checkpoint(path: Path, key: bytes, session: Session) -> Checkpoint | None:
    """Add the chain head to the checkpoint file (starting it if there is none); ``None``
    while the chain is empty."""
    if chain_head(session)[0] == 0:
        return None
    entry = checkpoints.append(path, key, session, create=True)
    return Checkpoint(entry.event_id, entry.hash) if entry else None
