"""Members, column by column: every per-member value is drawn with NumPy for all members
at once (a few bytes each), and turned into strings one chunk at a time.

Nothing random happens per chunk, so the chunk size never changes the data.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from smartunion.generate.plan import NEW_FORM_SINCE, EnterprisePlan, Province, Templates
from smartunion.generate.vocab import minorities, name_lists
from smartunion.members.models import Education, EmploymentForm, MemberStatus, SkillLevel
from smartunion.validation import MOBILE_PREFIXES, make_citizen_ids

IntArray = npt.NDArray[np.int64]
DateArray = npt.NDArray[np.datetime64]

EDUCATION = tuple(Education)
SKILL = tuple(SkillLevel)
FORMS = tuple(EmploymentForm)
STATUSES = tuple(MemberStatus)
_STATUS_P = (0.975, 0.012, 0.011, 0.002)
# Latent education score → level. Postgraduates need a clearly higher score than
# graduates (≈ 2 % of members, as among urban employees), the rest round to nearest.
_EDU_CUTS = np.array([0.5, 1.5, 2.5, 3.5, 5.0])

# Each province owns a disjoint block of the 4-digit HLR segments after the operator
# prefix (real segments are allocated by city in the same way), so provinces generated
# into one database never share a phone number.
_SEGMENTS_PER_PROVINCE = 300


@dataclass
class Members:
    """Per-member columns (index = position in insertion order)."""

    n: int
    enterprise: IntArray  # index into the enterprise plan, -1 for the self-employed
    dept: IntArray  # index into the department plan, -1 without employer
    template: IntArray
    work_loc: IntArray  # locality whose union covers the member's workplace
    joint: npt.NDArray[np.bool_]  # in a joint union rather than the employer's own
    id_loc: IntArray  # locality that issued the ID number
    male: npt.NDArray[np.bool_]
    birth: DateArray
    id_seq: npt.NDArray[np.int16]  # the 3-digit order code; parity = gender
    surname: IntArray
    given1: IntArray  # index into name_lists().male/female by gender
    given2: IntArray  # -1: one-character given name
    ethnicity: npt.NDArray[np.int16]  # index into ethnic labels
    ethnic_labels: tuple[str, ...]
    education: npt.NDArray[np.int8]
    skill: npt.NDArray[np.int8]
    form: npt.NDArray[np.int8]
    status: npt.NDArray[np.int8]
    occupation: IntArray  # index into Templates.occ_names
    join: DateArray
    phone: IntArray  # 11-digit number, 0 when unknown
    org: IntArray  # index into the org plan (set when the unions are assigned)


def _calendar_years_before(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def plan_members(
    province: Province,
    enterprises: EnterprisePlan,
    templates: Templates,
    independent_quota: int,
    independent_templates: list[int],
    as_of: dt.date,
    rng: np.random.Generator,
) -> Members:
    locs = province.localities
    n_loc = len(locs)
    ent_members = np.asarray(enterprises.members, dtype=np.int64)
    n_ent = int(ent_members.sum())
    n = n_ent + independent_quota
    enterprise = np.full(n, -1, dtype=np.int64)
    enterprise[:n_ent] = np.repeat(np.arange(len(ent_members)), ent_members)

    # Department: a weighted draw among the employer's own departments. Keys are
    # "enterprise index + cumulative weight within the enterprise", so one searchsorted
    # over all departments picks inside the right enterprise for every member at once.
    dept = np.full(n, -1, dtype=np.int64)
    template = np.zeros(n, dtype=np.int64)
    if n_ent:
        d_start = np.asarray(enterprises.dept_start, dtype=np.int64)
        d_count = np.asarray(enterprises.dept_count, dtype=np.int64)
        d_weight = np.asarray(enterprises.dept_weight, dtype=np.float64)
        d_owner = np.repeat(np.arange(len(d_start)), d_count)
        cum = np.cumsum(d_weight)
        before = np.concatenate([[0.0], cum])[d_start][d_owner]
        total = (np.add.reduceat(d_weight, d_start) if len(d_start) else d_weight)[d_owner]
        keys = d_owner + (cum - before) / total
        keys[d_start + d_count - 1] = d_owner[d_start + d_count - 1] + 1.0
        owner = enterprise[:n_ent]
        draw = owner + rng.random(n_ent)
        # The clip guards the top of each range against float rounding of owner + u.
        dept[:n_ent] = np.clip(
            np.searchsorted(keys, draw, side="right"),
            d_start[owner],
            d_start[owner] + d_count[owner] - 1,
        )
        template[:n_ent] = np.asarray(enterprises.dept_template, dtype=np.int64)[dept[:n_ent]]
    if independent_quota:
        ind_t = np.asarray(independent_templates, dtype=np.int64)
        ind_w = np.array([templates.dept[t].weight for t in ind_t])
        template[n_ent:] = ind_t[
            rng.choice(len(ind_t), size=independent_quota, p=ind_w / ind_w.sum())
        ]

    # Where they work: the employer's county; platform workers spread over the counties
    # of their platform's city; the self-employed over the province.
    ent_loc = np.asarray(enterprises.locality, dtype=np.int64)
    loc_w = np.array([loc.weight for loc in locs])
    city = np.array([loc.city_key for loc in locs])
    work_loc = np.empty(n, dtype=np.int64)
    work_loc[:n_ent] = ent_loc[enterprise[:n_ent]]
    work_loc[n_ent:] = rng.choice(n_loc, size=independent_quota, p=loc_w / loc_w.sum())
    spread = templates.new_form_union[template]
    spread[n_ent:] = False
    if spread.any():
        work_loc[spread] = _same_city(rng, work_loc[spread], city, loc_w)

    # ID numbers are issued where people were born: mostly here, some from elsewhere in
    # the city or the province (internal migrants).
    id_loc = work_loc.copy()
    roll = rng.random(n)
    elsewhere_city = roll < 0.15
    id_loc[elsewhere_city] = _same_city(rng, id_loc[elsewhere_city], city, loc_w)
    anywhere = (roll >= 0.15) & (roll < 0.3)
    id_loc[anywhere] = rng.choice(n_loc, size=int(anywhere.sum()), p=loc_w / loc_w.sum())

    male = rng.random(n) < templates.male[template]

    # Age: normal per sector and department, truncated to 18-60 (women to 55: most
    # women workers retire at 50-55, and the gradual raise began only in 2025).
    mean = templates.age_mean[template]
    sd = templates.age_sd[template]
    upper = np.where(male, 60.99, 55.99)
    age = mean + sd * rng.standard_normal(n)
    for _ in range(4):
        bad = (age < 18) | (age > upper)
        if not bad.any():
            break
        age[bad] = mean[bad] + sd[bad] * rng.standard_normal(int(bad.sum()))
    age = np.clip(age, 18.0, upper)
    today = np.datetime64(as_of, "D")
    latest = np.datetime64(_calendar_years_before(as_of, 18), "D")
    earliest = np.where(
        male,
        np.datetime64(_calendar_years_before(as_of, 61), "D") + 1,
        np.datetime64(_calendar_years_before(as_of, 56), "D") + 1,
    )
    birth = today - np.floor(age * 365.2425).astype("timedelta64[D]")
    birth = np.clip(birth, earliest, latest)

    age_years = (today - birth).astype(np.int64) / 365.2425
    id_seq = _id_sequences(id_loc, birth, male)

    # Names: surname by frequency; the given name either one of the provider's classic
    # two-character names (建华, 秀英: common among older people), or one or two single
    # characters (伟, 佳怡-style pairs), by gender.
    lists = name_lists()
    surname = rng.choice(len(lists.surnames), size=n, p=lists.surname_p)
    given1, given2 = _given_names(rng, male, age_years)

    share, groups = minorities(province.code[:2])
    labels = ("汉族", *groups)
    group_p = np.array(list(groups.values()))
    ethnicity = np.zeros(n, dtype=np.int16)
    minority = rng.random(n) < share
    ethnicity[minority] = 1 + rng.choice(
        len(group_p), size=int(minority.sum()), p=group_p / group_p.sum()
    )

    # Education and skill: ordinal latent scores. The young studied longer; skill grades
    # come with years at work.
    edu = templates.edu[template] + (35.0 - age_years) * 0.035 + 0.8 * rng.standard_normal(n)
    education = np.searchsorted(_EDU_CUTS, edu, side="right").astype(np.int8)
    sk = templates.skill[template] + (age_years - 35.0) * 0.05 + rng.standard_normal(n)
    skill = np.clip(np.rint(sk), 0, len(SKILL) - 1).astype(np.int8)

    form = (rng.random(n)[:, None] > templates.form_cum[template]).sum(axis=1).astype(np.int8)
    form = np.minimum(form, len(FORMS) - 1).astype(np.int8)
    status = rng.choice(len(STATUSES), size=n, p=np.array(_STATUS_P)).astype(np.int8)
    occupation = np.searchsorted(
        templates.occ_key, template + rng.random(n) * (1 - 1e-12), side="right"
    )

    # Membership years: gamma around the sector's typical tenure, never before 18;
    # new-form workers joined in the ACFTU campaign since 2018.
    tenure = rng.gamma(2.0, templates.tenure[template] / 2.0)
    tenure = np.minimum(tenure, age_years - 18.0)
    new_form_forms = np.isin(form, [FORMS.index(f) for f in FORMS if f.is_new_form])
    cap = (today - np.datetime64(NEW_FORM_SINCE, "D")).astype(np.int64) / 365.2425
    late = new_form_forms & (tenure > cap)
    tenure[late] = rng.uniform(0, cap, size=int(late.sum()))
    join = today - np.floor(tenure * 365.2425).astype("timedelta64[D]")
    join = np.maximum(join, _sixteenth_birthday(birth))

    phone = _phones(rng, n, province.code)
    phone[rng.random(n) < 0.01] = 0

    members = Members(
        n=n,
        enterprise=enterprise,
        dept=dept,
        template=template,
        work_loc=work_loc,
        joint=np.zeros(n, dtype=bool),
        id_loc=id_loc,
        male=male,
        birth=birth,
        id_seq=id_seq,
        surname=surname,
        given1=given1,
        given2=given2,
        ethnicity=ethnicity,
        ethnic_labels=labels,
        education=education,
        skill=skill,
        form=form,
        status=status,
        occupation=occupation,
        join=join,
        phone=phone,
        org=np.zeros(n, dtype=np.int64),
    )
    return members


def _given_names(
    rng: np.random.Generator, male: npt.NDArray[np.bool_], age: npt.NDArray[np.float64]
) -> tuple[IntArray, IntArray]:
    """Indices into the gender's given-name list: (first, second or -1)."""
    lists = name_lists()
    n = len(male)
    older = age >= 45
    classic = rng.random(n) < np.where(
        male, np.where(older, 0.05, 0.015), np.where(older, 0.2, 0.06)
    )
    two = rng.random(n) < np.where(older, 0.55, 0.8)
    given1 = np.empty(n, dtype=np.int64)
    given2 = np.full(n, -1, dtype=np.int64)
    for is_male, pool in ((True, lists.male), (False, lists.female)):
        pairs = np.array([i for i, x in enumerate(pool) if len(x) == 2])
        singles = np.array([i for i, x in enumerate(pool) if len(x) == 1])
        rows = male == is_male
        k = int(rows.sum())
        first = singles[rng.integers(0, len(singles), size=k)]
        second = singles[rng.integers(0, len(singles), size=k)]
        use_pair = classic[rows] & (len(pairs) > 0)
        if len(pairs):
            first = np.where(use_pair, pairs[rng.integers(0, len(pairs), size=k)], first)
        given1[rows] = first
        # A doubled character (婷婷, 丹丹) is a real pattern; 建华 + 伟 is not a name.
        given2[rows] = np.where(two[rows] & ~use_pair, second, -1)
    return given1, given2


