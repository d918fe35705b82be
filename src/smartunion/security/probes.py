"""Answers of "not found" are audited: a 404 is also what an out-of-scope probe gets.

A record outside the caller's scope answers exactly like one that does not exist (never say
which), but the audit trail says which id was asked for, by whom, so that someone walking ids
beyond their scope is seen. The event is kept although the request fails.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from smartunion.errors import KeepsTransaction, NotFound
from smartunion.security import audit
from smartunion.security.principal import Principal


class NotFoundRecorded(NotFound, KeepsTransaction):
    """A 404 whose audit event is committed with the refusal."""


def not_found(
    session: Session, principal: Principal, what: str, object_id: str | int, *, client_ip: str = ""
) -> NotFoundRecorded:
    """Record the miss and return the error to raise (only before the use case wrote
    anything: the request's transaction is committed, not rolled back)."""
    audit.record(
        session,
        principal,
        "access.not_found",
        object_type=what,
        object_id=object_id,
        outcome="not_found",
        client_ip=client_ip,
    )
    return NotFoundRecorded(what)
