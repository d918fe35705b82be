"""Member use cases. Every read of personal data is audited in the same transaction."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from smartunion.db import begin_write, utcnow
from smartunion.errors import Conflict, InvalidInput, KeepsTransaction, NotFound, TooManyRequests
from smartunion.members import repository as repo
from smartunion.members import schemas
from smartunion.members.models import (
    ID_NUMBER,
    PHONE,
    EmploymentForm,
    Gender,
    Member,
    MemberStatus,
)
from smartunion.orgs import repository as org_repo
from smartunion.orgs import service as org_service
from smartunion.orgs.models import Enterprise
from smartunion.reference import industries
from smartunion.security import audit, guard, identifiers, probes
from smartunion.security.crypto import FieldCrypto
from smartunion.security.masking import mask_birth_date, mask_id_number, mask_name, mask_phone
from smartunion.security.models import AuditEvent, User
from smartunion.security.permissions import Permission
from smartunion.security.principal import Principal
from smartunion.validation import check_citizen_id, check_mobile

ID_FIELD = ID_NUMBER.name
PHONE_FIELD = PHONE.name
REVEALS_PER_HOUR = 30


def _require_read(principal: Principal) -> None:
    if not (principal.can(Permission.MEMBER_READ) or principal.can(Permission.SELF_READ)):
        principal.require(Permission.MEMBER_READ)


def _get(session: Session, principal: Principal, member_id: int, client_ip: str = "") -> Member:
    member = repo.get(session, principal, member_id)
    if member is None:
        raise probes.not_found(session, principal, "member", member_id, client_ip=client_ip)
    return member


def serve(
    session: Session,
    principal: Principal,
    kind: guard.Kind,
    rows: Sequence[Member],
    action: str,
    *,
    details: dict[str, Any] | None = None,
    client_ip: str = "",
    charged: bool = False,
) -> None:
    """The one door member records leave through: charged to the insider guard by what they
    expose, then audited as a read, whatever the verb that produced them (a PATCH or a
    create answers with the record too). Nothing returns a member without passing here.

    ``charged``: a writing use case charged before it wrote (``admit``), so that a refusal
    leaves nothing written."""
    if not charged:
        guard.charge(session, principal, kind=kind, records=len(rows))
    audit.record(
        session,
        principal,
        action,
        object_type="member",
        object_id=rows[0].id if len(rows) == 1 and kind == "detail" else "",
        details=details if details is not None else {"ids": [m.id for m in rows]},
        client_ip=client_ip,
    )


def serve_detail(
    session: Session,
    principal: Principal,
    crypto: FieldCrypto,
    member: Member,
    *,
    via: str = "",
    client_ip: str = "",
    charged: bool = False,
) -> schemas.Member:
    """One masked member record, charged and audited as a ``member.read``."""
    serve(
        session,
        principal,
        "detail",
        [member],
        "member.read",
        details={"via": via} if via else {},
        client_ip=client_ip,
        charged=charged,
    )
    return _detail(session, crypto, member)


def admit(session: Session, principal: Principal) -> None:
    """Charge the record a write will answer with before writing (see ``serve``)."""
    guard.charge(session, principal, kind="detail", records=1)


def _list_item(m: Member) -> schemas.MemberListItem:
    return schemas.MemberListItem(
        id=m.id,
        member_no=m.member_no,
        name=mask_name(m.name),
        gender=m.gender,
        birth_date=mask_birth_date(m.birth_date),
        org_id=m.org_id,
        enterprise_id=m.enterprise_id,
        occupation=m.occupation,
        employment_form=m.employment_form,
        status=m.status,
    )


def _detail(session: Session, crypto: FieldCrypto, m: Member) -> schemas.Member:
    orgs, ents = repo.names_for(
        session, {m.org_id}, {m.enterprise_id} if m.enterprise_id else set()
    )
    phone = crypto.decrypt(m.phone_enc, PHONE_FIELD) if m.phone_enc else None
    return schemas.Member(
        id=m.id,
        member_no=m.member_no,
        name=mask_name(m.name),
        gender=m.gender,
        birth_date=mask_birth_date(m.birth_date),
        id_number=mask_id_number(crypto.decrypt(m.id_number_enc, ID_FIELD)),
        phone=mask_phone(phone) if phone else None,
        ethnicity=m.ethnicity,
        education=m.education,
        org_id=m.org_id,
        org_name=orgs.get(m.org_id, ""),
        enterprise_id=m.enterprise_id,
        enterprise_name=ents.get(m.enterprise_id, "") if m.enterprise_id else "",
        department_id=m.department_id,
        occupation=m.occupation,
        skill_level=m.skill_level,
        employment_form=m.employment_form,
        join_date=m.join_date,
        status=m.status,
    )


def search_filter(crypto: FieldCrypto, q: str | None, **narrow: Any) -> repo.MemberFilter:
    """The filter for a search term: a name prefix or member number as typed, but an ID
    number or phone number only as its blind indexes (the exact lookup), so the value
    itself goes nowhere: not into SQL parameters logged by a driver, not into the audit."""
    term = identifiers.classify(q) if q else None
    if term is None:
        return repo.MemberFilter(q=q, **narrow)
    kind, value = term
    if kind == "id_number":
        # An invalid number matches nobody, but it is still not a name to search for.
        with contextlib.suppress(ValueError):
            value = check_citizen_id(value).number
        return repo.MemberFilter(
            id_number_bidx=tuple(crypto.blind_indexes(value, ID_FIELD)), **narrow
        )
    return repo.MemberFilter(phone_bidx=tuple(crypto.blind_indexes(value, PHONE_FIELD)), **narrow)


@dataclass(frozen=True)
class Membership:
    members: int
    headcount: int

    @property
    def rate(self) -> float | None:
        """Members per employee, or None when the headcount is unknown (0)."""
        return self.members / self.headcount if self.headcount > 0 else None


# Age bands of the member list, the same as the statistics' (stats.members.AGE_BANDS).
AGE_BANDS: dict[str, tuple[int, int | None]] = {
    "16-25": (16, 25),
    "26-35": (26, 35),
    "36-45": (36, 45),
    "46-55": (46, 55),
    "56+": (56, None),
}


def _years_before(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a common year
        return day.replace(year=day.year - years, day=28)


def birth_range(band: str, today: dt.date | None = None) -> tuple[dt.date | None, dt.date]:
    """(born after, born on or before) for the ages of ``band`` today."""
    today = today or dt.date.today()
    lo, hi = AGE_BANDS[band]
    after = _years_before(today, hi + 1) if hi is not None else None
    return after, _years_before(today, lo)


def industry_divisions(code: str) -> tuple[str, ...]:
    """A GB/T 4754 section letter ("B") or division ("06") as the divisions it covers."""
    if industries.section(code) is not None:
        return tuple(d.code for d in industries.divisions() if d.section == code)
    if industries.is_division_code(code):
        return (code,)
    raise InvalidInput("industry", f"not a GB/T 4754-2017 section or division: {code!r}")


def narrowing(
    *,
    gender: Gender | None = None,
    age_band: str | None = None,
    industry: str | None = None,
) -> dict[str, Any]:
    """The list's gender, age band and industry as repository filter fields (for
    :func:`search_filter`'s ``narrow``; the export dataset uses it too)."""
    if age_band is not None and age_band not in AGE_BANDS:
        raise InvalidInput("age_band", f"unknown age band {age_band!r}; known: {list(AGE_BANDS)}")
    born_after, born_by = birth_range(age_band) if age_band else (None, None)
    return {
        "gender": gender,
        "born_after": born_after,
        "born_by": born_by,
        "industry_divisions": industry_divisions(industry) if industry else None,
    }


