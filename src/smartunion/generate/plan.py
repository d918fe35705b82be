"""Planning the province: places, employers, departments and the union tree.

Everything here is small next to the members (thousands of employers for a million
members), so plain Python loops over employers are fine; only the members are built
column-wise in :mod:`smartunion.generate.people`. All randomness comes from the
generators passed in, so a seed fixes the plan.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from smartunion.generate import profiles
from smartunion.generate.profiles import JOINT_KINDS, Dept, Pattern, Sector
from smartunion.generate.vocab import (
    BRAND_CHARS,
    PROVINCE_ABBREVIATIONS,
    ordinal,
    short_place_name,
)
from smartunion.members.models import EmploymentForm
from smartunion.orgs.models import OrgKind, OrgLevel, Ownership, SizeClass
from smartunion.reference.regions import Region, children, region
from smartunion.validation import USCC_ALPHABET, make_usccs

FloatArray = npt.NDArray[np.float64]

# Trade Union Law art. 11: a unit with 25 members or more shall set up a grassroots union
# committee; smaller ones may join with others (here: the county's joint unions). Public
# bodies (机关、事业单位) keep their own union from a much smaller headcount.
UNION_THRESHOLD = 25
INSTITUTION_UNION_THRESHOLD = 8

# ACFTU mobilised new-form workers from 2018 (the "eight groups" campaign): their
# memberships start then.
NEW_FORM_SINCE = dt.date(2018, 3, 1)

_FORMS = tuple(EmploymentForm)
_SUFFIXES = (("有限公司", 0.62), ("有限责任公司", 0.3), ("股份有限公司", 0.08))


class ProvinceError(ValueError):
    """The province cannot be generated (unknown code, not served by the ACFTU …)."""


@dataclass(frozen=True, slots=True)
class Locality:
    """A county-level place where employers sit (or a city without counties)."""

    code: str
    name: str  # as used in union names, e.g. 小店区 or 阳泉市城区 (disambiguated)
    short: str  # as put in front of a company brand, e.g. 小店
    city_name: str  # 太原市; the province's name for 省直辖 counties
    city_short: str
    city_key: int  # localities with the same key share a city
    weight: float  # share of the province's employers, before sector preferences
    urban: float  # 1 city district, 0 county-level city, -1 county
    federation: int  # index of its union federation in the org plan


@dataclass
class OrgPlan:
    """Union organisations, columnar, in id order. ``parent`` indexes into the same plan."""

    names: list[str] = field(default_factory=list)
    levels: list[OrgLevel] = field(default_factory=list)
    kinds: list[OrgKind] = field(default_factory=list)
    regions: list[str] = field(default_factory=list)
    parents: list[int] = field(default_factory=list)  # -1 for the root
    enterprises: list[int] = field(default_factory=list)  # enterprise index or -1

    def add(
        self,
        name: str,
        level: OrgLevel,
        kind: OrgKind,
        region_code: str,
        parent: int,
        enterprise: int = -1,
    ) -> int:
        self.names.append(name)
        self.levels.append(level)
        self.kinds.append(kind)
        self.regions.append(region_code)
        self.parents.append(parent)
        self.enterprises.append(enterprise)
        return len(self.names) - 1

    def __len__(self) -> int:
        return len(self.names)


@dataclass(frozen=True, slots=True)
class Province:
    code: str
    name: str
    short: str
    abbreviation: str
    localities: tuple[Locality, ...]
    orgs: OrgPlan  # root, city and county federations


def plan_province(code: str) -> Province:
    """The province's places and its federation tree (province → city → county)."""
    province = region(code)
    if province is None or province.level != "province":
        raise ProvinceError(f"{code!r} is not a GB/T 2260 province code (e.g. 140000 山西省)")
    abbreviation = PROVINCE_ABBREVIATIONS.get(code[:2])
    if abbreviation is None:
        raise ProvinceError(
            f"{code} {province.name}: the ACFTU has no local federation there; "
            "choose a mainland province"
        )
    orgs = OrgPlan()
    root = orgs.add(f"{province.name}总工会", OrgLevel.PROVINCE, OrgKind.FEDERATION, code, -1)
    capital: str | None = None
    # (region, parent org, city name, city short name, city key)
    places: list[tuple[Region, int, str, str, int]] = []
    for city_key, child in enumerate(children(code)):
        if child.level == "county":  # 省直辖县级行政区划: straight under the province
            places.append((child, root, province.name, short_place_name(province.name), city_key))
            continue
        counties = children(child.code)
        if child.name == province.name:
            # Municipalities: the prefecture rows repeat the city (110100 北京市); their
            # districts hang under the municipal federation itself.
            for county in counties:
                places.append((county, root, province.name, short_place_name(province.name), 0))
            continue
        capital = capital or child.code
        fed = orgs.add(f"{child.name}总工会", OrgLevel.CITY, OrgKind.FEDERATION, child.code, root)
        if not counties:  # 东莞市, 中山市 …: the city is its own county-level place
            places.append((child, fed, child.name, short_place_name(child.name), city_key))
        for county in counties:
            places.append((county, fed, child.name, short_place_name(child.name), city_key))
    if not places:
        raise ProvinceError(f"{code} {province.name} has no county-level divisions to populate")
    counts: dict[str, int] = {}
    for place, *_ in places:
        counts[place.name] = counts.get(place.name, 0) + 1
    localities: list[Locality] = []
    for place, parent, city_name, city_short, city_key in places:
        # Two counties called 城区 in one province: say whose (阳泉市城区, 晋城市城区).
        display = place.name if counts[place.name] == 1 else city_name + place.name
        urban = _urban_score(place)
        weight = {1.0: 1.6, 0.0: 1.1, -1.0: 0.7}[urban]
        if capital is not None and place.code[:4] == capital[:4]:
            weight *= 2.0  # the provincial capital draws employers
        fed = parent
        if place.level == "county":
            level = OrgLevel.COUNTY
            fed = orgs.add(f"{display}总工会", level, OrgKind.FEDERATION, place.code, parent)
        localities.append(
            Locality(
                code=place.code,
                name=display,
                short=short_place_name(place.name),
                city_name=city_name,
                city_short=city_short,
                city_key=city_key,
                weight=weight,
                urban=urban,
                federation=fed,
            )
        )
    return Province(
        code=code,
        name=province.name,
        short=short_place_name(province.name),
        abbreviation=abbreviation,
        localities=tuple(localities),
        orgs=orgs,
    )


