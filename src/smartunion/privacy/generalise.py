"""Generalising what an anonymised member record keeps, until it is one of at least k.

Anonymisation keeps the fields aggregates use. Exact, together they identify: an employer,
a gender, a birth month and a join date are unique in a province more often than not. So
before a record is kept, its quasi-identifiers — organisation, employer, gender, birth
date, join date, employment form — are generalised step by step (a coarser date, no
employer, the organisation one level up) until at least k member records (any status, the
record itself included) fall into the same generalised cell:

====  ============  ========  ==========  ==========
step  organisation  employer  birth       join
====  ============  ========  ==========  ==========
0     own           kept      month       month
1     own           kept      year        year
2     own           —         5 years     5 years
3…    each level up —         10 years    10 years
last  top           —         20 years    20 years
====  ============  ========  ==========  ==========

Gender and employment form are kept at every step. Ranges are aligned to the calendar
(1985–1989, 1980–1989), so records generalised to the same step share the same cell, and
the stored date is the middle of its range. If even the last step holds fewer than k
records (a database with almost no members), the last step is stored and reported.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from smartunion.db import starts_with
from smartunion.members.models import Member
from smartunion.orgs.models import UnionOrg

K_ANONYMITY = 10


@dataclass(frozen=True)
class Step:
    org: UnionOrg
    keep_employer: bool
    months: int  # width of the date ranges: 1, 12, 60, 120, 240


@dataclass(frozen=True)
class Generalised:
    org_id: int
    enterprise_id: int | None
    birth_range: tuple[dt.date, dt.date]
    join_range: tuple[dt.date, dt.date]
    class_size: int
    step: int

    @property
    def reached_k(self) -> bool:
        return self.class_size >= K_ANONYMITY


def date_range(day: dt.date, months: int) -> tuple[dt.date, dt.date]:
    """The calendar-aligned range of ``months`` months that holds ``day``."""
    if months == 1:
        start = day.replace(day=1)
        nxt = (start + dt.timedelta(days=32)).replace(day=1)
        return start, nxt - dt.timedelta(days=1)
    years = months // 12
    first = day.year - day.year % years
    return dt.date(first, 1, 1), dt.date(first + years - 1, 12, 31)


def middle(lo: dt.date, hi: dt.date) -> dt.date:
    if lo.month == hi.month and lo.year == hi.year:
        return lo.replace(day=15)  # a month: the 15th, as anonymisation always stored
    return lo + (hi - lo) / 2


def _steps(session: Session, member: Member) -> list[Step]:
    own = session.get_one(UnionOrg, member.org_id)
    ancestor_ids = [int(p) for p in own.path.strip("/").split("/") if p][:-1]
    ancestors = {
        o.id: o for o in session.scalars(select(UnionOrg).where(UnionOrg.id.in_(ancestor_ids)))
    }
    steps = [Step(own, True, 1), Step(own, True, 12), Step(own, False, 60)]
    steps += [Step(ancestors[i], False, 120) for i in reversed(ancestor_ids) if i in ancestors]
    top = ancestors.get(ancestor_ids[0], own) if ancestor_ids else own
    steps.append(Step(top, False, 240))
    return steps


def _class_size(session: Session, member: Member, step: Step) -> int:
    birth = date_range(member.birth_date, step.months)
    join = date_range(member.join_date, step.months)
    stmt = (
        select(func.count())
        .select_from(Member)
        .join(UnionOrg, UnionOrg.id == Member.org_id)
        .where(starts_with(UnionOrg.path, step.org.path))
        .where(Member.gender == member.gender)
        .where(Member.employment_form == member.employment_form)
        .where(Member.birth_date.between(*birth), Member.join_date.between(*join))
    )
    if step.keep_employer:
        stmt = stmt.where(
            Member.enterprise_id == member.enterprise_id
            if member.enterprise_id is not None
            else Member.enterprise_id.is_(None)
        )
    return int(session.scalar(stmt) or 0)


def generalise(session: Session, member: Member, k: int = K_ANONYMITY) -> Generalised:
    """Apply the first step whose cell holds at least ``k`` records (or the last)."""
    steps = _steps(session, member)
    for number, step in enumerate(steps):
        size = _class_size(session, member, step)
        if size >= k or number == len(steps) - 1:
            break
    birth = date_range(member.birth_date, step.months)
    join = date_range(member.join_date, step.months)
    result = Generalised(
        org_id=step.org.id,
        enterprise_id=member.enterprise_id if step.keep_employer else None,
        birth_range=birth,
        join_range=join,
        class_size=size,
        step=number,
    )
    member.org_id = result.org_id
    member.enterprise_id = result.enterprise_id
    member.birth_date = middle(*birth)
    member.join_date = middle(*join)
    return result
