"""Retention rules (保存期限) and the purge that applies them: ``smartunion purge``.

Run it daily (cron or a systemd timer). Audit events are not purged: the law asks for at
least six months of logs and the chain is the evidence; archive old events instead.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import ColumnElement, delete, or_, select
from sqlalchemy.orm import Session

from smartunion.db import utcnow
from smartunion.members.models import Member, MemberStatus
from smartunion.privacy.models import SubjectRequest
from smartunion.privacy.service import anonymise
from smartunion.security import audit
from smartunion.security.crypto import FieldCrypto
from smartunion.security.models import AccessCounter, AuthSession, ExportRequest, SecurityAlert


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    keep: dt.timedelta


RULES = [
    Rule("auth_session", "ended log-in sessions and tokens", dt.timedelta(days=30)),
    Rule("access_counter", "insider-guard counters (a year of baseline)", dt.timedelta(days=400)),
    Rule("export_request", "finished export requests", dt.timedelta(days=3 * 365)),
    Rule("security_alert", "resolved security alerts", dt.timedelta(days=3 * 365)),
    Rule("subject_request", "answered rights requests", dt.timedelta(days=3 * 365)),
    Rule("former_member", "members who left: anonymised", dt.timedelta(days=3 * 365)),
]


def purge(
    session: Session, crypto: FieldCrypto, *, now: dt.datetime | None = None, dry_run: bool = False
) -> dict[str, int]:
    now = now or utcnow()
    cutoff = {r.name: now - r.keep for r in RULES}
    counts: dict[str, int] = {}

    def remove(name: str, table: type, where: ColumnElement[bool]) -> None:
        ids = list(session.scalars(select(table.id).where(where)))  # type: ignore[attr-defined]
        counts[name] = len(ids)
        if ids and not dry_run:
            session.execute(delete(table).where(table.id.in_(ids)))  # type: ignore[attr-defined]

    remove(
        "auth_session",
        AuthSession,
        or_(
            AuthSession.expires_at < cutoff["auth_session"],
            AuthSession.revoked_at < cutoff["auth_session"],
        ),
    )
    remove(
        "access_counter",
        AccessCounter,
        AccessCounter.day < cutoff["access_counter"].date(),
    )
    remove(
        "export_request",
        ExportRequest,
        ExportRequest.status.in_(("downloaded", "rejected"))
        & (ExportRequest.updated_at < cutoff["export_request"]),
    )
    remove(
        "security_alert",
        SecurityAlert,
        SecurityAlert.resolved_at < cutoff["security_alert"],
    )
    remove(
        "subject_request",
        SubjectRequest,
        SubjectRequest.status.in_(("done", "refused"))
        & (SubjectRequest.handled_at < cutoff["subject_request"]),
    )
    former = list(
        session.scalars(
            select(Member).where(
                Member.status.in_(
                    (MemberStatus.LEFT, MemberStatus.TRANSFERRED_OUT, MemberStatus.DECEASED)
                ),
                Member.left_at < cutoff["former_member"].date(),
                Member.anonymised_at.is_(None),
            )
        )
    )
    counts["former_member"] = len(former)
    if not dry_run:
        for member in former:
            anonymise(session, None, crypto, member, reason="retention")
    audit.record(
        session,
        None,
        "privacy.purge",
        username="retention",
        details={"counts": counts, "dry_run": dry_run},
    )
    return counts