_DISTRICT = re.compile(r"(?<!地)区$")  # 小店区, not 阿克苏地区


def _urban_score(place: Region) -> float:
    if _DISTRICT.search(place.name) and place.name != "神农架林区":
        return 1.0
    if place.name.endswith("市"):
        return 0.0
    return -1.0


# --------------------------------------------------------------------------------------
# Department templates, flattened so that members can index them with numpy
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Templates:
    """Every sector's departments as rows of arrays (index = template id)."""

    sector: tuple[Sector, ...]
    dept: tuple[Dept, ...]
    male: FloatArray
    edu: FloatArray
    skill: FloatArray
    age_mean: FloatArray
    age_sd: FloatArray
    tenure: FloatArray
    new_form_union: npt.NDArray[np.bool_]
    form_cum: FloatArray  # (T, len(EmploymentForm)) cumulative probabilities
    occ_names: tuple[str, ...]
    occ_key: FloatArray  # template id + cumulative weight within the template
    index: dict[tuple[str, int], int]  # (sector key, position in sector.depts) -> id


def build_templates(sectors: Sequence[Sector]) -> Templates:
    rows: list[tuple[Sector, Dept]] = []
    index: dict[tuple[str, int], int] = {}
    for sector in sectors:
        for pos, dept in enumerate(sector.depts):
            index[(sector.key, pos)] = len(rows)
            rows.append((sector, dept))
    form_cum = np.zeros((len(rows), len(_FORMS)))
    occ_names: list[str] = []
    occ_key: list[float] = []
    for t, (sector, dept) in enumerate(rows):
        forms = (
            dict(dept.forms)
            if dept.forms
            else {
                EmploymentForm.STANDARD: 1.0 - sector.dispatched - sector.part_time,
                EmploymentForm.DISPATCHED: sector.dispatched,
                EmploymentForm.PART_TIME: sector.part_time,
            }
        )
        probs = np.array([forms.get(f, 0.0) for f in _FORMS])
        form_cum[t] = np.cumsum(probs / probs.sum())
        weights = np.array([w for _, w in dept.occupations])
        cum = np.cumsum(weights / weights.sum())
        cum[-1] = 1.0
        for (name, _), c in zip(dept.occupations, cum, strict=True):
            occ_names.append(name)
            occ_key.append(t + c)
    form_cum[:, -1] = 1.0
    return Templates(
        sector=tuple(s for s, _ in rows),
        dept=tuple(d for _, d in rows),
        male=np.array([d.male for _, d in rows]),
        edu=np.array([d.edu for _, d in rows]),
        skill=np.array([d.skill for _, d in rows]),
        age_mean=np.array([s.age[0] + d.age for s, d in rows]),
        age_sd=np.array([s.age[1] for s, _ in rows]),
        tenure=np.array([s.mean_tenure for s, _ in rows]),
        new_form_union=np.array([d.new_form_union for _, d in rows]),
        form_cum=form_cum,
        occ_names=tuple(occ_names),
        occ_key=np.array(occ_key),
        index=index,
    )