def list_members(
    session: Session,
    principal: Principal,
    crypto: FieldCrypto,
    *,
    q: str | None = None,
    org_id: int | None = None,
    enterprise_id: int | None = None,
    employment_form: EmploymentForm | None = None,
    status: MemberStatus | None = None,
    gender: Gender | None = None,
    age_band: str | None = None,
    industry: str | None = None,
    sort: repo.MemberSort = "id",
    page: int = 1,
    size: int = 20,
    client_ip: str = "",
) -> tuple[list[schemas.MemberListItem], int]:
    principal.require(Permission.MEMBER_READ)
    org_path = org_service.get_org(session, principal, org_id).path if org_id else None
    where = search_filter(
        crypto,
        q,
        org_path=org_path,
        enterprise_id=enterprise_id,
        employment_form=employment_form,
        status=status,
        **narrowing(gender=gender, age_band=age_band, industry=industry),
    )
    rows, total = repo.search(
        session, principal, where, offset=(page - 1) * size, limit=size, sort=sort
    )
    filters: dict[str, Any] = {
        k: v
        for k, v in {
            # Never the term itself: it may be a name, an ID number or a phone.
            "q": identifiers.audit_term(session, q) if q else None,
            "org_id": org_id,
            "enterprise_id": enterprise_id,
            "employment_form": employment_form,
            "status": status,
            "gender": gender,
            "age_band": age_band,
            "industry": industry,
            "sort": sort if sort != "id" else None,
        }.items()
        if v is not None
    }
    serve(
        session,
        principal,
        # A search by ID number or phone is a lookup: a hit weighs like a detail.
        "detail" if where.id_number_bidx or where.phone_bidx else "list",
        rows,
        "member.list",
        details={"ids": [m.id for m in rows], "total": total, "page": page, "filters": filters},
        client_ip=client_ip,
    )
    return [_list_item(m) for m in rows], total


