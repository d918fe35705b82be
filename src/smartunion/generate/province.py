"""``generate_province``: a synthetic province written into an empty operational store.

Phases (each timed in the report and announced to ``progress``):

1. ``plan`` — places, employers, departments and every member column, in NumPy, from
   one seed (``SeedSequence([seed, province])``, one child stream per concern so that
   changing one concern does not reshuffle the others).
2. ``organisations``, ``enterprises``, ``departments`` — a few thousand rows each.
3. ``members`` — chunk by chunk: strings built column-wise, encryption (optionally in a
   helper process, one chunk ahead), bulk insert.
4. ``indexes`` — the member table's secondary indexes rebuilt (and, on PostgreSQL, its
   foreign keys re-validated); ``statistics`` (ANALYZE) for the query planner; ``commit``.

Everything happens in one transaction: on any error the database is left as it was.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Engine

from smartunion.errors import Conflict
from smartunion.generate import people
from smartunion.generate.encrypt import Encryptor
from smartunion.generate.plan import (
    EnterprisePlan,
    OrgPlan,
    Province,
    ProvinceError,
    Templates,
    build_templates,
    joint_union_name,
    plan_enterprises,
    plan_province,
    quotas,
    union_codes,
)
from smartunion.generate.profiles import JOINT_KINDS, SECTOR_BY_KEY, SECTORS, sector_shares
from smartunion.generate.sink import Sink, open_sink
from smartunion.orgs.models import OrgKind, OrgLevel
from smartunion.security.crypto import FieldCrypto

Progress = Callable[[str, int, int], None]

MEMBER_COLUMNS = (
    "id",
    "member_no",
    "name",
    "gender",
    "birth_date",
    "id_number_enc",
    "id_number_bidx",
    "phone_enc",
    "phone_bidx",
    "ethnicity",
    "education",
    "org_id",
    "enterprise_id",
    "department_id",
    "occupation",
    "skill_level",
    "employment_form",
    "join_date",
    "status",
    "created_at",
    "updated_at",
)
ORG_COLUMNS = (
    "id",
    "code",
    "name",
    "level",
    "kind",
    "region_code",
    "parent_id",
    "path",
    "enterprise_id",
    "created_at",
    "updated_at",
)
ENTERPRISE_COLUMNS = (
    "id",
    "uscc",
    "name",
    "industry_division",
    "ownership",
    "size_class",
    "region_code",
    "employee_count",
    "is_platform",
    "org_id",
    "created_at",
    "updated_at",
)
DEPARTMENT_COLUMNS = ("id", "enterprise_id", "name", "created_at", "updated_at")

# Above this many members a helper process encrypts while the main one inserts.
PARALLEL_FROM = 150_000


class ProvinceExistsError(Conflict):
    """The database already holds this province."""


@dataclass
class GenerationReport:
    province: str
    province_name: str
    seed: int
    as_of: dt.date
    counts: dict[str, int] = field(default_factory=dict)  # rows per table
    details: dict[str, int] = field(default_factory=dict)  # breakdowns worth a glance
    seconds: dict[str, float] = field(default_factory=dict)  # per phase
    workers: int = 0

    @property
    def total_seconds(self) -> float:
        return sum(self.seconds.values())

    def summary(self) -> str:
        tables = ", ".join(f"{k} {v:,}" for k, v in self.counts.items())
        phases = ", ".join(f"{k} {v:.1f}s" for k, v in self.seconds.items())
        rate = self.counts.get("member", 0) / self.total_seconds if self.total_seconds else 0.0
        return (
            f"{self.province} {self.province_name} (seed {self.seed}): {tables}\n"
            f"{phases}; total {self.total_seconds:.1f}s, {rate:,.0f} members/s"
        )


class _Clock:
    def __init__(self, report: GenerationReport) -> None:
        self.report = report

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.report.seconds[name] = self.report.seconds.get(name, 0.0) + (
                time.perf_counter() - start
            )


def generate_province(
    engine: Engine,
    crypto: FieldCrypto,
    *,
    members: int,
    seed: int = 0,
    province: str = "140000",
    progress: Progress | None = None,
    as_of: dt.date | None = None,
    chunk_size: int = 100_000,
    workers: int | None = None,
) -> GenerationReport:
    """Generate ``members`` members of ``province`` with their unions and employers.

    The database must be migrated and must not hold this province yet. The same
    ``seed``, ``province``, ``members`` and ``as_of`` (default: today) give the same
    plaintext data; ciphertexts differ (random nonces). ``workers`` is the number of
    helper processes for encryption (default: one for large runs on a multi-core
    machine, none otherwise). Helpers are *spawned*, which re-imports the ``__main__``
    module: a script calling this must keep its work under ``if __name__ == "__main__"``.
    """
    if members < 1:
        raise ValueError("members must be at least 1")
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    if seed < 0:
        raise ValueError("seed must not be negative")
    place = plan_province(province)  # raises ProvinceError for unknown codes
    as_of = as_of or dt.date.today()
    if workers is None:
        workers = 1 if members >= PARALLEL_FROM and (os.cpu_count() or 1) >= 2 else 0
    report = GenerationReport(province, place.name, seed, as_of, workers=workers)
    clock = _Clock(report)
    tell: Progress = progress or (lambda _phase, _done, _total: None)

    sink = open_sink(engine)
    encryptor: Encryptor | None = None
    try:
        _refuse_existing(sink, place)
        # Start the helper now: its interpreter boots while the plan is drawn.
        encryptor = Encryptor(crypto, workers)
        with clock.phase("plan"):
            tell("plan", 0, 1)
            streams = [
                np.random.default_rng(s)
                for s in np.random.SeedSequence([seed, int(province)]).spawn(4)
            ]
            shares = sector_shares(province[:2])
            member_quotas = quotas(members, shares)
            templates = build_templates(SECTORS)
            enterprises = plan_enterprises(place, member_quotas, templates, streams[0])
            independent = SECTOR_BY_KEY["independent"]
            ind_templates = [
                templates.index[(independent.key, i)] for i in range(len(independent.depts))
            ]
            crowd = people.plan_members(
                place,
                enterprises,
                templates,
                member_quotas.get("independent", 0),
                ind_templates,
                as_of,
                streams[1],
            )
            orgs, ent_org = _assign_unions(place, enterprises, crowd, templates)
            codes = union_codes(
                streams[2],
                [level is OrgLevel.GRASSROOTS for level in orgs.levels],
                orgs.regions,
            )
            tell("plan", 1, 1)
        now = dt.datetime.now(dt.UTC)
        ids = _IdBase(
            org=sink.max_id("union_org") + 1,
            enterprise=sink.max_id("enterprise") + 1,
            department=sink.max_id("department") + 1,
            member=sink.max_id("member") + 1,
        )
        with clock.phase("organisations"):
            _write_orgs(sink, orgs, codes, ids, now, tell)
        with clock.phase("enterprises"):
            _write_enterprises(sink, place, enterprises, ent_org, orgs, ids, now, tell)
        with clock.phase("departments"):
            _write_departments(sink, enterprises, ids, now, tell)
        with clock.phase("members"):
            sink.begin_bulk("member", crowd.n)
            _write_members(sink, encryptor, place, crowd, templates, ids, now, chunk_size, tell)
        with clock.phase("indexes"):
            tell("indexes", 0, 1)
            sink.end_bulk("member")
            tell("indexes", 1, 1)
        with clock.phase("statistics"):
            sink.analyze()
        with clock.phase("commit"):
            sink.commit()
    except BaseException:
        sink.rollback()
        raise
    finally:
        if encryptor is not None:
            encryptor.close()
        sink.close()

    report.counts = {
        "union_org": len(orgs),
        "enterprise": len(enterprises),
        "department": len(enterprises.dept_names),
        "member": crowd.n,
    }
    new_form = np.isin(crowd.form, [people.FORMS.index(f) for f in people.FORMS if f.is_new_form])
    report.details = {
        "city_federations": sum(level is OrgLevel.CITY for level in orgs.levels),
        "county_federations": sum(level is OrgLevel.COUNTY for level in orgs.levels),
        "grassroots_unions": sum(kind is OrgKind.ENTERPRISE for kind in orgs.kinds),
        "joint_unions": sum(kind is OrgKind.JOINT for kind in orgs.kinds),
        "platform_enterprises": sum(s.platform for s in enterprises.sector),
        "members_in_joint_unions": int(crowd.joint.sum()),
        "new_form_members": int(new_form.sum()),
        "self_employed_members": int((crowd.enterprise < 0).sum()),
    }
    return report


def _refuse_existing(sink: Sink, place: Province) -> None:
    prefix = place.code[:2] + "%"
    held = int(
        sink.scalar(
            "SELECT count(*) FROM member m JOIN union_org o ON o.id = m.org_id "
            "WHERE o.region_code LIKE ?",
            (prefix,),
        )
    )
    if held:
        raise ProvinceExistsError(
            f"the database already holds {held:,} members of {place.code} {place.name}; "
            "generate into an empty database or another province"
        )
    orgs = int(sink.scalar("SELECT count(*) FROM union_org WHERE region_code LIKE ?", (prefix,)))
    if orgs:
        raise ProvinceExistsError(
            f"the database already holds {orgs:,} union organisations of {place.code} "
            f"{place.name}; generate into an empty database or another province"
        )


@dataclass(frozen=True, slots=True)
class _IdBase:
    org: int
    enterprise: int
    department: int
    member: int


def _assign_unions(
    place: Province,
    enterprises: EnterprisePlan,
    crowd: people.Members,
    templates: Templates,
) -> tuple[OrgPlan, np.ndarray]:
    """Add joint and grassroots unions to the federation tree; set every member's union.

    Returns the org plan and, per enterprise, the index of the union covering it (its own
    grassroots union, or its county's joint union for its trade).
    """
    orgs = place.orgs
    kinds = list(JOINT_KINDS)
    needed = {
        (loc, s.joint)
        for loc, s, own in zip(
            enterprises.locality, enterprises.sector, enterprises.own_union, strict=True
        )
        if not own
    }
    joint_at: dict[tuple[int, str], int] = {}
    for li, loc in enumerate(place.localities):
        for kind in kinds:
            # Every county runs a regional union for small firms and one for new-form
            # workers (ACFTU campaigns since 2018); trade ones where small firms need them.
            if kind in ("regional", "new_form") or (li, kind) in needed:
                joint_at[(li, kind)] = orgs.add(
                    joint_union_name(loc, kind),
                    OrgLevel.GRASSROOTS,
                    OrgKind.JOINT,
                    loc.code,
                    loc.federation,
                )
    ent_org = np.empty(len(enterprises), dtype=np.int64)
    for e in range(len(enterprises)):
        li = enterprises.locality[e]
        loc = place.localities[li]
        if enterprises.own_union[e]:
            ent_org[e] = orgs.add(
                f"{enterprises.name[e]}工会委员会",
                OrgLevel.GRASSROOTS,
                OrgKind.ENTERPRISE,
                loc.code,
                loc.federation,
                enterprise=e,
            )
        else:
            ent_org[e] = joint_at[(li, enterprises.sector[e].joint)]

    new_form_at = np.array(
        [joint_at[(li, "new_form")] for li in range(len(place.localities))], dtype=np.int64
    )
    has_employer = crowd.enterprise >= 0
    via_new_form = ~has_employer | templates.new_form_union[crowd.template]
    crowd.org = np.where(
        via_new_form,
        new_form_at[crowd.work_loc],
        ent_org[np.maximum(crowd.enterprise, 0)],
    )
    own = np.asarray(enterprises.own_union, dtype=bool)
    crowd.joint = via_new_form | (has_employer & ~own[np.maximum(crowd.enterprise, 0)])
    return orgs, ent_org


def _write_orgs(
    sink: Sink,
    orgs: OrgPlan,
    codes: list[str],
    ids: _IdBase,
    now: dt.datetime,
    tell: Progress,
) -> None:
    total = len(orgs)
    tell("organisations", 0, total)
    stamp = sink.timestamp(now)
    paths: list[str] = []
    rows = []
    for i in range(total):
        oid = ids.org + i
        parent = orgs.parents[i]
        # Parents always precede children in the plan, so one pass builds every path.
        path = (paths[parent] if parent >= 0 else "/") + f"{oid}/"
        paths.append(path)
        rows.append(
            (
                oid,
                codes[i],
                orgs.names[i],
                orgs.levels[i].value,
                orgs.kinds[i].value,
                orgs.regions[i],
                ids.org + parent if parent >= 0 else None,
                path,
                None,  # enterprise_id: set once the enterprises exist (the FKs are circular)
                stamp,
                stamp,
            )
        )
    sink.insert("union_org", ORG_COLUMNS, rows)
    tell("organisations", total, total)


def _write_enterprises(
    sink: Sink,
    place: Province,
    plan: EnterprisePlan,
    ent_org: np.ndarray,
    orgs: OrgPlan,
    ids: _IdBase,
    now: dt.datetime,
    tell: Progress,
) -> None:
    total = len(plan)
    tell("enterprises", 0, total)
    stamp = sink.timestamp(now)
    rows = [
        (
            ids.enterprise + e,
            plan.uscc[e],
            plan.name[e],
            plan.division[e],
            plan.ownership[e].value,
            plan.size_class[e].value,
            place.localities[plan.locality[e]].code,
            plan.employees[e],
            sink.boolean(plan.sector[e].platform),
            ids.org + int(ent_org[e]),
            stamp,
            stamp,
        )
        for e in range(total)
    ]
    sink.insert("enterprise", ENTERPRISE_COLUMNS, rows)
    own = [(ids.org + i, ids.enterprise + e) for i, e in enumerate(orgs.enterprises) if e >= 0]
    sink.set_enterprises([o for o, _ in own], [e for _, e in own])
    tell("enterprises", total, total)


def _write_departments(
    sink: Sink, plan: EnterprisePlan, ids: _IdBase, now: dt.datetime, tell: Progress
) -> None:
    total = len(plan.dept_names)
    tell("departments", 0, total)
    stamp = sink.timestamp(now)
    owners = np.repeat(np.arange(len(plan)), np.asarray(plan.dept_count, dtype=np.int64))
    rows = zip(
        range(ids.department, ids.department + total),
        (ids.enterprise + owners).tolist(),
        plan.dept_names,
        itertools.repeat(stamp),
        itertools.repeat(stamp),
        strict=False,
    )
    sink.insert("department", DEPARTMENT_COLUMNS, rows)
    tell("departments", total, total)


def _labels(values: tuple[str, ...]) -> np.ndarray:
    return np.array(values, dtype=object)


def _write_members(
    sink: Sink,
    encryptor: Encryptor,
    place: Province,
    m: people.Members,
    templates: Templates,
    ids: _IdBase,
    now: dt.datetime,
    chunk_size: int,
    tell: Progress,
) -> None:
    lookup = people.make_lookup(place)
    stamp = sink.timestamp(now)
    gender = _labels(("F", "M"))
    ethnic = _labels(m.ethnic_labels)
    education = _labels(tuple(e.value for e in people.EDUCATION))
    skill = _labels(tuple(s.value for s in people.SKILL))
    form = _labels(tuple(f.value for f in people.FORMS))
    status = _labels(tuple(s.value for s in people.STATUSES))
    occupation = _labels(templates.occ_names)
    member_id = np.arange(ids.member, ids.member + m.n, dtype=np.int64)
    # Same scheme as members.service.member_number: province prefix + 10-digit id.
    member_no = int(place.code[:2]) * 10**10 + member_id
    org_id = ids.org + m.org
    enterprise_id = np.where(m.enterprise >= 0, ids.enterprise + m.enterprise, -1)
    department_id = np.where(m.dept >= 0, ids.department + m.dept, -1)

    def nullable(values: np.ndarray) -> list[object]:
        out = values.astype(object)
        out[values < 0] = None
        result: list[object] = out.tolist()
        return result

    slices = [slice(i, min(i + chunk_size, m.n)) for i in range(0, m.n, chunk_size)]

    def submit(k: int) -> None:
        sl = slices[k]
        # The first chunk is encrypted here: the helper is still starting up.
        here = k == 0
        encryptor.submit(k, people.id_bodies(m, lookup, sl), m.phone[sl], here=here)

    tell("members", 0, m.n)
    ahead = 2  # chunks queued for encryption ahead of the one being inserted
    for k in range(min(ahead, len(slices))):
        submit(k)
    done = 0
    for k, sl in enumerate(slices):
        if k + ahead < len(slices):
            submit(k + ahead)
        enc = encryptor.result(k)
        rows = zip(
            member_id[sl].tolist(),
            pc.cast(pa.array(member_no[sl]), pa.string()).to_pylist(),
            people.names(m, lookup, sl),
            gender[m.male[sl].astype(np.int64)].tolist(),
            sink.dates(m.birth[sl]),
            enc.id_enc,
            enc.id_bidx,
            enc.phone_enc,
            enc.phone_bidx,
            ethnic[m.ethnicity[sl]].tolist(),
            education[m.education[sl]].tolist(),
            org_id[sl].tolist(),
            nullable(enterprise_id[sl]),
            nullable(department_id[sl]),
            occupation[m.occupation[sl]].tolist(),
            skill[m.skill[sl]].tolist(),
            form[m.form[sl]].tolist(),
            sink.dates(m.join[sl]),
            status[m.status[sl]].tolist(),
            itertools.repeat(stamp),
            itertools.repeat(stamp),
            strict=False,
        )
        sink.insert("member", MEMBER_COLUMNS, rows)
        done += sl.stop - sl.start
        tell("members", done, m.n)


__all__ = [
    "GenerationReport",
    "ProvinceError",
    "ProvinceExistsError",
    "generate_province",
]