# --------------------------------------------------------------------------------------
# Employers and their departments
# --------------------------------------------------------------------------------------


@dataclass
class EnterprisePlan:
    sector: list[Sector] = field(default_factory=list)
    division: list[str] = field(default_factory=list)
    locality: list[int] = field(default_factory=list)
    employees: list[int] = field(default_factory=list)
    members: list[int] = field(default_factory=list)
    ownership: list[Ownership] = field(default_factory=list)
    size_class: list[SizeClass] = field(default_factory=list)
    name: list[str] = field(default_factory=list)
    authority: list[str] = field(default_factory=list)
    own_union: list[bool] = field(default_factory=list)
    uscc: list[str] = field(default_factory=list)
    # departments, contiguous per enterprise
    dept_start: list[int] = field(default_factory=list)
    dept_count: list[int] = field(default_factory=list)
    dept_names: list[str] = field(default_factory=list)
    dept_template: list[int] = field(default_factory=list)
    dept_weight: list[float] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.name)


def quotas(total: int, shares: dict[str, float]) -> dict[str, int]:
    """Split ``total`` members across sectors by largest remainder (deterministic)."""
    keys = sorted(shares)
    raw = np.array([shares[k] * total for k in keys])
    base = np.floor(raw).astype(np.int64)
    short = total - int(base.sum())
    order = np.argsort(-(raw - base), kind="stable")
    base[order[:short]] += 1
    return {k: int(n) for k, n in zip(keys, base, strict=True)}


def _size_class(sector: Sector, employees: int) -> SizeClass:
    large, medium, small = sector.bands
    if employees >= large:
        return SizeClass.LARGE
    if employees >= medium:
        return SizeClass.MEDIUM
    if employees >= small:
        return SizeClass.SMALL
    return SizeClass.MICRO


_SUFFIX_CUM = np.cumsum([w for _, w in _SUFFIXES]) / sum(w for _, w in _SUFFIXES)
_ROLLS = 7  # uniform draws used to name one employer


