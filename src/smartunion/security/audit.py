"""Audit trail (审计日志): append-only, sealed, chained events written in the caller's transaction.

Each event's ``hash`` is ``HMAC(audit key, prev_hash || canonical JSON of the event)``, with
HMAC-SHA256 (or HMAC-SM3 under the national-algorithm profile, recorded per event in
``alg``). The audit key is derived from the key file, which is not in the database: someone
who can write the database but lacks the key file cannot rewrite events and recompute the
chain. A deleted event leaves a gap in the ids; a changed or inserted one breaks the chain.
A deleted *tail* leaves no trace in the database, so ``smartunion audit verify`` also
checks an external checkpoint file (ids and hashes it saw before, each line sealed too).

On PostgreSQL an advisory transaction lock serialises appenders so two transactions never
chain onto the same predecessor; SQLite serialises writers already.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from smartunion.db import utcnow
from smartunion.security.models import AuditEvent
from smartunion.security.principal import Principal

GENESIS = "0" * 64
ALGORITHMS = {"hmac-sha256": "sha256", "hmac-sm3": "sm3"}
_PG_AUDIT_LOCK = 0x5347_4155  # "SGAU": any constant shared by all appenders


class AuditNotConfigured(RuntimeError):
    pass


def _canonical(event: AuditEvent) -> bytes:
    body = {
        "id": event.id,
        "occurred_at": event.occurred_at.astimezone(dt.UTC).isoformat(),
        "actor_user_id": event.actor_user_id,
        "actor_username": event.actor_username,
        "actor_role": event.actor_role,
        "actor_org_id": event.actor_org_id,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "outcome": event.outcome,
        "details": event.details,
        "client_ip": event.client_ip,
        "alg": event.alg,
    }
    return json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def compute_hash(key: bytes, prev_hash: str, event: AuditEvent) -> str:
    digest = ALGORITHMS[event.alg]
    return hmac.new(key, prev_hash.encode() + _canonical(event), digest).hexdigest()


def _seal(session: Session) -> tuple[bytes, str]:
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
) -> AuditEvent:
    """Append one event. ``details`` must never contain plaintext of a sensitive field.

    Without a principal (log-ins, CLI), ``org_id`` places the event in an organisation, so
    auditors of other branches do not see it.
    """
    key, alg = _seal(session)
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_AUDIT_LOCK})
    last = session.execute(
        select(AuditEvent.id, AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)
    ).first()
    prev_id, prev_hash = (last[0], last[1]) if last else (0, GENESIS)
    event = AuditEvent(
        id=prev_id + 1,
        occurred_at=utcnow(),
        actor_user_id=principal.user_id if principal else None,
        actor_username=principal.username if principal else (username or ""),
        actor_role=str(principal.role) if principal else "",
        actor_org_id=principal.org_id if principal else org_id,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        outcome=outcome,
        details=details or {},
        client_ip=client_ip,
        alg=alg,
        prev_hash=prev_hash,
    )
    event.hash = compute_hash(key, prev_hash, event)
    session.add(event)
    session.flush()
    return event


@dataclass(frozen=True)
class ChainBreak:
    event_id: int
    reason: str


@dataclass(frozen=True)
class Checkpoint:
    event_id: int
    hash: str


def verify_chain(
    session: Session,
    key: bytes,
    *,
    checkpoints: list[Checkpoint] | None = None,
    batch: int = 10_000,
) -> tuple[int, ChainBreak | None]:
    """Walk the whole trail; return (events checked, first break or None)."""
    prev_hash, expected_id, checked = GENESIS, 1, 0
    pending = sorted(checkpoints or [], key=lambda c: c.event_id)
    while True:
        rows = (
            session.execute(
                select(AuditEvent)
                .where(AuditEvent.id >= expected_id)
                .order_by(AuditEvent.id)
                .limit(batch)
            )
            .scalars()
            .all()
        )
        if not rows:
            break
        for event in rows:
            if event.id != expected_id:
                return checked, ChainBreak(
                    expected_id, f"event {expected_id} is missing (next present: {event.id})"
                )
            if event.prev_hash != prev_hash:
                return checked, ChainBreak(event.id, "does not link to the event before it")
            if event.alg not in ALGORITHMS or compute_hash(key, prev_hash, event) != event.hash:
                return checked, ChainBreak(event.id, "content does not match its seal")
            while pending and pending[0].event_id == event.id:
                if pending[0].hash != event.hash:
                    return checked, ChainBreak(event.id, "differs from the checkpointed event")
                pending.pop(0)
            prev_hash, expected_id = event.hash, event.id + 1
            checked += 1
        session.expunge_all()
    if pending:
        return checked, ChainBreak(
            pending[0].event_id, "checkpointed event is gone (trail truncated)"
        )
    return checked, None


def _checkpoint_mac(key: bytes, event_id: int, event_hash: str) -> str:
    return hmac.new(key, f"checkpoint:{event_id}:{event_hash}".encode(), "sha256").hexdigest()


def read_checkpoints(path: Path, key: bytes) -> list[Checkpoint]:
    """Checkpoints from the external file; a line that fails its seal is an error, not skipped."""
    if not path.exists():
        return []
    out = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            cp = Checkpoint(int(data["event_id"]), str(data["hash"]))
            ok = hmac.compare_digest(str(data["mac"]), _checkpoint_mac(key, cp.event_id, cp.hash))
        except (ValueError, KeyError, TypeError):
            ok = False
        if not ok:
            raise ValueError(f"{path}:{lineno}: checkpoint line is damaged or forged")
        out.append(cp)
    return out


def append_checkpoint(path: Path, key: bytes, session: Session) -> Checkpoint | None:
    last = session.execute(
        select(AuditEvent.id, AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)
    ).first()
    if last is None:
        return None
    cp = Checkpoint(int(last[0]), str(last[1]))
    path.parent.mkdir(parents=True, exist_ok=True)
    line = {
        "event_id": cp.event_id,
        "hash": cp.hash,
        "at": utcnow().isoformat(),
        "mac": _checkpoint_mac(key, cp.event_id, cp.hash),
    }
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(line) + "\n")
    return cp