def membership_by_enterprise(
    session: Session, principal: Principal, enterprises: Sequence[Enterprise]
) -> dict[int, Membership]:
    """Members in good standing and the membership rate (入会率: members over the
    enterprise's headcount) of each employer, for staff who may read members. Counts,
    not records: nothing is served, so nothing is charged."""
    principal.require(Permission.MEMBER_READ)
    counts = repo.active_counts_by_enterprise(session, principal, [e.id for e in enterprises])
    return {e.id: Membership(counts.get(e.id, 0), e.employee_count) for e in enterprises}


def get_member(
    session: Session,
    principal: Principal,
    crypto: FieldCrypto,
    member_id: int,
    *,
    client_ip: str = "",
) -> schemas.Member:
    _require_read(principal)
    member = _get(session, principal, member_id, client_ip)
    return serve_detail(session, principal, crypto, member, client_ip=client_ip)


def get_self(
    session: Session, principal: Principal, crypto: FieldCrypto, *, client_ip: str = ""
) -> schemas.Member:
    """The caller's own record. Their own name is no secret to them, so it comes whole;
    ID number, phone and birth date stay masked on screen (the member's data download
    has them in full, PIPL art. 45)."""
    principal.require(Permission.SELF_READ)
    if principal.member_id is None:
        raise NotFound("member")
    member = _get(session, principal, principal.member_id, client_ip)
    out = serve_detail(session, principal, crypto, member, client_ip=client_ip)
    return out.model_copy(update={"name": member.name})