class _Namer:
    """Unique employer names from a sector's patterns, driven by pre-drawn uniforms."""

    def __init__(self, province: Province) -> None:
        self.province = province
        self.used: set[str] = set()
        self.counters: dict[str, int] = {}

    def render(
        self, pattern: Pattern, loc: Locality, employees: int, u: Sequence[float]
    ) -> str | None:
        """The name, or ``None`` when it is taken (the caller draws again)."""
        text = pattern.text
        province = self.province
        place = loc.short if u[0] < 0.55 else loc.city_short if u[0] < 0.85 else province.short
        first = BRAND_CHARS[int(u[1] * len(BRAND_CHARS))]
        if u[2] < 0.06:
            first = province.abbreviation  # 晋华, 晋能 …
        values = {
            "county": loc.name,
            "city": loc.city_name,
            "place": place,
            "prov": province.short,
            "brand": first + BRAND_CHARS[int(u[3] * len(BRAND_CHARS))],
            "word": pattern.words[int(u[4] * len(pattern.words))] if pattern.words else "",
            "suffix": _SUFFIXES[int(np.searchsorted(_SUFFIX_CUM, u[5], side="right"))][0],
        }
        if employees >= 1000 and u[6] < 0.35:
            values["suffix"] = "集团有限公司"
        if "{n}" in text:
            key = text.format_map({**values, "n": ""})
            n = self.counters.get(key, 0) + 1
            self.counters[key] = n
            values["n"] = ordinal(n) if n <= 99 else str(n)
        name = text.format_map(values)
        if name in self.used:
            return None
        self.used.add(name)
        return name


def plan_enterprises(
    province: Province,
    member_quotas: dict[str, int],
    templates: Templates,
    rng: np.random.Generator,
) -> EnterprisePlan:
    """Employers per sector until each sector's member quota is reached.

    Candidates are drawn in batches (size, pattern, place, ownership, membership rate and
    naming draws as arrays); only naming and departments loop in Python, per employer.
    """
    plan = EnterprisePlan()
    namer = _Namer(province)
    locs = province.localities
    base_w = np.array([loc.weight for loc in locs])
    urban = np.array([loc.urban for loc in locs])
    for sector in profiles.SECTORS:
        quota = member_quotas.get(sector.key, 0)
        if quota <= 0 or sector.independent:
            continue
        loc_w = base_w * np.exp(sector.urban * urban)
        if sector.platform:
            loc_w = np.where(urban > 0, loc_w, loc_w * 0.02)  # headquartered in districts
        loc_p = loc_w / loc_w.sum()
        median, sigma, low, high = sector.size
        pattern_p = np.array([p.weight for p in sector.patterns])
        pattern_p /= pattern_p.sum()
        own_p = np.array([w for _, w in sector.ownership])
        own_p /= own_p.sum()
        mean_members = min(high, median * np.exp(sigma**2 / 2)) * 0.8
        remaining = quota
        while remaining > 0:
            batch = int(min(100_000, remaining / mean_members * 1.2 + 8))
            sizes = np.clip(np.rint(median * np.exp(sigma * rng.standard_normal(batch))), low, high)
            pats = rng.choice(len(pattern_p), size=batch, p=pattern_p)
            places = rng.choice(len(locs), size=batch, p=loc_p)
            owners = rng.choice(len(own_p), size=batch, p=own_p)
            rates = rng.random(batch)
            rolls = rng.random((batch, _ROLLS))
            for j in range(batch):
                if remaining <= 0:
                    break
                employees = int(sizes[j])
                pattern = sector.patterns[int(pats[j])]
                loc_index = int(places[j])
                name = namer.render(pattern, locs[loc_index], employees, rolls[j].tolist())
                attempts = 0
                while name is None:  # taken: e.g. a second 小店区人民医院; draw afresh
                    attempts += 1
                    if attempts > 50:
                        raise RuntimeError(f"could not name a new {sector.key} employer")
                    pattern = sector.patterns[int(rng.choice(len(pattern_p), p=pattern_p))]
                    loc_index = int(rng.choice(len(locs), p=loc_p))
                    name = namer.render(
                        pattern, locs[loc_index], employees, rng.random(_ROLLS).tolist()
                    )
                ownership = pattern.ownership or sector.ownership[int(owners[j])][0]
                public = ownership in (Ownership.STATE, Ownership.INSTITUTION)
                # 入会率: public bodies are near fully unionised, private firms less so.
                rate = 0.85 + 0.15 * rates[j] if public else 0.6 + 0.35 * rates[j]
                members = max(1, round(employees * rate))
                if members > remaining:  # the last employer takes what is left
                    members = remaining
                    employees = max(members, round(members / rate))
                remaining -= members
                plan.sector.append(sector)
                plan.division.append(pattern.division)
                plan.locality.append(loc_index)
                plan.employees.append(employees)
                plan.members.append(members)
                plan.ownership.append(ownership)
                plan.size_class.append(_size_class(sector, employees))
                plan.name.append(name)
                plan.authority.append(pattern.authority)
                threshold = (
                    INSTITUTION_UNION_THRESHOLD
                    if ownership is Ownership.INSTITUTION
                    else UNION_THRESHOLD
                )
                plan.own_union.append(members >= threshold)
                _plan_departments(plan, sector, pattern.division, employees, members, templates)
    plan.uscc = _usccs(
        rng,
        plan.authority,
        [locs[i].code for i in plan.locality],
        modern_share=0.7,
    )
    return plan


