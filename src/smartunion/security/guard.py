"""Insider-leak guard (防内部人员批量窃取): weighted budgets, peer-bounded baselines,
alerts, suspension and the security officer's allowances.

Every service that hands out personal data charges it here *before* it leaves, in the same
transaction (``members.service.serve`` is the one entry for member records). What is charged
is weighted by what it exposes: a masked list row weighs 1, a masked detail
``weight_detail``, a plaintext reveal ``weight_reveal``, an export row ``weight_export``
(an export a second, independent person approved weighs 0 and counts only against the export
quota). For each kind the guard knows the user's normal daily amount:

- the 95th percentile of their last 30 active days, bounded above by their peer group (same
  role, same organisation level: ``peer_factor`` × the peers' median) or, once they have
  ``long_min_days`` of history, by their own 90-day median × ``growth_factor`` (whichever
  bound is larger), so that slow growth is not learnt as normal;
- a user with under ``min_history_days`` of history takes the peer group's level;
- never below the floors (a normal day: 5,000 masked list rows, 150 details, 20 reveals).

Today's *excess* is the weighted sum, over kinds, of what was read beyond normal. Past
``alert_margin``: a warning alert. A request that would take it past ``hard_margin`` (plus
any allowance a security officer granted): refused, the user suspended (sessions revoked,
log-in refused), a critical alert. So a scraper gets at most ``hard_margin / weight`` records
of a kind past normal (200 details, 28 reveals, 2,000 list rows by default). Above the
absolute daily quota (weighted) or the export quota (records): refused, not suspended.
Outside working hours more than ``off_hours_alert`` weighted records: an alert.

Counts live in the database (``AccessCounter``, one row per user, hour and kind), so the
limits hold across app servers and restarts; baselines depend only on days before today and
are cached per user (and per peer group) and day. The clock is injectable (``use_clock``) so
that tests can simulate days without sleeping.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from smartunion.config import Settings
from smartunion.db import side_transaction, utcnow
from smartunion.errors import KeepsTransaction
from smartunion.orgs.models import UnionOrg
from smartunion.security import audit
from smartunion.security.models import AccessCounter, AuthSession, SecurityAlert, User
from smartunion.security.permissions import Role
from smartunion.security.principal import Principal

Kind = Literal["list", "detail", "reveal", "export", "export_ok"]
KINDS: tuple[Kind, ...] = ("list", "detail", "reveal", "export", "export_ok")
EXPORT_KINDS: tuple[Kind, ...] = ("export", "export_ok")
LOCAL_TZ = ZoneInfo("Asia/Shanghai")

_clock: Callable[[], dt.datetime] | None = None


def now() -> dt.datetime:
    """The guard's clock: the real time unless a test injected another."""
    return _clock() if _clock is not None else utcnow()


@contextmanager
def use_clock(clock: Callable[[], dt.datetime]) -> Iterator[None]:
    """Run the guard on another clock (simulated days in tests)."""
    global _clock
    before, _clock = _clock, clock
    try:
        yield
    finally:
        _clock = before


class AccessSuspended(KeepsTransaction):
    """The account is suspended pending the security officer's review."""


class QuotaExceeded(KeepsTransaction):
    pass


