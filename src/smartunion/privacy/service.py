"""Members exercising their rights, and staff answering them (PIPL 第四十四—四十七条)."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from smartunion.db import utcnow
from smartunion.errors import Conflict, InvalidInput, NotFound
from smartunion.members import repository as member_repo
from smartunion.members import service as member_service
from smartunion.members.models import ConsentRecord, Member, MemberStatus
from smartunion.members.schemas import MemberUpdate
from smartunion.members.service import ID_FIELD, PHONE_FIELD
from smartunion.orgs.models import Enterprise, UnionOrg
from smartunion.privacy.generalise import generalise
from smartunion.privacy.models import NOTE, SubjectRequest
from smartunion.privacy.register import PURPOSES, REGISTER
from smartunion.security import audit, guard, identifiers
from smartunion.security.crypto import FieldCrypto
from smartunion.security.models import AuditEvent, User
from smartunion.security.permissions import Permission
from smartunion.security.principal import Principal
from smartunion.security.scopes import scoped_org_ids
from smartunion.security.service import revoke_all_sessions

ANONYMOUS_NAME = "已匿名"
# Corrections that accepting a request applies to the record (MemberUpdate's fields whose
# value is typed; a new employer, ID number or birth date is changed by hand).
CORRECTABLE_BY_STAFF = frozenset(
    {"name", "phone", "ethnicity", "education", "occupation", "skill_level", "employment_form"}
)


def _self(session: Session, principal: Principal) -> Member:
    principal.require(Permission.SELF_READ)
    member = (
        member_repo.get(session, principal, principal.member_id) if principal.member_id else None
    )
    if member is None:
        raise NotFound("member")
    return member


def consents(session: Session, principal: Principal) -> dict[str, ConsentRecord | None]:
    """The live consent (or None) for each purpose that needs one."""
    member = _self(session, principal)
    rows = session.scalars(
        select(ConsentRecord)
        .where(ConsentRecord.member_id == member.id, ConsentRecord.withdrawn_at.is_(None))
        .order_by(ConsentRecord.id)
    ).all()
    live = {r.purpose: r for r in rows}
    return {key: live.get(key) for key, p in PURPOSES.items() if p.needs_consent}


def grant(session: Session, principal: Principal, purpose: str, *, channel: str) -> ConsentRecord:
    member = _self(session, principal)
    spec = PURPOSES.get(purpose)
    if spec is None or not spec.needs_consent:
        raise InvalidInput("purpose", f"{purpose!r} is not a purpose that takes consent")
    current = consents(session, principal).get(purpose)
    if current is not None and current.version == spec.version:
        return current
    if current is not None:
        current.withdrawn_at = utcnow()  # superseded by consent to the new version
    record = ConsentRecord(
        member_id=member.id, purpose=purpose, version=spec.version, channel=channel[:20]
    )
    session.add(record)
    session.flush()
    audit.record(
        session,
        principal,
        "consent.grant",
        object_type="member",
        object_id=member.id,
        details={"purpose": purpose, "version": spec.version, "channel": channel},
    )
    return record


def withdraw(session: Session, principal: Principal, purpose: str) -> None:
    member = _self(session, principal)
    current = consents(session, principal).get(purpose)
    if current is None:
        raise NotFound("consent")
    current.withdrawn_at = utcnow()
    audit.record(
        session,
        principal,
        "consent.withdraw",
        object_type="member",
        object_id=member.id,
        details={"purpose": purpose},
    )


def my_data(session: Session, principal: Principal, crypto: FieldCrypto) -> dict[str, Any]:
    """Everything held about the caller, in plaintext: it is their own (PIPL 第四十五条)."""
    member = _self(session, principal)
    org = session.get(UnionOrg, member.org_id)
    ent = session.get(Enterprise, member.enterprise_id) if member.enterprise_id else None
    all_consents = session.scalars(
        select(ConsentRecord).where(ConsentRecord.member_id == member.id)
    ).all()
    reads = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.object_type == "member", AuditEvent.object_id == str(member.id))
        .order_by(AuditEvent.id.desc())
        .limit(200)
    ).all()
    audit.record(
        session, principal, "member.self_export", object_type="member", object_id=member.id
    )
    return {
        "profile": {
            "member_no": member.member_no,
            "name": member.name,
            "gender": member.gender.value,
            "birth_date": member.birth_date.isoformat(),
            "id_number": crypto.decrypt(member.id_number_enc, ID_FIELD),
            "phone": crypto.decrypt(member.phone_enc, PHONE_FIELD) if member.phone_enc else None,
            "ethnicity": member.ethnicity,
            "education": member.education.value,
            "union": org.name if org else "",
            "employer": ent.name if ent else "",
            "occupation": member.occupation,
            "skill_level": member.skill_level.value,
            "employment_form": member.employment_form.value,
            "join_date": member.join_date.isoformat(),
            "status": member.status.value,
        },
        "consents": [
            {
                "purpose": c.purpose,
                "version": c.version,
                "granted_at": c.granted_at.isoformat(),
                "withdrawn_at": c.withdrawn_at.isoformat() if c.withdrawn_at else None,
            }
            for c in all_consents
        ],
        # Who looked at my record: by role, not by name (staff are people too).
        "access_log": [
            {"at": e.occurred_at.isoformat(), "action": e.action, "by_role": e.actor_role}
            for e in reads
        ],
    }


def submit_request(
    session: Session,
    principal: Principal,
    crypto: FieldCrypto,
    *,
    kind: str,
    field: str,
    note: str,
) -> SubjectRequest:
    member = _self(session, principal)
    if kind not in ("correction", "deletion"):
        raise InvalidInput("kind", "correction or deletion")
    open_same = session.scalar(
        select(SubjectRequest.id).where(
            SubjectRequest.member_id == member.id,
            SubjectRequest.kind == kind,
            SubjectRequest.status == "open",
        )
    )
    if open_same is not None:
        raise Conflict(f"a {kind} request is already open")
    request = SubjectRequest(
        member_id=member.id,
        org_id=member.org_id,
        kind=kind,
        field=field[:40],
        note_enc=crypto.encrypt(note, NOTE.name) if note else None,
    )
    session.add(request)
    session.flush()
    audit.record(
        session,
        principal,
        f"privacy.{kind}_request",
        object_type="subject_request",
        object_id=request.id,
        details={"field": field},
    )
    return request


def my_requests(session: Session, principal: Principal) -> list[SubjectRequest]:
    member = _self(session, principal)
    return list(
        session.scalars(
            select(SubjectRequest)
            .where(SubjectRequest.member_id == member.id)
            .order_by(SubjectRequest.id.desc())
        )
    )


def open_requests(session: Session, principal: Principal) -> list[SubjectRequest]:
    """Open requests in scope. Their notes may hold new personal values, so listing them
    counts as a read of personal data: audited and charged to the insider-leak guard."""
    principal.require(Permission.MEMBER_WRITE)
    requests = list(
        session.scalars(
            select(SubjectRequest)
            .where(
                SubjectRequest.org_id.in_(scoped_org_ids(principal)),
                SubjectRequest.status == "open",
            )
            .order_by(SubjectRequest.id)
        )
    )
    guard.charge(session, principal, kind="detail", records=len(requests))
    audit.record(
        session,
        principal,
        "privacy.requests_view",
        object_type="subject_request",
        details={"ids": [r.id for r in requests]},
    )
    return requests


def request_note(crypto: FieldCrypto, request: SubjectRequest) -> str:
    return crypto.decrypt(request.note_enc, NOTE.name) if request.note_enc else ""


def resolve_request(
    session: Session,
    principal: Principal,
    crypto: FieldCrypto,
    request_id: int,
    *,
    accept: bool,
    response: str,
    corrected: str | None = None,
) -> SubjectRequest:
    """Accept or refuse a member's request. Accepting a correction with ``corrected`` (the
    right value, for a field of :data:`CORRECTABLE_BY_STAFF`) edits the record in the same
    transaction, audited as ``member.update`` like any edit; without it (the API, or a
    field changed by hand) the request is only marked done."""
    principal.require(Permission.MEMBER_WRITE)
    request = session.scalar(
        select(SubjectRequest).where(
            SubjectRequest.id == request_id,
            SubjectRequest.org_id.in_(scoped_org_ids(principal)),
        )
    )
    if request is None:
        raise NotFound("request")
    if request.status != "open":
        raise Conflict(f"request {request.id} is {request.status}")
    if accept and corrected is not None and request.kind == "correction":
        value = corrected.strip()
        if request.field not in CORRECTABLE_BY_STAFF:
            raise InvalidInput("corrected", f"{request.field or 'this item'} is changed by hand")
        if not value:
            raise InvalidInput("corrected", "the corrected value is required to accept")
        try:
            update = MemberUpdate.model_validate({request.field: value})
        except ValidationError as exc:
            raise InvalidInput("corrected", exc.errors()[0]["msg"]) from None
        member_service.update_member(session, principal, crypto, request.member_id, update)
    request.status = "done" if accept else "refused"
    request.handled_by = principal.user_id
    request.handled_at = utcnow()
    # The reply goes back to the member and stays in the database: numbers in it masked.
    request.response = identifiers.redact_text(response)[:300]
    if accept and request.kind == "deletion":
        member = session.get(Member, request.member_id)
        if member is not None:
            anonymise(session, principal, crypto, member, reason=f"request {request.id}")
    audit.record(
        session,
        principal,
        "privacy.request_resolve",
        object_type="subject_request",
        object_id=request.id,
        details={"accept": accept, "kind": request.kind},
    )
    return request


def anonymise(
    session: Session,
    actor: Principal | None,
    crypto: FieldCrypto,
    member: Member,
    *,
    reason: str,
) -> None:
    """Erase what identifies the member, everywhere; keep what aggregates need, generalised
    until at least k records share it (``privacy.generalise``).

    Gone: name, member number, ID number, phone (and their blind indexes), department,
    occupation and ethnicity (free text), the notes and replies of their requests, the
    username, display name, password, second factor and sessions of their account. The
    audit trail names member accounts only as ``member#<id>`` (``identifiers.audit_username``),
    so with the account row scrubbed the trail no longer leads to the person, and no sealed
    event has to change. Kept, generalised: organisation, employer, gender, birth date, join
    date, employment form; kept as they are: education, skill level, status.
    """
    if member.anonymised_at is not None:
        return
    kept = generalise(session, member)
    member.name = ANONYMOUS_NAME
    member.member_no = f"ANON{member.id:010d}"
    member.id_number_enc = crypto.encrypt("", ID_FIELD)
    # Unique and unguessable, so it can never match a real lookup.
    member.id_number_bidx = "anon-" + secrets.token_hex(13)
    member.phone_enc = None
    member.phone_bidx = None
    member.department_id = None
    member.occupation = ""
    member.ethnicity = ""
    member.anonymised_at = utcnow()
    member_repo.forget_counts()
    if member.status is MemberStatus.ACTIVE:
        member.status = MemberStatus.LEFT
        member.left_at = dt.date.today()
    for consent in session.scalars(
        select(ConsentRecord).where(
            ConsentRecord.member_id == member.id, ConsentRecord.withdrawn_at.is_(None)
        )
    ):
        consent.withdrawn_at = utcnow()
    for request in session.scalars(
        select(SubjectRequest).where(SubjectRequest.member_id == member.id)
    ):
        request.note_enc = None
        request.response = ""
    for user in session.scalars(select(User).where(User.member_id == member.id)):
        user.is_active = False
        user.username = f"anon-{user.id}"
        user.display_name = ""
        # No password verifies against this (not an argon2 hash), no second factor left.
        user.password_hash = "!anonymised"  # noqa: S105  # nosec B105 (not a password)
        user.totp_secret_enc = None
        user.totp_enabled = False
        revoke_all_sessions(session, user.id)
    audit.record(
        session,
        actor,
        "member.anonymise",
        object_type="member",
        object_id=member.id,
        username=None if actor else "retention",
        details={
            "reason": reason,
            "generalised": {
                "step": kept.step,
                "org_id": kept.org_id,
                "employer": kept.enterprise_id is not None,
                "birth": [d.isoformat() for d in kept.birth_range],
                "join": [d.isoformat() for d in kept.join_range],
            },
            "class_size": kept.class_size,
            "k_reached": kept.reached_k,
        },
    )


def register_summary(session: Session, principal: Principal) -> dict[str, Any]:
    """The processing register with live counts for the caller's organisations (DPO page)."""
    if not principal.can(Permission.USER_MANAGE):
        principal.require(Permission.AUDIT_READ)
    in_scope = select(Member.id).where(Member.org_id.in_(scoped_org_ids(principal)))
    consent_counts = {
        row.purpose: row.n
        for row in session.execute(
            select(ConsentRecord.purpose, func.count().label("n"))
            .where(ConsentRecord.withdrawn_at.is_(None), ConsentRecord.member_id.in_(in_scope))
            .group_by(ConsentRecord.purpose)
        )
    }
    members = select(func.count(Member.id)).where(Member.id.in_(in_scope))
    return {
        "activities": [a.__dict__ for a in REGISTER],
        "purposes": [
            {**p.__dict__, "live_consents": consent_counts.get(p.key, 0)} for p in PURPOSES.values()
        ],
        "retention": [
            {"name": r.name, "description": r.description, "keep_days": r.keep.days}
            for r in retention_rules()
        ],
        "members": session.scalar(members) or 0,
        "anonymised": session.scalar(members.where(Member.anonymised_at.is_not(None))) or 0,
    }


def retention_rules() -> list[Any]:
    # Imported late: retention imports this module (anonymise).
    from smartunion.privacy.retention import RULES

    return RULES