def _sixteenth_birthday(birth: DateArray) -> DateArray:
    """The 16th birthday (approximately): nobody joins a union younger."""
    return birth + np.timedelta64(int(16 * 365.2425) + 1, "D")


def _same_city(
    rng: np.random.Generator, loc: IntArray, city: IntArray, weight: npt.NDArray[np.float64]
) -> IntArray:
    """Redraw each locality among the localities of its own city, by weight."""
    order = np.lexsort((np.arange(len(city)), city))
    sorted_city = city[order]
    start = np.searchsorted(sorted_city, city[loc], side="left")
    stop = np.searchsorted(sorted_city, city[loc], side="right")
    w = weight[order]
    cum = np.cumsum(w)
    base = np.concatenate([[0.0], cum])
    lo = base[start]
    hi = base[stop]
    target = lo + rng.random(len(loc)) * (hi - lo)
    pos = np.searchsorted(cum, target, side="right")
    pos = np.clip(pos, start, stop - 1)
    out: IntArray = order[pos]
    return out


def _id_sequences(
    loc: IntArray, birth: DateArray, male: npt.NDArray[np.bool_]
) -> npt.NDArray[np.int16]:
    """Order codes that make every (region, birth date, gender) combination unique.

    Members sharing a group are ranked; rank r takes slot (offset + 37·r) mod 500 of that
    gender's 500 codes (odd for men, even for women, GB 11643). 37 is coprime with 500,
    so up to 500 people per group get distinct codes, and the offset, hashed from the
    group, keeps the codes from all starting at 001.
    """
    key = (loc.astype(np.int64) * 200_000 + birth.astype(np.int64) + 100_000) * 2 + male
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    new_group = np.empty(len(key), dtype=bool)
    new_group[:1] = True
    new_group[1:] = sorted_key[1:] != sorted_key[:-1]
    group_start = np.maximum.accumulate(np.where(new_group, np.arange(len(key)), 0))
    rank = np.empty(len(key), dtype=np.int64)
    rank[order] = np.arange(len(key)) - group_start
    if len(rank) and rank.max() >= 500:
        raise RuntimeError("more than 500 members share a birth date, region and gender")
    offset = (key * 2_654_435_761) % 500
    slot = (offset + 37 * rank) % 500
    return (slot * 2 + male).astype(np.int16)


