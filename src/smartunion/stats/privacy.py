"""Privacy of published statistics (统计发布的隐私保护).

Every aggregate the platform publishes — console statistics now, dashboards and briefs
later — goes through :func:`protect`:

1. **Minimum group size k** (default 10). A cell counting fewer than k members is
   suppressed (``None``). If suppressed cells could be recovered from a published total
   (one suppressed cell, or several adding up to fewer than k), the next smallest cells are
   suppressed too (*complementary suppression*), so neither a single small cell nor the sum
   of the hidden ones falls below k. Zero cells are published as zero: an empty group
   reveals nobody.
2. **Differential privacy (optional)**, for counts published outside the union: each cell
   gets Laplace noise of scale 1/ε before suppression. Cells of one histogram are disjoint
   (a member is in one cell), so the release costs ε in total (parallel composition). Each
   release is entered in a ledger and refused when it would exceed the monthly budget.

Guarantees and limits are documented in docs/security.md: k-suppression protects against
small-cell disclosure in one table, not against differencing across many overlapping
releases — that is what the ε budget is for.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from smartunion.db import utcnow
from smartunion.errors import InvalidInput, KeepsTransaction
from smartunion.security import audit
from smartunion.security.principal import Principal
from smartunion.stats.models import PrivacyRelease

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


def spent_this_month(session: Session, scope_org_id: int, now: dt.datetime) -> float:
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return float(
        session.scalar(
            select(func.coalesce(func.sum(PrivacyRelease.epsilon), 0.0)).where(
                PrivacyRelease.org_id == scope_org_id, PrivacyRelease.released_at >= start
            )
        )
        or 0.0
    )


def protect(
    session: Session,
    principal: Principal,
    counts: Mapping[str, int],
    *,
    query: str,
    k: int = DEFAULT_K,
    epsilon: float | None = None,
    monthly_budget: float = 2.0,
    rng: np.random.Generator | None = None,
) -> Release:
    """The publishable form of ``counts``; with ``epsilon``, noisy and entered in the ledger."""
    if epsilon is not None:
        if not MIN_EPSILON <= epsilon <= MAX_EPSILON:
            raise InvalidInput("epsilon", f"between {MIN_EPSILON} and {MAX_EPSILON}")
        now = utcnow()
        spent = spent_this_month(session, principal.org_id, now)
        if spent + epsilon > monthly_budget + 1e-9:
            raise BudgetExhausted(
                f"privacy budget: {spent:.2f} of {monthly_budget:.2f} used this month"
            )
        counts = laplace_counts(counts, epsilon, rng or np.random.default_rng())
        session.add(
            PrivacyRelease(
                org_id=principal.org_id,
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
            object_type="stats",
            details={"query": query, "epsilon": epsilon, "spent_before": round(spent, 4)},
        )
    published = suppress(counts, k)
    cells = [Cell(key, n) for key, n in published.items()]
    total = sum(counts.values())
    return Release(cells=cells, k=k, epsilon=epsilon, total=total if total >= k else None)