@dataclass(frozen=True)
class GuardPolicy:
    # A normal day (never warned): these floors, per kind, in records.
    min_normal_daily: int = 5000  # masked list rows
    min_normal_details: int = 150
    min_normal_reveals: int = 20
    min_normal_exports: int = 0
    # What one record exposes, in masked list rows.
    weight_detail: int = 10
    weight_reveal: int = 70
    weight_export: int = 1
    # Weighted records past normal.
    alert_margin: int = 1000
    hard_margin: int = 2000
    daily_read_quota: int = 20000  # weighted, everything today
    daily_export_quota: int = 5000  # export rows today, approved or not
    off_hours_alert: int = 200  # weighted, outside working hours
    work_hours: tuple[int, int] = (7, 21)
    history_days: int = 30
    long_history_days: int = 90
    long_min_days: int = 60
    min_history_days: int = 5
    peer_factor: float = 1.5
    growth_factor: float = 1.25
    allowance_hours: int = 8

    @classmethod
    def from_settings(cls, settings: Settings) -> GuardPolicy:
        return cls(
            min_normal_daily=settings.guard_min_normal_daily,
            min_normal_details=settings.guard_min_normal_details,
            min_normal_reveals=settings.guard_min_normal_reveals,
            alert_margin=settings.guard_alert_margin,
            hard_margin=settings.guard_hard_margin,
            daily_read_quota=settings.daily_read_quota,
            daily_export_quota=settings.daily_export_quota,
        )

    def weight(self, kind: str) -> int:
        return {
            "list": 1,
            "detail": self.weight_detail,
            "reveal": self.weight_reveal,
            "export": self.weight_export,
        }.get(kind, 0)

    def floor(self, kind: str) -> int:
        return {
            "list": self.min_normal_daily,
            "detail": self.min_normal_details,
            "reveal": self.min_normal_reveals,
            "export": self.min_normal_exports,
        }.get(kind, 0)

    def weighted(self, totals: dict[str, int]) -> int:
        return sum(self.weight(kind) * n for kind, n in totals.items())

    def excess(self, totals: dict[str, int], normal: dict[str, int]) -> int:
        """Weighted records read today beyond the normal amount of each kind."""
        return sum(
            self.weight(kind) * max(0, n - normal.get(kind, 0)) for kind, n in totals.items()
        )


def local_day(at: dt.datetime) -> dt.date:
    return at.astimezone(LOCAL_TZ).date()


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), LOCAL_TZ)


def _totals_today(session: Session, user_id: int, day: dt.date) -> dict[str, int]:
    rows = session.execute(
        select(AccessCounter.kind, func.sum(AccessCounter.records))
        .where(AccessCounter.user_id == user_id, AccessCounter.day == day)
        .group_by(AccessCounter.kind)
    ).all()
    return {str(kind): int(total or 0) for kind, total in rows}


def _off_hours_today(session: Session, user_id: int, day: dt.date, policy: GuardPolicy) -> int:
    rows = session.execute(
        select(AccessCounter.hour, AccessCounter.kind, AccessCounter.records).where(
            AccessCounter.user_id == user_id, AccessCounter.day == day
        )
    ).all()
    start, end = policy.work_hours
    return sum(
        policy.weight(kind) * int(n)
        for hour, kind, n in rows
        if not start <= hour.astimezone(LOCAL_TZ).hour < end
    )


# Per user: day -> kind -> records, over the long window, today excluded.
History = dict[int, dict[dt.date, dict[str, int]]]


def _history(session: Session, stmt_filter: object, *, since: dt.date, day: dt.date) -> History:
    stmt = (
        select(
            AccessCounter.user_id,
            AccessCounter.day,
            AccessCounter.kind,
            func.sum(AccessCounter.records),
        )
        .where(AccessCounter.day >= since, AccessCounter.day < day)
        .where(stmt_filter)  # type: ignore[arg-type]
        .group_by(AccessCounter.user_id, AccessCounter.day, AccessCounter.kind)
    )
    history: History = {}
    for uid, on, kind, total in session.execute(stmt):
        history.setdefault(int(uid), {}).setdefault(on, {})[str(kind)] = int(total or 0)
    return history


def _p95(values: list[int]) -> int:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def _recent(days: dict[dt.date, dict[str, int]], since: dt.date) -> list[dict[str, int]]:
    return [kinds for on, kinds in days.items() if on >= since]


def _level_of(days: list[dict[str, int]], kind: str) -> int:
    """p95 of one kind over active days (a day active in another kind counts as 0)."""
    return _p95([kinds.get(kind, 0) for kinds in days]) if days else 0


