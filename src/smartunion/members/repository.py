"""Every query for members: all of them start from the scoped statement."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from smartunion.db import starts_with
from smartunion.members.models import EmploymentForm, Gender, Member, MemberStatus
from smartunion.orgs.models import Enterprise, UnionOrg
from smartunion.security.permissions import Role
from smartunion.security.principal import Principal
from smartunion.security.scopes import nothing, scoped_org_ids, subtree_org_ids


def readable_members(principal: Principal, *, lead_with_scope: bool = True) -> Select[Member]:
    """The one scoped statement for members.

    ``lead_with_scope=False`` keeps the same filter but stops the planner from driving the
    query by the organisation index (``org_id + 0``): for a name search in a province-wide
    scope, SQLite otherwise walks a million index entries instead of the name index.
    """
    if principal.role is Role.MEMBER:
        if principal.member_id is None:
            return select(Member).where(nothing())
        return select(Member).where(Member.id == principal.member_id)
    org = Member.org_id if lead_with_scope else Member.org_id + 0
    return select(Member).where(org.in_(scoped_org_ids(principal)))


def get(session: Session, principal: Principal, member_id: int) -> Member | None:
    return session.scalar(readable_members(principal).where(Member.id == member_id))


def get_by_blind_index(
    session: Session,
    principal: Principal,
    *,
    id_number_bidx: Sequence[str] = (),
    phone_bidx: Sequence[str] = (),
) -> Sequence[Member]:
    """Exact match; several hashes per value while a key rotation is under way."""
    stmt = readable_members(principal)
    if id_number_bidx:
        stmt = stmt.where(Member.id_number_bidx.in_(id_number_bidx))
    if phone_bidx:
        stmt = stmt.where(Member.phone_bidx.in_(phone_bidx))
    return session.scalars(stmt.order_by(Member.id).limit(20)).all()


def id_number_taken(session: Session, bidx: Sequence[str]) -> bool:
    return session.scalar(select(Member.id).where(Member.id_number_bidx.in_(bidx))) is not None


@dataclass(frozen=True)
class MemberFilter:
    """What staff narrow a member list by; shared by the list, its count and exports."""

    q: str | None = None
    # An ID number or phone typed as the search term goes here, as blind indexes (one per
    # key during a rotation), never into ``q``: see members.service.search_filter.
    id_number_bidx: tuple[str, ...] = ()
    phone_bidx: tuple[str, ...] = ()
    org_path: str | None = None
    enterprise_id: int | None = None
    employment_form: EmploymentForm | None = None
    status: MemberStatus | None = None
    gender: Gender | None = None
    born_after: dt.date | None = None  # exclusive: an age band's upper bound
    born_by: dt.date | None = None  # inclusive: an age band's lower bound
    industry_divisions: tuple[str, ...] | None = None  # GB/T 4754 divisions of the employer

    def apply(self, stmt: Select[Member]) -> Select[Member]:
        if self.q:
            # Name prefix (uses the name index) or an exact member number.
            stmt = stmt.where(starts_with(Member.name, self.q) | (Member.member_no == self.q))
        if self.id_number_bidx:
            stmt = stmt.where(Member.id_number_bidx.in_(self.id_number_bidx))
        if self.phone_bidx:
            stmt = stmt.where(Member.phone_bidx.in_(self.phone_bidx))
        if self.org_path is not None:
            stmt = stmt.where(Member.org_id.in_(subtree_org_ids(self.org_path)))
        if self.enterprise_id is not None:
            stmt = stmt.where(Member.enterprise_id == self.enterprise_id)
        if self.employment_form is not None:
            stmt = stmt.where(Member.employment_form == self.employment_form)
        if self.status is not None:
            stmt = stmt.where(Member.status == self.status)
        if self.gender is not None:
            stmt = stmt.where(Member.gender == self.gender)
        if self.born_after is not None:
            stmt = stmt.where(Member.birth_date > self.born_after)
        if self.born_by is not None:
            stmt = stmt.where(Member.birth_date <= self.born_by)
        if self.industry_divisions is not None:
            employers = select(Enterprise.id).where(
                Enterprise.industry_division.in_(self.industry_divisions)
            )
            stmt = stmt.where(Member.enterprise_id.in_(employers))
        return stmt


# How a page of members may be ordered; ties fall back to the id, so pages never overlap.
MemberSort = Literal["id", "name", "join_desc", "join_asc"]
_ORDER: dict[str, tuple[Any, ...]] = {
    "id": (Member.id,),
    "name": (Member.name, Member.id),
    "join_desc": (Member.join_date.desc(), Member.id.desc()),
    "join_asc": (Member.join_date, Member.id),
}


# Totals of big lists (a province-wide count walks a million index entries, ~0.2 s on
# SQLite) are kept for a short while per scope and filter; a page's rows are always fresh.
COUNT_TTL_SECONDS = 30.0
_counts: dict[tuple[str, str, int | None, MemberFilter], tuple[float, int]] = {}


def forget_counts() -> None:
    """Forget cached totals and names (after writes in tests; the TTLs do it otherwise)."""
    _counts.clear()
    _names.clear()


def count(session: Session, principal: Principal, where: MemberFilter) -> int:
    key = (principal.org_path, str(principal.role), principal.member_id, where)
    now = time.monotonic()
    hit = _counts.get(key)
    if hit is not None and now - hit[0] < COUNT_TTL_SECONDS:
        return hit[1]
    stmt = where.apply(readable_members(principal, lead_with_scope=not where.q))
    total = session.scalar(stmt.with_only_columns(func.count(Member.id)).order_by(None)) or 0
    if len(_counts) > 10_000:
        _counts.clear()
    _counts[key] = (now, total)
    return total


def active_counts_by_enterprise(
    session: Session, principal: Principal, enterprise_ids: Sequence[int]
) -> dict[int, int]:
    """Members in good standing of each employer, within the caller's scope: one query."""
    if not enterprise_ids:
        return {}
    stmt = (
        readable_members(principal)
        .where(Member.enterprise_id.in_(enterprise_ids), Member.status == MemberStatus.ACTIVE)
        .with_only_columns(Member.enterprise_id, func.count(Member.id))
        .group_by(Member.enterprise_id)
    )
    return {int(ent): int(n) for ent, n in session.execute(stmt).all() if ent is not None}