def _plan_departments(
    plan: EnterprisePlan,
    sector: Sector,
    division: str,
    employees: int,
    members: int,
    templates: Templates,
) -> None:
    plan.dept_start.append(len(plan.dept_names))
    chosen = [
        (pos, d)
        for pos, d in enumerate(sector.depts)
        if (not d.only or division in d.only) and d.min_size <= employees
    ]
    total_w = sum(d.weight for _, d in chosen)
    count = 0
    for pos, dept in chosen:
        tid = templates.index[(sector.key, pos)]
        if dept.team:
            expected = members * dept.weight / total_w
            teams = int(min(30, max(1, round(expected / dept.team))))
            for k in range(1, teams + 1):
                plan.dept_names.append(dept.name.format(n=ordinal(k)))
                plan.dept_template.append(tid)
                plan.dept_weight.append(dept.weight / teams)
            count += teams
        else:
            plan.dept_names.append(dept.name)
            plan.dept_template.append(tid)
            plan.dept_weight.append(dept.weight)
            count += 1
    plan.dept_count.append(count)


def _usccs(
    rng: np.random.Generator,
    authorities: Sequence[str],
    region_codes: Sequence[str],
    *,
    modern_share: float,
) -> list[str]:
    """Unique, valid USCCs: authority+type, region, then an organisation code body.

    Companies registered since the 2015 reform carry bodies starting ``MA`` (issued by
    market regulation); older ones and public bodies keep an eight-digit body.
    """
    n = len(authorities)
    if n == 0:
        return []
    alphabet = np.array(list(USCC_ALPHABET))
    prefixes = np.array([a + r for a, r in zip(authorities, region_codes, strict=True)])
    bodies = np.empty(n, dtype="<U8")
    todo = np.arange(n)
    while todo.size:
        modern = (np.char.startswith(prefixes[todo], "91")) & (rng.random(todo.size) < modern_share)
        digits = rng.integers(0, 10, size=(todo.size, 8)).astype("<U1")
        letters = alphabet[rng.integers(0, len(alphabet), size=(todo.size, 6))]
        body = np.where(
            modern[:, None],
            np.concatenate([np.full((todo.size, 2), "M"), letters], axis=1),
            digits,
        )
        body[modern, 1] = "A"
        bodies[todo] = np.array(["".join(row) for row in body])
        full = np.char.add(prefixes, bodies)
        _, first = np.unique(full, return_index=True)
        keep = np.zeros(n, dtype=bool)
        keep[first] = True
        todo = np.flatnonzero(~keep)
    return [str(c) for c in make_usccs(np.char.add(prefixes, bodies))]


def union_codes(
    rng: np.random.Generator, grassroots: Sequence[bool], region_codes: Sequence[str]
) -> list[str]:
    """USCCs issued by the union registry: ``81`` grassroots, ``89`` other unions."""
    authorities = ["81" if g else "89" for g in grassroots]
    return _usccs(rng, authorities, region_codes, modern_share=0.0)


def joint_union_name(loc: Locality, kind: str) -> str:
    return f"{loc.name}{JOINT_KINDS[kind]}"


__all__ = [
    "NEW_FORM_SINCE",
    "EnterprisePlan",
    "Locality",
    "OrgPlan",
    "Province",
    "ProvinceError",
    "Templates",
    "build_templates",
    "joint_union_name",
    "plan_enterprises",
    "plan_province",
    "quotas",
    "union_codes",
]