# Baselines depend only on days before today: computed once per user (and per peer group),
# policy and day instead of on every read (it was most of the guard's cost per request).
_normal_cache: dict[tuple[int, str, GuardPolicy, dt.date], dict[str, int]] = {}
_peer_cache: dict[tuple[str, str, GuardPolicy, dt.date], dict[int, dict[str, int]]] = {}


def clear_baselines() -> None:
    """Forget cached baselines (tests rewrite history; production never does)."""
    _normal_cache.clear()
    _peer_cache.clear()


def normal_daily(
    session: Session, principal: Principal, policy: GuardPolicy, day: dt.date
) -> dict[str, int]:
    """The user's normal amount per kind for ``day``."""
    key = (principal.user_id, str(principal.role), policy, day)
    cached = _normal_cache.get(key)
    if cached is None:
        if len(_normal_cache) > 50_000:
            _normal_cache.clear()
        cached = _normal_cache[key] = _compute_normal(session, principal, policy, day)
    return cached


def _peer_levels(
    session: Session, role: str, level: str, policy: GuardPolicy, day: dt.date
) -> dict[int, dict[str, int]]:
    """Each peer's (same role, same organisation level) p95 per kind over the window."""
    key = (role, level, policy, day)
    cached = _peer_cache.get(key)
    if cached is None:
        if len(_peer_cache) > 5_000:
            _peer_cache.clear()
        since = day - dt.timedelta(days=policy.history_days)
        peers_of_level = (
            select(User.id)
            .join(UnionOrg, UnionOrg.id == User.org_id)
            .where(UnionOrg.level == level)
        )
        history = _history(
            session,
            (AccessCounter.role == role) & AccessCounter.user_id.in_(peers_of_level),
            since=since,
            day=day,
        )
        cached = _peer_cache[key] = {
            uid: {kind: _level_of(list(days.values()), kind) for kind in KINDS}
            for uid, days in history.items()
        }
    return cached


def _compute_normal(
    session: Session, principal: Principal, policy: GuardPolicy, day: dt.date
) -> dict[str, int]:
    long_since = day - dt.timedelta(days=policy.long_history_days)
    since = day - dt.timedelta(days=policy.history_days)
    own_days = _history(
        session, AccessCounter.user_id == principal.user_id, since=long_since, day=day
    ).get(principal.user_id, {})
    recent = _recent(own_days, since)
    level = session.scalar(select(UnionOrg.level).where(UnionOrg.id == principal.org_id))
    peers = _peer_levels(session, str(principal.role), str(level), policy, day)
    peer_rows = [levels for uid, levels in peers.items() if uid != principal.user_id]
    normal: dict[str, int] = {}
    for kind in KINDS:
        floor = policy.floor(kind)
        peer = int(statistics.median(p[kind] for p in peer_rows)) if peer_rows else floor
        if len(recent) < policy.min_history_days:
            normal[kind] = max(floor, peer)  # a newcomer does what their peers do
            continue
        own = _level_of(recent, kind)
        # Bounded by the peers, or by the user's own long history once there is enough of
        # it (a steady heavy reader keeps their level; a slow climber does not).
        bound = peer * policy.peer_factor
        if len(own_days) >= policy.long_min_days:
            long_median = statistics.median(k.get(kind, 0) for k in own_days.values())
            bound = max(bound, long_median * policy.growth_factor)
        normal[kind] = max(floor, min(own, int(bound)))
    return normal


def _alert_once(
    session: Session,
    principal: Principal,
    kind: str,
    severity: str,
    message: str,
    at: dt.datetime,
    details: dict[str, object],
) -> None:
    day = local_day(at)
    exists = session.scalar(
        select(SecurityAlert.id).where(
            SecurityAlert.user_id == principal.user_id,
            SecurityAlert.kind == kind,
            SecurityAlert.created_at >= _day_start(day),
            SecurityAlert.created_at < _day_start(day + dt.timedelta(days=1)),
        )
    )
    if exists is None:
        session.add(
            SecurityAlert(
                user_id=principal.user_id,
                kind=kind,
                severity=severity,
                message=message,
                details=details,
                created_at=at,
                updated_at=at,
            )
        )
        audit.record(
            session,
            principal,
            "security.alert",
            object_type="user",
            object_id=principal.user_id,
            details={"kind": kind, "severity": severity, **details},
        )