def _one_reveal_at_a_time(session: Session, principal: Principal) -> None:
    """Serialise one user's reveals until this one commits with its audit event, so that
    parallel requests cannot all pass the hourly limit on the same count. PostgreSQL: the
    user's row; SQLite: the write lock (reveals are rare)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(User.id).where(User.id == principal.user_id).with_for_update())
    else:
        begin_write(session)


def _recent_reveals(session: Session, principal: Principal) -> int:
    since = utcnow() - dt.timedelta(hours=1)
    return (
        session.scalar(
            select(func.count(AuditEvent.id)).where(
                AuditEvent.actor_user_id == principal.user_id,
                AuditEvent.action == "member.reveal",
                # Only reveals that happened: refusals must not push the window out.
                AuditEvent.outcome == "ok",
                AuditEvent.occurred_at >= since,
            )
        )
        or 0
    )


def reveal(
    session: Session,
    principal: Principal,
    crypto: FieldCrypto,
    member_id: int,
    request: schemas.RevealRequest,
    *,
    client_ip: str = "",
) -> schemas.Revealed:
    """Plaintext of chosen fields, for a stated reason; permission-checked, limited, audited."""
    principal.require(Permission.MEMBER_REVEAL)
    member = _get(session, principal, member_id, client_ip)
    _one_reveal_at_a_time(session, principal)
    if _recent_reveals(session, principal) >= REVEALS_PER_HOUR:
        audit.record(
            session,
            principal,
            "member.reveal",
            object_type="member",
            object_id=member.id,
            outcome="denied",
            details={"reason": "rate limit"},
            client_ip=client_ip,
        )
        raise TooManyRequests(f"at most {REVEALS_PER_HOUR} reveals an hour")
    guard.charge(session, principal, kind="reveal", records=1)
    values: dict[str, str | None] = {}
    for field in dict.fromkeys(request.fields):
        if field == "id_number":
            values[field] = crypto.decrypt(member.id_number_enc, ID_FIELD)
        elif field == "phone":
            values[field] = (
                crypto.decrypt(member.phone_enc, PHONE_FIELD) if member.phone_enc else None
            )
        elif field == "name":
            values[field] = member.name
        else:
            values[field] = member.birth_date.isoformat()
    audit.record(
        session,
        principal,
        "member.reveal",
        object_type="member",
        object_id=member.id,
        details={"fields": sorted(values), "reason": identifiers.redact_text(request.reason)},
        client_ip=client_ip,
    )
    return schemas.Revealed(id=member.id, fields=values)


def lookup(
    session: Session,
    principal: Principal,
    crypto: FieldCrypto,
    request: schemas.LookupRequest,
    *,
    client_ip: str = "",
) -> list[schemas.MemberListItem]:
    """Exact match on ID number or phone through the blind index; no plaintext is stored."""
    principal.require(Permission.MEMBER_READ)
    id_bidx: list[str] = []
    phone_bidx: list[str] = []
    try:
        if request.id_number is not None:
            id_bidx = crypto.blind_indexes(check_citizen_id(request.id_number).number, ID_FIELD)
        if request.phone is not None:
            phone_bidx = crypto.blind_indexes(check_mobile(request.phone), PHONE_FIELD)
    except ValueError as exc:
        raise InvalidInput("id_number" if request.id_number else "phone", str(exc)) from exc
    rows = repo.get_by_blind_index(
        session, principal, id_number_bidx=id_bidx, phone_bidx=phone_bidx
    )
    # A hit ties an ID number or phone to a person: it weighs like a detail.
    serve(
        session,
        principal,
        "detail",
        rows,
        "member.lookup",
        details={"by": "id_number" if id_bidx else "phone", "ids": [m.id for m in rows]},
        client_ip=client_ip,
    )
    return [_list_item(m) for m in rows]


def _check_placement(
    session: Session,
    principal: Principal,
    org_id: int | None,
    enterprise_id: int | None,
    department_id: int | None,
) -> None:
    if org_id is not None:
        org_service.get_org(session, principal, org_id)
    if enterprise_id is not None:
        org_service.get_enterprise(session, principal, enterprise_id)
    if department_id is not None:
        dept = org_repo.get_department(session, department_id)
        if dept is None or dept.enterprise_id != enterprise_id:
            raise InvalidInput("department_id", "department does not belong to the enterprise")


def create_member(
    session: Session, principal: Principal, crypto: FieldCrypto, data: schemas.MemberCreate
) -> schemas.Member:
    principal.require(Permission.MEMBER_WRITE)
    org = org_service.get_org(session, principal, data.org_id)
    _check_placement(session, principal, None, data.enterprise_id, data.department_id)
    cid = check_citizen_id(data.id_number)
    id_bidx = crypto.blind_index(cid.number, ID_FIELD)
    if repo.id_number_taken(session, crypto.blind_indexes(cid.number, ID_FIELD)):
        raise _exists_answer(session, principal)
    admit(session, principal)
    member = Member(
        member_no="",
        name=data.name,
        gender=Gender(cid.gender),
        birth_date=cid.birth_date,
        id_number_enc=crypto.encrypt(cid.number, ID_FIELD),
        id_number_bidx=id_bidx,
        phone_enc=crypto.encrypt(data.phone, PHONE_FIELD) if data.phone else None,
        phone_bidx=crypto.blind_index(data.phone, PHONE_FIELD) if data.phone else None,
        ethnicity=data.ethnicity,
        education=data.education,
        org_id=org.id,
        enterprise_id=data.enterprise_id,
        department_id=data.department_id,
        occupation=data.occupation,
        skill_level=data.skill_level,
        employment_form=data.employment_form,
        join_date=data.join_date,
        status=MemberStatus.ACTIVE,
    )
    session.add(member)
    session.flush()
    member.member_no = member_number(org.region_code, member.id)
    repo.forget_counts()
    audit.record(
        session,
        principal,
        "member.create",
        object_type="member",
        object_id=member.id,
        details={"org_id": org.id, "fields": sorted(data.model_dump(exclude_none=True))},
    )
    return serve_detail(session, principal, crypto, member, via="member.create", charged=True)


class AlreadyExists(Conflict, KeepsTransaction):
    """An ID number held somewhere in the province; the audit event and charge are kept."""


def _exists_answer(session: Session, principal: Principal) -> AlreadyExists:
    """ "This person is already a member" is an answer about a person, possibly outside the
    caller's scope: charged and audited like a lookup hit, and it never says where."""
    guard.charge(session, principal, kind="detail", records=1)
    audit.record(
        session,
        principal,
        "member.exists",
        object_type="member",
        outcome="conflict",
        details={"by": "id_number"},
    )
    return AlreadyExists(
        "a member with this ID number already exists (a transfer moves a member between unions)"
    )


