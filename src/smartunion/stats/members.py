"""Member statistics (会员统计): counts by organisation, industry, employment form, age band,
scoped to the caller's organisations and published only through ``stats.privacy``."""

from __future__ import annotations

import datetime as dt
import time
from enum import Enum
from typing import Any, Literal

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.orm import Session

from smartunion.errors import InvalidInput
from smartunion.members.models import EmploymentForm, Gender, Member, MemberStatus
from smartunion.orgs import service as org_service
from smartunion.orgs.models import Enterprise, UnionOrg
from smartunion.reference import industries
from smartunion.security import audit
from smartunion.security.permissions import Permission
from smartunion.security.principal import Principal
from smartunion.security.scopes import subtree_org_ids
from smartunion.stats import privacy
from smartunion.stats.suppression import (
    OrgSuppression,
    OrgTree,
    subtree_totals,
    suppress_dimension,
    suppress_orgs,
)

Dimension = Literal["org", "industry", "employment_form", "age_band", "gender"]
AGE_BANDS = [(16, 25), (26, 35), (36, 45), (46, 55), (56, 200)]
UNKNOWN_INDUSTRY = "?"  # no enterprise, or one without a known industry


def _band_label(lo: int, hi: int) -> str:
    return f"{lo}–{hi}" if hi < 200 else f"{lo}+"


def categories(by: Dimension) -> list[str]:
    """Every category of a dimension, so that a table lists zeros too: which keys appear
    must never depend on who the members are."""
    if by == "gender":
        return [g.value for g in Gender]
    if by == "employment_form":
        return [f.value for f in EmploymentForm]
    if by == "age_band":
        return [_band_label(lo, hi) for lo, hi in AGE_BANDS]
    if by == "industry":
        return [sec.code for sec in industries.sections()] + [UNKNOWN_INDUSTRY]
    raise ValueError(by)


def _category_counts(
    session: Session, path: str, by: Dimension, today: dt.date
) -> dict[int, dict[str, int]]:
    """Active members by (organisation they belong to, category), for a whole subtree."""
    in_subtree = Member.org_id.in_(subtree_org_ids(path))
    active = Member.status == MemberStatus.ACTIVE
    out: dict[int, dict[str, int]] = {}
    if by == "industry":
        rows = session.execute(
            select(Member.org_id, Enterprise.industry_division, func.count())
            .select_from(Member)
            .outerjoin(Enterprise, Member.enterprise_id == Enterprise.id)
            .where(in_subtree, active)
            .group_by(Member.org_id, Enterprise.industry_division)
        ).all()
        for org_id, division, n in rows:
            section = industries.section_of(division) if division else None
            key = section.code if section else UNKNOWN_INDUSTRY
            cell = out.setdefault(int(org_id), {})
            cell[key] = cell.get(key, 0) + int(n)
        return out
    column: ColumnElement[Any]
    if by == "age_band":
        # Birth-date thresholds computed here keep the SQL portable (no date arithmetic); the
        # last band takes everyone older, the first everyone younger: no member is left out.
        whens = [
            (
                Member.birth_date > dt.date(today.year - hi - 1, today.month, min(today.day, 28)),
                _band_label(lo, hi),
            )
            for lo, hi in AGE_BANDS[:-1]
        ]
        column = case(*whens, else_=_band_label(*AGE_BANDS[-1]))
    elif by == "gender":
        column = Member.gender.expression
    else:
        column = Member.employment_form.expression
    rows = session.execute(
        select(Member.org_id, column, func.count())
        .where(in_subtree, active)
        .group_by(Member.org_id, column)
    ).all()
    for org_id, key, n in rows:
        value = key.value if isinstance(key, Enum) else str(key)
        out.setdefault(int(org_id), {})[value] = int(n)
    return out


def _scope_tree(session: Session, root: UnionOrg) -> OrgTree:
    """Every organisation under ``root`` with its own active members."""
    rows = session.execute(
        select(UnionOrg.id, UnionOrg.parent_id).where(UnionOrg.id.in_(subtree_org_ids(root.path)))
    ).all()
    children: dict[int, list[int]] = {}
    for org_id, parent_id in sorted(rows):
        if org_id != root.id and parent_id is not None:
            children.setdefault(int(parent_id), []).append(int(org_id))
    own = {
        int(org_id): int(n)
        for org_id, n in session.execute(
            select(Member.org_id, func.count())
            .where(Member.org_id.in_(subtree_org_ids(root.path)))
            .where(Member.status == MemberStatus.ACTIVE)
            .group_by(Member.org_id)
        ).all()
    }
    return OrgTree(root=root.id, children=children, own=own)


def _org_cells(tree: OrgTree, target: int) -> dict[str, int]:
    """The target's table by organisation: each direct child's subtree and its own members."""
    totals = subtree_totals(tree)
    counts = {str(c): totals[c] for c in tree.children.get(target, ())}
    counts[str(target)] = tree.own.get(target, 0)
    return counts


