"""Key figures of the console's home page (工作台): members, joined this month, membership
rate, new-form workers — for the caller's organisation subtree, published in k mode through
``stats.privacy.suppress`` (a figure under k is not shown). Roles restricted to
differential privacy (``Settings.stats_dp_roles``) are not shown these exact figures."""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import dataclass

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from smartunion.members.models import NEW_FORM_EMPLOYMENT, Member, MemberStatus
from smartunion.orgs import service as org_service
from smartunion.orgs.models import Enterprise
from smartunion.security.permissions import Permission
from smartunion.security.principal import Principal
from smartunion.security.scopes import subtree_org_ids
from smartunion.stats import privacy

# The home page is every staff member's first request; a province-wide count walks a
# million rows (one pass, ~0.3 s on SQLite), so a scope's figures are kept for a minute.
CACHE_SECONDS = 60.0
_cache: dict[tuple[str, dt.date, int], tuple[float, KeyFigures]] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class KeyFigures:
    """Each figure is None when it is below k (suppressed) or, for the rate, unknown."""

    members: int | None
    joined_this_month: int | None
    new_form: int | None
    membership_rate: float | None
    k: int


def _raw(session: Session, org_path: str, today: dt.date) -> dict[str, int]:
    month_start = today.replace(day=1)
    in_scope = Member.org_id.in_(subtree_org_ids(org_path))
    row = session.execute(
        select(
            func.count(Member.id),
            func.coalesce(func.sum(case((Member.join_date >= month_start, 1), else_=0)), 0),
            func.coalesce(
                func.sum(case((Member.employment_form.in_(NEW_FORM_EMPLOYMENT), 1), else_=0)), 0
            ),
            func.coalesce(func.sum(case((Member.enterprise_id.is_not(None), 1), else_=0)), 0),
        ).where(in_scope, Member.status == MemberStatus.ACTIVE)
    ).one()
    headcount = session.scalar(
        select(func.coalesce(func.sum(Enterprise.employee_count), 0)).where(
            Enterprise.org_id.in_(subtree_org_ids(org_path))
        )
    )
    members, joined, new_form, employed = (int(v) for v in row)
    return {
        "members": members,
        "joined_this_month": joined,
        "new_form": new_form,
        "in_enterprises": employed,
        "headcount": int(headcount or 0),
    }


def forget() -> None:
    """Forget cached figures (tests write members and look again at once)."""
    with _lock:
        _cache.clear()


def key_figures(
    session: Session,
    principal: Principal,
    *,
    today: dt.date | None = None,
    k: int = privacy.DEFAULT_K,
) -> KeyFigures:
    principal.require(Permission.STATS_READ)
    root = org_service.get_org(session, principal, principal.org_id)
    today = today or dt.date.today()
    key = (root.path, today, k)
    now = time.monotonic()
    with _lock:
        hit = _cache.get(key)
    if hit is not None and now - hit[0] < CACHE_SECONDS:
        return hit[1]
    raw = _raw(session, root.path, today)

    def published(name: str) -> int | None:
        # k mode, one figure at a time: the figures overlap (they are not the cells of one
        # table), so each is a total of its own, hidden below k. The members total is the
        # same number the statistics page publishes for the scope's root.
        return privacy.suppress({name: raw[name]}, k)[name]

    employed = published("in_enterprises")
    rate = employed / raw["headcount"] if employed is not None and raw["headcount"] else None
    figures = KeyFigures(
        members=published("members"),
        joined_this_month=published("joined_this_month"),
        new_form=published("new_form"),
        membership_rate=rate,
        k=k,
    )
    with _lock:
        if len(_cache) > 10_000:
            _cache.clear()
        _cache[key] = (now, figures)
    return figures