def member_number(region_code: str, member_id: int) -> str:
    """会员编号: the province's two-digit code and the record id, unique and stable."""
    return f"{region_code[:2]}{member_id:010d}"


def update_member(
    session: Session,
    principal: Principal,
    crypto: FieldCrypto,
    member_id: int,
    data: schemas.MemberUpdate,
) -> schemas.Member:
    principal.require(Permission.MEMBER_WRITE)
    member = _get(session, principal, member_id)
    admit(session, principal)
    changed = data.model_dump(exclude_unset=True)
    if "enterprise_id" in changed or "department_id" in changed:
        enterprise_id = changed.get("enterprise_id", member.enterprise_id)
        # Moving to another employer drops the old department unless a new one is named.
        if "enterprise_id" in changed and "department_id" not in changed:
            changed["department_id"] = None
        _check_placement(session, principal, None, enterprise_id, changed["department_id"])
    for field, value in changed.items():
        if field == "phone":
            member.phone_enc = crypto.encrypt(value, PHONE_FIELD) if value else None
            member.phone_bidx = crypto.blind_index(value, PHONE_FIELD) if value else None
        else:
            setattr(member, field, value)
    if changed:  # an empty PATCH changes nothing: it is only a read, audited as one
        repo.forget_counts()
        audit.record(
            session,
            principal,
            "member.update",
            object_type="member",
            object_id=member.id,
            details={"fields": sorted(changed)},
        )
    return serve_detail(session, principal, crypto, member, via="member.update", charged=True)