def suspend(session: Session, principal: Principal, reason: str) -> None:
    at = now()
    session.execute(
        update(User)
        .where(User.id == principal.user_id)
        .values(suspended_at=at, suspended_reason=reason[:200])
    )
    session.execute(
        update(AuthSession)
        .where(AuthSession.user_id == principal.user_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=at)
    )
    audit.record(
        session,
        principal,
        "security.suspend",
        object_type="user",
        object_id=principal.user_id,
        details={"reason": reason},
    )


def _hour(at: dt.datetime) -> dt.datetime:
    return at.replace(minute=0, second=0, microsecond=0)


def _count(
    session: Session,
    principal: Principal,
    kind: Kind,
    records: int,
    *,
    at: dt.datetime,
    off_hours_of: GuardPolicy | None,
) -> tuple[dict[str, int], int]:
    """Add ``records`` to this hour's counter and return today's totals (with them) and,
    given ``off_hours_of``, today's weighted off-hours reads, in a transaction of its own
    that commits at once.

    The counter is taken before the records leave and holds across concurrent requests and
    server processes: two parallel requests of one user see each other's charges (the
    upsert waits on the other's row on PostgreSQL, on the write lock on SQLite). A counter
    read first and written at the end would let parallel requests pass the limit together.
    """
    day = local_day(at)
    values = {
        "user_id": principal.user_id,
        "role": str(principal.role),
        "hour": _hour(at),
        "day": day,
        "kind": kind,
        "records": records,
    }
    table = AccessCounter.__table__
    with side_transaction(session) as side:
        dialect = side.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt = insert(table).values(**values)  # type: ignore[arg-type]
        stmt = stmt.on_conflict_do_update(
            index_elements=["user_id", "hour", "kind"],
            set_={"records": table.c.records + stmt.excluded.records},
        )
        side.execute(stmt)
        totals = _totals_today(side, principal.user_id, day)
        off = (
            _off_hours_today(side, principal.user_id, day, off_hours_of)
            if off_hours_of is not None
            else 0
        )
    return totals, off


def _uncount(
    session: Session, principal: Principal, kind: Kind, records: int, *, at: dt.datetime
) -> None:
    """Take back a refused request's charge (from the hour it went to): refused records
    were not served."""
    remaining = AccessCounter.records - records
    with side_transaction(session) as side:
        side.execute(
            update(AccessCounter)
            .where(
                AccessCounter.user_id == principal.user_id,
                AccessCounter.hour == _hour(at),
                AccessCounter.kind == kind,
            )
            .values(records=case((remaining > 0, remaining), else_=0))
        )


def _policy(session: Session) -> GuardPolicy:
    policy: GuardPolicy = session.info.get("guard_policy") or GuardPolicy()
    return policy