def search(
    session: Session,
    principal: Principal,
    where: MemberFilter,
    *,
    offset: int = 0,
    limit: int = 20,
    sort: MemberSort = "id",
) -> tuple[Sequence[Member], int]:
    total = count(session, principal, where)
    if sort != "id":
        # Any other order sorts the filtered scope (no index serves name or join date
        # within an organisation subtree): filters narrow it first.
        stmt = where.apply(readable_members(principal, lead_with_scope=not where.q))
        rows = session.scalars(stmt.order_by(*_ORDER[sort]).offset(offset).limit(limit)).all()
        return rows, total
    # Pages come in id order. When the scope holds a large share of all members, walking
    # the primary key and skipping the few outside is cheap, while leading with the
    # organisation index sorts the whole scope (0.3 s for a province of 1M on SQLite). For
    # small scopes the organisation index is the right way in. max(id) is one index probe.
    everyone = session.scalar(select(func.max(Member.id))) or 0
    broad = total * 4 >= everyone
    stmt = where.apply(readable_members(principal, lead_with_scope=not (where.q or broad)))
    rows = session.scalars(stmt.order_by(Member.id).offset(offset).limit(limit)).all()
    return rows, total


def stream(
    session: Session, principal: Principal, where: MemberFilter, *, batch: int = 1000
) -> Iterator[Sequence[Member]]:
    """Keyset pagination in id order: flat memory and no deep OFFSET for long exports."""
    stmt = where.apply(readable_members(principal)).order_by(Member.id).limit(batch)
    last = 0
    while True:
        rows = session.scalars(stmt.where(Member.id > last)).all()
        if not rows:
            return
        yield rows
        last = rows[-1].id


# Organisation and enterprise names by id, kept NAMES_TTL_SECONDS per process: two queries
# on every member detail were an eighth of its cost. Names are public; a renamed
# organisation shows its new name within the TTL.
NAMES_TTL_SECONDS = 30.0
_names: dict[tuple[str, int], tuple[float, str]] = {}


def _cached_names(
    session: Session, kind: str, model: type[UnionOrg] | type[Enterprise], ids: set[int]
) -> dict[int, str]:
    now = time.monotonic()
    out: dict[int, str] = {}
    missing: set[int] = set()
    for i in ids:
        hit = _names.get((kind, i))
        if hit is not None and now - hit[0] < NAMES_TTL_SECONDS:
            out[i] = hit[1]
        else:
            missing.add(i)
    if missing:
        if len(_names) > 100_000:
            _names.clear()
        for row in session.execute(select(model.id, model.name).where(model.id.in_(missing))):
            out[row.id] = row.name
            _names[(kind, row.id)] = (now, row.name)
    return out


def names_for(
    session: Session, org_ids: set[int], enterprise_ids: set[int]
) -> tuple[dict[int, str], dict[int, str]]:
    return (
        _cached_names(session, "org", UnionOrg, org_ids),
        _cached_names(session, "enterprise", Enterprise, enterprise_ids),
    )
