"""Every query for organisations, enterprises and departments."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, aliased

from smartunion.orgs.models import Department, Enterprise, OrgLevel, UnionOrg
from smartunion.security.principal import Principal
from smartunion.security.scopes import org_in_scope, scoped_org_ids, subtree_org_ids


def readable_orgs(principal: Principal) -> Select[UnionOrg]:
    return select(UnionOrg).where(org_in_scope(principal))


def readable_enterprises(principal: Principal) -> Select[Enterprise]:
    return select(Enterprise).where(Enterprise.org_id.in_(scoped_org_ids(principal)))


def get_org(session: Session, principal: Principal, org_id: int) -> UnionOrg | None:
    return session.scalar(readable_orgs(principal).where(UnionOrg.id == org_id))


def get_org_by_code(session: Session, principal: Principal, code: str) -> UnionOrg | None:
    return session.scalar(readable_orgs(principal).where(UnionOrg.code == code))


def list_orgs(
    session: Session,
    principal: Principal,
    *,
    parent_id: int | None = None,
    level: OrgLevel | None = None,
    q: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[Sequence[UnionOrg], int]:
    stmt = readable_orgs(principal)
    if parent_id is not None:
        stmt = stmt.where(UnionOrg.parent_id == parent_id)
    if level is not None:
        stmt = stmt.where(UnionOrg.level == level)
    if q:
        stmt = stmt.where(UnionOrg.name.contains(q, autoescape=True))
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(stmt.order_by(UnionOrg.path).offset(offset).limit(limit)).all()
    return rows, total


def child_counts(session: Session, parent_ids: Sequence[int]) -> dict[int, int]:
    if not parent_ids:
        return {}
    child = aliased(UnionOrg)
    rows = session.execute(
        select(child.parent_id, func.count())
        .where(child.parent_id.in_(parent_ids))
        .group_by(child.parent_id)
    ).all()
    return {int(pid): int(n) for pid, n in rows if pid is not None}


def scope_roots(session: Session, principal: Principal) -> Sequence[UnionOrg]:
    return session.scalars(readable_orgs(principal).where(UnionOrg.id == principal.org_id)).all()


def get_enterprise(session: Session, principal: Principal, ent_id: int) -> Enterprise | None:
    return session.scalar(readable_enterprises(principal).where(Enterprise.id == ent_id))


def list_enterprises(
    session: Session,
    principal: Principal,
    *,
    org_path: str | None = None,
    industry_division: str | None = None,
    q: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[Sequence[Enterprise], int]:
    stmt = readable_enterprises(principal)
    if org_path is not None:
        stmt = stmt.where(Enterprise.org_id.in_(subtree_org_ids(org_path)))
    if industry_division:
        stmt = stmt.where(Enterprise.industry_division == industry_division)
    if q:
        stmt = stmt.where(Enterprise.name.contains(q, autoescape=True))
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(stmt.order_by(Enterprise.id).offset(offset).limit(limit)).all()
    return rows, total


def departments_of(session: Session, enterprise_id: int) -> Sequence[Department]:
    return session.scalars(
        select(Department).where(Department.enterprise_id == enterprise_id).order_by(Department.id)
    ).all()


def get_department(session: Session, dept_id: int) -> Department | None:
    return session.get(Department, dept_id)


def code_taken(session: Session, code: str) -> bool:
    return session.scalar(select(UnionOrg.id).where(UnionOrg.code == code)) is not None


def uscc_taken(session: Session, uscc: str) -> bool:
    return session.scalar(select(Enterprise.id).where(Enterprise.uscc == uscc)) is not None


def children_of(session: Session, org_id: int) -> Sequence[UnionOrg]:
    return session.scalars(
        select(UnionOrg).where(UnionOrg.parent_id == org_id).order_by(UnionOrg.path)
    ).all()