def charge(session: Session, principal: Principal, *, kind: Kind, records: int) -> None:
    """Account for ``records`` personal-data records of ``kind`` about to be served; raise
    to refuse.

    The policy comes with the session (``Database(guard_policy=...)``), defaults otherwise.
    """
    policy = _policy(session)
    if principal.role is Role.MEMBER or (records <= 0 and kind != "reveal"):
        return  # a member reading their own record is not a leak
    # One query for the account's state: suspension and the officer's allowance.
    state = session.execute(
        select(User.suspended_at, User.guard_allowance, User.guard_allowance_until).where(
            User.id == principal.user_id
        )
    ).one_or_none()
    if state is not None and state.suspended_at is not None:
        raise AccessSuspended("account suspended pending security review")
    charged = max(records, 1) if kind == "reveal" else records
    at = now()
    day = local_day(at)
    start, end = policy.work_hours
    after_hours = not start <= at.astimezone(LOCAL_TZ).hour < end
    totals, off = _count(
        session,
        principal,
        kind,
        charged,
        at=at,
        # The off-hours sum is another query under the write lock: only when it matters.
        off_hours_of=policy if after_hours and policy.weight(kind) else None,
    )
    allowance = 0
    if state is not None and state.guard_allowance_until is not None:
        allowance = int(state.guard_allowance or 0) if state.guard_allowance_until > at else 0
    normal = normal_daily(session, principal, policy, day)
    excess = policy.excess(totals, normal)
    details: dict[str, object] = {"today": totals, "normal": normal, "excess": excess}
    if policy.weight(kind) and excess > policy.hard_margin + allowance:
        suspend(
            session,
            principal,
            f"read {excess} weighted records past normal today (limit {policy.hard_margin})",
        )
        _alert_once(
            session,
            principal,
            "bulk_read_suspended",
            "critical",
            f"今日读取超出正常量 {excess}（加权条数），超过硬上限，账号已暂停",
            at,
            {**details, "allowance": allowance},
        )
        raise AccessSuspended("account suspended: far more records than usual")
    weighted = policy.weighted(totals)
    if policy.weight(kind) and weighted > policy.daily_read_quota:
        _uncount(session, principal, kind, charged, at=at)
        _alert_once(
            session,
            principal,
            "quota",
            "warning",
            "达到每日个人信息读取限额",
            at,
            {"today": weighted, "quota": policy.daily_read_quota},
        )
        raise QuotaExceeded(f"daily quota of {policy.daily_read_quota} records reached")
    exported = sum(totals.get(k, 0) for k in EXPORT_KINDS)
    if kind in EXPORT_KINDS and exported > policy.daily_export_quota:
        _uncount(session, principal, kind, charged, at=at)
        raise QuotaExceeded(f"daily export quota of {policy.daily_export_quota} records reached")
    if excess > policy.alert_margin:
        _alert_once(
            session,
            principal,
            "bulk_read",
            "warning",
            f"今日读取超出正常量 {excess}（加权条数）",
            at,
            details,
        )
    if after_hours and off > policy.off_hours_alert:
        _alert_once(
            session,
            principal,
            "off_hours",
            "warning",
            f"非工作时间读取 {off} 条（加权）会员记录",
            at,
            {"off_hours": off},
        )


def standing(session: Session, principal: Principal) -> tuple[dict[str, int], int]:
    """Today's totals and weighted excess for ``principal`` (what the officer sees)."""
    policy = _policy(session)
    day = local_day(now())
    totals = _totals_today(session, principal.user_id, day)
    return totals, policy.excess(totals, normal_daily(session, principal, policy, day))


def grant_allowance(
    session: Session,
    officer: Principal,
    user: User,
    *,
    points: int | None = None,
    hours: int | None = None,
    reason: str,
) -> tuple[int, dt.datetime]:
    """A security officer's restore: ``points`` weighted records of room past the hard
    margin, until ``hours`` from now; recorded on the account and in the audit trail.

    By default the room is what the user had read past normal when they were restored, so
    they get the full hard margin again rather than being suspended by their next page."""
    policy = _policy(session)
    if points is None:
        org_path = session.scalar(select(UnionOrg.path).where(UnionOrg.id == user.org_id))
        subject = Principal.for_user(
            user_id=user.id,
            username=user.username,
            role=user.role,
            org_id=user.org_id,
            org_path=org_path or "",
        )
        points = max(0, standing(session, subject)[1])
    until = now() + dt.timedelta(hours=hours or policy.allowance_hours)
    user.guard_allowance = points
    user.guard_allowance_until = until
    audit.record(
        session,
        officer,
        "security.allowance",
        object_type="user",
        object_id=user.id,
        details={"points": points, "until": until.isoformat(), "reason": reason[:200]},
    )
    return points, until
