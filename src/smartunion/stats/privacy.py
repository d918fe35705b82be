"""Privacy of published statistics (统计发布的隐私保护).

Every aggregate the platform publishes — console statistics now, dashboards and briefs
later — is released in one of two modes (:data:`Mode`):

1. ``k`` (inside the union): exact counts; every cell, total and derivable group below k
   is suppressed, consistently over all tables the caller can see
   (:mod:`smartunion.stats.suppression`).
2. ``dp`` (for counts published outside the union): each cell gets Laplace noise of scale
   1/ε, then small noisy cells are suppressed (:func:`suppress`, post-processing). Cells of
   one histogram are disjoint (a member is in one cell), so the release costs ε in total
   (parallel composition). Each release is entered in a ledger under the organisation
   whose members it counts, and refused when any member counted would pass the monthly
   budget, whoever asks and from whichever level.

Guarantees and limits are documented in docs/security.md.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from smartunion.db import begin_write, starts_with, utcnow
from smartunion.errors import InvalidInput, KeepsTransaction
from smartunion.orgs.models import UnionOrg
from smartunion.security import audit
from smartunion.security.principal import Principal
from smartunion.stats.models import PrivacyRelease

Mode = Literal["k", "dp"]

DEFAULT_K = 10
# Below 0.01 the noise drowns any count; above 5 it protects next to nothing.
MIN_EPSILON, MAX_EPSILON = 0.01, 5.0


class BudgetExhausted(KeepsTransaction):
    pass


@dataclass(frozen=True)
class Cell:
    key: str
    count: int | None  # None: suppressed

    @property
    def suppressed(self) -> bool:
        return self.count is None


@dataclass(frozen=True)
class Release:
    cells: list[Cell]
    k: int
    epsilon: float | None
    total: int | None  # the published total (noisy under DP); None if it would disclose
    mode: Mode = "k"

    @property
    def suppressed(self) -> int:
        return sum(c.suppressed for c in self.cells)


def suppress(counts: Mapping[str, int], k: int = DEFAULT_K) -> dict[str, int | None]:
    """Primary and complementary suppression of cells below ``k``."""
    out: dict[str, int | None] = dict(counts)
    small = [key for key, n in counts.items() if 0 < n < k]
    for key in small:
        out[key] = None
    if small:
        hidden = sum(counts[key] for key in small)
        candidates = sorted((n, key) for key, n in counts.items() if key not in small and n > 0)
        # Hide more until the hidden cells are at least two and add up to at least k.
        while candidates and (len(small) < 2 or hidden < k):
            n, key = candidates.pop(0)
            out[key] = None
            small.append(key)
            hidden += n
    return out


def laplace_counts(
    counts: Mapping[str, int], epsilon: float, rng: np.random.Generator
) -> dict[str, int]:
    keys = list(counts)
    true = np.array([counts[k] for k in keys], dtype=np.float64)
    noisy = true + rng.laplace(0.0, 1.0 / epsilon, size=len(keys))
    return {k: int(v) for k, v in zip(keys, np.clip(np.rint(noisy), 0, None), strict=True)}


def choose_mode(mode: Mode | None, epsilon: float | None, *, dp_only: bool) -> Mode:
    """The mode of a request, never exact counts by accident: ε alone means ``dp``, ``dp``
    needs ε, and a caller whose role is ``dp_only`` must ask for ``dp``."""
    chosen: Mode = mode or ("dp" if epsilon is not None else "k")
    if chosen == "dp" and epsilon is None:
        raise InvalidInput("epsilon", "required in the dp mode")
    if chosen == "k" and epsilon is not None:
        raise InvalidInput("epsilon", "only in the dp mode")
    if chosen == "k" and dp_only:
        raise InvalidInput(
            "epsilon", "required: this role receives differentially private counts only"
        )
    return chosen


def _serialise_ledger(session: Session, target: UnionOrg) -> None:
    """One budget check at a time per top organisation: otherwise parallel releases all
    read the same spent ε and pass together. PostgreSQL: a row lock on the top of the
    target's path (every release that could count the same members shares it); SQLite: the
    transaction becomes the writer now."""
    if session.get_bind().dialect.name == "postgresql":
        top = int(target.path.strip("/").split("/")[0])
        session.execute(select(UnionOrg.id).where(UnionOrg.id == top).with_for_update())
    else:
        begin_write(session)


def spent_this_month(session: Session, target: UnionOrg, now: dt.datetime) -> float:
    """The most ε already spent this month on any one member counted under ``target``.

    A member of organisation Y is counted by every release about Y or any organisation
    above it. So for a release about ``target``: the releases about ``target`` and its
    ancestors count for all its members, plus, for the members of each organisation below,
    the releases about that organisation and those between it and ``target``.
    """
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    ancestors = [int(p) for p in target.path.strip("/").split("/") if p]
    rows = session.execute(
        select(UnionOrg.path, func.sum(PrivacyRelease.epsilon))
        .join(UnionOrg, UnionOrg.id == PrivacyRelease.org_id)
        .where(PrivacyRelease.released_at >= start)
        .where(PrivacyRelease.org_id.in_(ancestors) | starts_with(UnionOrg.path, target.path))
        .group_by(UnionOrg.path)
    ).all()
    above = sum(float(eps) for path, eps in rows if target.path.startswith(path))
    below = {
        path: float(eps)
        for path, eps in rows
        if path != target.path and path.startswith(target.path)
    }
    deepest = max(
        (sum(eps for p, eps in below.items() if path.startswith(p)) for path in below), default=0.0
    )
    return above + deepest


def protect(
    session: Session,
    principal: Principal,
    counts: Mapping[str, int],
    *,
    target: UnionOrg,
    query: str,
    k: int = DEFAULT_K,
    epsilon: float,
    monthly_budget: float = 2.0,
    rng: np.random.Generator | None = None,
) -> Release:
    """The ``dp`` release of ``counts`` (the table of ``target``): noisy, entered in the
    ledger under ``target``, small noisy cells suppressed."""
    if not MIN_EPSILON <= epsilon <= MAX_EPSILON:
        raise InvalidInput("epsilon", f"between {MIN_EPSILON} and {MAX_EPSILON}")
    _serialise_ledger(session, target)
    now = utcnow()
    spent = spent_this_month(session, target, now)
    if spent + epsilon > monthly_budget + 1e-9:
        raise BudgetExhausted(
            f"privacy budget: {spent:.2f} of {monthly_budget:.2f} used this month"
        )
    counts = laplace_counts(counts, epsilon, rng or np.random.default_rng())
    session.add(
        PrivacyRelease(
            org_id=target.id,
            user_id=principal.user_id,
            query=query[:200],
            epsilon=epsilon,
            released_at=now,
        )
    )
    audit.record(
        session,
        principal,
        "stats.release_dp",
        object_type="org",
        object_id=target.id,
        details={"query": query, "epsilon": epsilon, "spent_before": round(spent, 4)},
    )
    published = suppress(counts, k)
    cells = [Cell(key, n) for key, n in published.items()]
    total = sum(counts.values())
    return Release(
        cells=cells, k=k, epsilon=epsilon, total=total if total >= k else None, mode="dp"
    )
