"""Member statistics (会员统计): counts by organisation, industry, employment form, age band,
scoped to the caller's organisations and published only through ``stats.privacy``."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Literal

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from smartunion.members.models import Member, MemberStatus
from smartunion.orgs import repository as org_repo
from smartunion.orgs import service as org_service
from smartunion.orgs.models import Enterprise, UnionOrg
from smartunion.reference import industries
from smartunion.security import audit
from smartunion.security.permissions import Permission
from smartunion.security.principal import Principal
from smartunion.security.scopes import subtree_org_ids
from smartunion.stats import privacy

Dimension = Literal["org", "industry", "employment_form", "age_band", "gender"]
AGE_BANDS = [(16, 25), (26, 35), (36, 45), (46, 55), (56, 200)]


def _band_label(lo: int, hi: int) -> str:
    return f"{lo}–{hi}" if hi < 200 else f"{lo}+"


def _raw_counts(session: Session, root: UnionOrg, by: Dimension, today: dt.date) -> dict[str, int]:
    base = (
        select(Member.id)
        .where(Member.org_id.in_(subtree_org_ids(root.path)))
        .where(Member.status == MemberStatus.ACTIVE)
    )
    if by in ("employment_form", "gender"):
        column = Member.employment_form if by == "employment_form" else Member.gender
        grouped = session.execute(
            select(column, func.count()).where(Member.id.in_(base)).group_by(column)
        ).all()
        return {str(key): int(n) for key, n in grouped}
    if by == "age_band":
        # Birth-date thresholds computed here keep the SQL portable (no date arithmetic).
        whens = [
            (
                Member.birth_date > dt.date(today.year - hi - 1, today.month, min(today.day, 28)),
                _band_label(lo, hi),
            )
            for lo, hi in AGE_BANDS
        ]
        band = case(*whens, else_="other")
        banded = session.execute(
            select(band, func.count()).where(Member.id.in_(base)).group_by(band)
        ).all()
        counts = {_band_label(lo, hi): 0 for lo, hi in AGE_BANDS}
        counts.update({str(key): int(n) for key, n in banded if key != "other"})
        return counts
    if by == "industry":
        by_division = session.execute(
            select(Enterprise.industry_division, func.count())
            .join(Member, Member.enterprise_id == Enterprise.id)
            .where(Member.id.in_(base))
            .group_by(Enterprise.industry_division)
        ).all()
        sections: Counter[str] = Counter()
        for division, n in by_division:
            section = industries.section_of(division)
            sections[section.code if section else "?"] += int(n)
        return dict(sections)
    # by organisation: each direct child's whole subtree
    children = org_repo.children_of(session, root.id)
    by_path = session.execute(
        select(UnionOrg.path, func.count(Member.id))
        .join(Member, Member.org_id == UnionOrg.id)
        .where(Member.id.in_(base))
        .group_by(UnionOrg.path)
    ).all()
    counts = {str(c.id): 0 for c in children}
    own = 0
    for path, n in by_path:
        child = next((c for c in children if path.startswith(c.path)), None)
        if child is None:
            own += int(n)
        else:
            counts[str(child.id)] += int(n)
    if own:
        counts[str(root.id)] = own
    return counts


def labels(session: Session, by: Dimension, keys: list[str]) -> dict[str, str]:
    if by == "org":
        ids = [int(k) for k in keys]
        return {
            str(o.id): o.name for o in session.scalars(select(UnionOrg).where(UnionOrg.id.in_(ids)))
        }
    if by == "industry":
        out = {}
        for key in keys:
            sec = industries.section(key)
            out[key] = f"{key} {sec.name}" if sec else key
        return out
    return {k: k for k in keys}


def member_statistics(
    session: Session,
    principal: Principal,
    *,
    by: Dimension,
    org_id: int | None = None,
    epsilon: float | None = None,
    k: int = privacy.DEFAULT_K,
    monthly_budget: float = 2.0,
    today: dt.date | None = None,
) -> tuple[UnionOrg, privacy.Release]:
    principal.require(Permission.STATS_READ)
    root = org_service.get_org(session, principal, org_id or principal.org_id)
    counts = _raw_counts(session, root, by, today or dt.date.today())
    release = privacy.protect(
        session,
        principal,
        counts,
        query=f"members by {by} under {root.code}",
        k=k,
        epsilon=epsilon,
        monthly_budget=monthly_budget,
    )
    if epsilon is None:
        # Exact (suppressed, not noisy) counts spend no ε and are in no ledger: the audit
        # trail is where differencing by repeated queries shows.
        audit.record(
            session,
            principal,
            "stats.query",
            object_type="stats",
            details={"by": by, "org_id": root.id, "k": k},
        )
    return root, release