def _phones(rng: np.random.Generator, n: int, province_code: str) -> IntArray:
    """Unique 11-digit mobile numbers: operator prefix + provincial segment + 4 digits."""
    prefixes = np.array([int(p) for p in MOBILE_PREFIXES], dtype=np.int64)
    province_block = (int(province_code[:2]) - 11) * _SEGMENTS_PER_PROVINCE
    space = len(prefixes) * _SEGMENTS_PER_PROVINCE * 10_000
    if n > space // 4:
        raise RuntimeError(f"too many members for one province's phone numbers ({space})")
    draw = rng.choice(space, size=n, replace=False)  # distinct by construction
    prefix = prefixes[draw // (_SEGMENTS_PER_PROVINCE * 10_000)]
    segment = province_block + (draw // 10_000) % _SEGMENTS_PER_PROVINCE
    result: IntArray = prefix * 100_000_000 + segment * 10_000 + draw % 10_000
    return result


# --------------------------------------------------------------------------------------
# Strings for one chunk
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Lookup:
    """Label tables shared by every chunk."""

    surnames: pa.Array
    male: pa.Array
    female: pa.Array
    loc_codes: npt.NDArray[np.int64]


def make_lookup(province: Province) -> Lookup:
    lists = name_lists()
    return Lookup(
        surnames=pa.array(lists.surnames),
        male=pa.array([*lists.male, ""]),
        female=pa.array([*lists.female, ""]),
        loc_codes=np.array([int(loc.code) for loc in province.localities], dtype=np.int64),
    )


def names(m: Members, lookup: Lookup, sl: slice) -> list[str]:
    male = m.male[sl]
    g1 = m.given1[sl]
    g2 = m.given2[sl]
    blank_m = len(lookup.male) - 1
    blank_f = len(lookup.female) - 1
    first_m = lookup.male.take(pa.array(np.where(male, g1, blank_m)))
    first_f = lookup.female.take(pa.array(np.where(male, blank_f, g1)))
    g2m = np.where(male & (g2 >= 0), g2, blank_m)
    g2f = np.where(~male & (g2 >= 0), g2, blank_f)
    second_m = lookup.male.take(pa.array(g2m))
    second_f = lookup.female.take(pa.array(g2f))
    full = pc.binary_join_element_wise(
        lookup.surnames.take(pa.array(m.surname[sl])), first_m, first_f, second_m, second_f, ""
    )
    out: list[str] = full.to_pylist()
    return out


def id_bodies(m: Members, lookup: Lookup, sl: slice) -> IntArray:
    """The first 17 digits of each ID number as one integer: region, birth date, order."""
    region = lookup.loc_codes[m.id_loc[sl]]
    birth = m.birth[sl]
    ymd = (
        (birth.astype("datetime64[Y]").astype(np.int64) + 1970) * 10_000
        + (birth.astype("datetime64[M]").astype(np.int64) % 12 + 1) * 100
        + (birth - birth.astype("datetime64[M]")).astype(np.int64)
        + 1
    )
    body: IntArray = (region * 100_000_000 + ymd) * 1000 + m.id_seq[sl].astype(np.int64)
    return body


_POWERS = 10 ** np.arange(16, -1, -1, dtype=np.int64)


def id_number_strings(bodies: IntArray) -> list[str]:
    """Complete 17-digit bodies with their GB 11643 check character."""
    digits = (bodies[:, None] // _POWERS) % 10
    out: list[str] = make_citizen_ids(digits.astype(np.int8)).tolist()
    return out


def phone_strings(numbers: IntArray) -> list[str | None]:
    """11-digit strings; ``None`` where the number is 0 (unknown)."""
    text = pc.cast(pa.array(numbers, mask=numbers == 0), pa.string())
    out: list[str | None] = text.to_pylist()
    return out
