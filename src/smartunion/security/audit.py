"""Audit trail: append-only, hash-chained events written in the caller's transaction.

The chain: ``hash = SHA-256(prev_hash || canonical JSON of the event)``. On PostgreSQL an
advisory transaction lock serialises appenders so two transactions never chain onto the
same predecessor; SQLite serialises writers already.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from smartunion.db import utcnow
from smartunion.security.models import AuditEvent
from smartunion.security.principal import Principal

GENESIS = "0" * 64
_PG_AUDIT_LOCK = 0x5347_4155  # "SGAU": any constant shared by all appenders


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
    }
    return json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def compute_hash(prev_hash: str, event: AuditEvent) -> str:
    return hashlib.sha256(prev_hash.encode() + _canonical(event)).hexdigest()


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
) -> AuditEvent:
    """Append one event. ``details`` must never contain plaintext of a sensitive field."""
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
        actor_org_id=principal.org_id if principal else None,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        outcome=outcome,
        details=details or {},
        client_ip=client_ip,
        prev_hash=prev_hash,
    )
    event.hash = compute_hash(prev_hash, event)
    session.add(event)
    session.flush()
    return event


@dataclass(frozen=True)
class ChainBreak:
    event_id: int
    reason: str


def verify_chain(session: Session, *, batch: int = 10_000) -> tuple[int, ChainBreak | None]:
    """Walk the whole trail; return (events checked, first break or None)."""
    prev_hash, expected_id, checked = GENESIS, 1, 0
    last_id = 0
    while True:
        rows = (
            session.execute(
                select(AuditEvent)
                .where(AuditEvent.id > last_id)
                .order_by(AuditEvent.id)
                .limit(batch)
            )
            .scalars()
            .all()
        )
        if not rows:
            return checked, None
        for event in rows:
            if event.id != expected_id:
                return checked, ChainBreak(
                    event.id, f"expected event {expected_id} next, found {event.id}"
                )
            if event.prev_hash != prev_hash:
                return checked, ChainBreak(event.id, "does not link to the event before it")
            if compute_hash(prev_hash, event) != event.hash:
                return checked, ChainBreak(event.id, "content does not match its hash")
            prev_hash, expected_id, last_id = event.hash, event.id + 1, event.id
            checked += 1
        session.expunge_all()