# The suppression decision of a scope is kept for a short while per process: drilling
# down or switching dimension then costs no new scan of the whole scope, and every table
# asked for within the window comes from the same decision (and the same data).
DECISION_TTL_SECONDS = 30.0
_Decision = tuple[OrgTree, OrgSuppression, dict[int, dict[str, int | None]]]
_decisions: dict[tuple[int, str, int, dt.date], tuple[float, _Decision]] = {}


def forget_decisions() -> None:
    """Forget cached suppression decisions (tests; the TTL does it otherwise)."""
    _decisions.clear()


def _decision(
    session: Session, scope_root: UnionOrg, by: Dimension, k: int, today: dt.date
) -> _Decision:
    key = (scope_root.id, by, k, today)
    now = time.monotonic()
    hit = _decisions.get(key)
    if hit is not None and now - hit[0] < DECISION_TTL_SECONDS:
        return hit[1]
    tree = _scope_tree(session, scope_root)
    orgs = suppress_orgs(tree, k)
    tables: dict[int, dict[str, int | None]] = {}
    if by != "org":
        per_org = _category_counts(session, scope_root.path, by, today)
        tables = suppress_dimension(tree, orgs, per_org, categories(by), k)
    if len(_decisions) > 1_000:
        _decisions.clear()
    _decisions[key] = (now, (tree, orgs, tables))
    return tree, orgs, tables


def _exact_release(
    session: Session,
    scope_root: UnionOrg,
    target: UnionOrg,
    by: Dimension,
    k: int,
    today: dt.date,
) -> privacy.Release:
    """Counts with suppression decided over the caller's whole scope (see stats.suppression),
    so that no table, drill-down or other dimension of it can be subtracted from another."""
    tree, orgs, tables = _decision(session, scope_root, by, k, today)
    published = orgs.published(target.id)
    total = orgs.totals.get(target.id, 0) if published else None
    if by == "org":
        counts = _org_cells(tree, target.id)
        cells = [
            privacy.Cell(
                key,
                n
                if published
                and (
                    (key == str(target.id) and target.id not in orgs.own_hidden)
                    or (key != str(target.id) and orgs.published(int(key)))
                )
                else None,
            )
            for key, n in counts.items()
        ]
        return privacy.Release(cells=cells, k=k, epsilon=None, total=total, mode="k")
    cats = categories(by)
    table = tables.get(target.id) if published else None
    cells = [privacy.Cell(v, table[v] if table else None) for v in cats]
    return privacy.Release(cells=cells, k=k, epsilon=None, total=total, mode="k")


def _dp_counts(session: Session, target: UnionOrg, by: Dimension, today: dt.date) -> dict[str, int]:
    """The target's true counts (noise is added by the caller), every category listed."""
    if by == "org":
        return _org_cells(_scope_tree(session, target), target.id)
    per_org = _category_counts(session, target.path, by, today)
    counts = dict.fromkeys(categories(by), 0)
    for cells in per_org.values():
        for key, n in cells.items():
            counts[key] += n
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
    mode: privacy.Mode | None = None,
    dp_only: bool = False,
    k: int = privacy.DEFAULT_K,
    monthly_budget: float = 2.0,
    today: dt.date | None = None,
) -> tuple[UnionOrg, privacy.Release]:
    """Counts in one of two modes (docs/security.md, *Guarantees of the statistics module*):

    - ``k``: exact counts, consistently suppressed below ``k`` over the caller's scope; for
      work inside the union.
    - ``dp``: Laplace noise of scale 1/ε, charged to the ε budget of the organisations whose
      members are counted; for anything published outside the union. ``dp_only`` callers
      (roles configured so) never receive the ``k`` mode: leaving out ε is refused, not
      answered with exact counts.
    """
    principal.require(Permission.STATS_READ)
    chosen = privacy.choose_mode(mode, epsilon, dp_only=dp_only)
    root = org_service.get_org(session, principal, org_id or principal.org_id)
    day = today or dt.date.today()
    if chosen == "k":
        scope_root = org_service.get_org(session, principal, principal.org_id)
        # Exact (suppressed, not noisy) counts spend no ε and are in no ledger: the audit
        # trail is where differencing by repeated queries shows.
        audit.record(
            session,
            principal,
            "stats.query",
            object_type="stats",
            details={"by": by, "org_id": root.id, "k": k, "mode": "k"},
        )
        return root, _exact_release(session, scope_root, root, by, k, day)
    if epsilon is None:  # choose_mode never lets this through; mypy cannot see it
        raise InvalidInput("epsilon", "required in the dp mode")
    release = privacy.protect(
        session,
        principal,
        _dp_counts(session, root, by, day),
        target=root,
        query=f"members by {by} under {root.code}",
        k=k,
        epsilon=epsilon,
        monthly_budget=monthly_budget,
    )
    return root, release
