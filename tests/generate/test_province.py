"""The synthetic province generator: counts, valid identifiers, a consistent tree,
realistic mixes, determinism, no plaintext at rest, and clear refusals.

Each backend gets one generated province per module (a few thousand members, about a
second); the checks read it back through SQL and the key ring.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.orm import Session

from smartunion import schema
from smartunion.db import make_engine
from smartunion.generate import (
    GenerationReport,
    ProvinceError,
    ProvinceExistsError,
    generate_province,
    profiles,
    vocab,
)
from smartunion.generate.people import _calendar_years_before
from smartunion.members.models import (
    ID_NUMBER,
    NEW_FORM_EMPLOYMENT,
    PHONE,
    Education,
    EmploymentForm,
    Member,
    MemberStatus,
    SkillLevel,
)
from smartunion.members.service import member_number
from smartunion.orgs.models import (
    Department,
    Enterprise,
    OrgKind,
    OrgLevel,
    Ownership,
    UnionOrg,
)
from smartunion.reference.regions import ETHNIC_GROUPS, children, counties_of, provinces
from smartunion.security.crypto import FieldCrypto
from smartunion.security.keys import KeyRing
from smartunion.validation import MOBILE_PREFIXES, check_citizen_id, check_mobile, check_uscc
from tests.conftest import PG_PROBLEM, create_pg_database, drop_pg_database

MEMBERS = 12_000  # above the size from which the member indexes are rebuilt
SEED = 7
AS_OF = dt.date(2026, 6, 30)
SHANXI = "140000"


@dataclass
class Generated:
    engine: Engine
    crypto: FieldCrypto
    report: GenerationReport
    path: Path | None  # the SQLite file, if any
    schema_before: dict[str, Any]


def _generate(url: str, *, seed: int = SEED, members: int = MEMBERS) -> Generated:
    engine = make_engine(url)
    schema.upgrade(engine)
    before = _schema_shape(engine)
    crypto = FieldCrypto(KeyRing.generate())
    phases: list[str] = []
    report = generate_province(
        engine,
        crypto,
        members=members,
        seed=seed,
        province=SHANXI,
        as_of=AS_OF,
        chunk_size=5_000,  # several chunks even for a small run
        progress=lambda phase, done, total: phases.append(phase),
    )
    assert {"organisations", "enterprises", "departments", "members"} <= set(phases)
    path = Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite") else None
    return Generated(engine, crypto, report, path, before)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def generated(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Generated]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('gen') / 'province.db'}"
        result = _generate(url)
        yield result
        result.engine.dispose()
        return
    if PG_PROBLEM is not None:
        pytest.skip(PG_PROBLEM)
    url = create_pg_database("su_gen_test")
    try:
        result = _generate(url)
        yield result
        result.engine.dispose()
    finally:
        drop_pg_database(url)


@pytest.fixture(scope="module")
def sqlite_generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Generated]:
    result = _generate(f"sqlite:///{tmp_path_factory.mktemp('gen') / 'again.db'}")
    yield result
    result.engine.dispose()


def _rows(engine: Engine, sql: str, **params: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(text(sql), params).all())


def _schema_shape(engine: Engine) -> dict[str, Any]:
    inspector = inspect(engine)
    shape: dict[str, Any] = {}
    for table in ("member", "union_org", "enterprise", "department"):
        shape[table] = (
            sorted(
                (ix["name"], tuple(ix["column_names"]), bool(ix["unique"]))
                for ix in inspector.get_indexes(table)
            ),
            sorted(
                (fk["name"], tuple(fk["constrained_columns"]), fk["referred_table"])
                for fk in inspector.get_foreign_keys(table)
            ),
            sorted(str(uq["name"]) for uq in inspector.get_unique_constraints(table)),
        )
    return shape


def _members(g: Generated) -> list[Member]:
    with Session(g.engine) as s:
        members = list(s.scalars(select(Member).order_by(Member.id)))
        s.expunge_all()
    return members


class TestCounts:
    def test_report_matches_tables(self, generated: Generated) -> None:
        counts = generated.report.counts
        for table in ("union_org", "enterprise", "department", "member"):
            (n,) = _rows(generated.engine, f"SELECT count(*) FROM {table}")[0]  # noqa: S608
            assert n == counts[table], table
        assert counts["member"] == MEMBERS
        assert generated.report.details["county_federations"] == len(counties_of(SHANXI))
        assert generated.report.details["city_federations"] == 11
        assert set(generated.report.seconds) >= {"plan", "members", "indexes", "commit"}

    def test_schema_is_what_the_migrations_made(self, generated: Generated) -> None:
        # The member indexes (and on PostgreSQL its foreign keys) were dropped for the
        # load and rebuilt from their stored definitions: nothing may differ.
        assert _schema_shape(generated.engine) == generated.schema_before
        assert schema.is_current(generated.engine)

    def test_every_value_is_a_known_enum_value(self, generated: Generated) -> None:
        # The SQLite load skips CHECK constraints for speed: the ORM must read every row.
        members = _members(generated)
        assert {m.education for m in members} <= set(Education)
        assert {m.skill_level for m in members} <= set(SkillLevel)
        assert {m.employment_form for m in members} <= set(EmploymentForm)
        assert {m.status for m in members} <= set(MemberStatus)
        assert Counter(m.status for m in members)[MemberStatus.ACTIVE] > 0.95 * MEMBERS
        assert all(m.created_at.tzinfo is not None and m.updated_at for m in members)


class TestIdentifiers:
    def test_citizen_ids_decrypt_validate_and_match_the_row(self, generated: Generated) -> None:
        crypto = generated.crypto
        places = {r.code for r in counties_of(SHANXI)}
        seen: set[str] = set()
        for m in _members(generated):
            number = crypto.decrypt(m.id_number_enc, ID_NUMBER.name)
            cid = check_citizen_id(number, strict_region=True, today=AS_OF)
            assert cid.region_code in places
            assert cid.birth_date == m.birth_date
            assert cid.gender == m.gender.value
            assert crypto.blind_index(number, ID_NUMBER.name) == m.id_number_bidx
            assert number not in seen
            seen.add(number)
            age = (AS_OF - m.birth_date).days / 365.2425
            assert 18 <= age < 61
            assert _calendar_years_before(m.join_date, 16) >= m.birth_date
            assert m.join_date <= AS_OF
            assert m.member_no == member_number(SHANXI, m.id)

    def test_phones_are_valid_and_unique(self, generated: Generated) -> None:
        crypto = generated.crypto
        members = _members(generated)
        phones = [crypto.decrypt(m.phone_enc, PHONE.name) for m in members if m.phone_enc]
        assert len(phones) > 0.97 * MEMBERS
        assert len(set(phones)) == len(phones)
        for phone in phones:
            assert check_mobile(phone) == phone
            assert phone[:3] in MOBILE_PREFIXES
        assert all((m.phone_enc is None) == (m.phone_bidx is None) for m in members)

    def test_social_credit_codes(self, generated: Generated) -> None:
        usccs = [u for (u,) in _rows(generated.engine, "SELECT uscc FROM enterprise")]
        assert len(set(usccs)) == len(usccs)
        for code in usccs:
            parts = check_uscc(code, strict_type=True)
            assert parts.region_code[:2] == "14"
            assert code[:2] in {"91", "12", "11"}
        for code, level in _rows(generated.engine, "SELECT code, level FROM union_org"):
            parts = check_uscc(code, strict_type=True)
            assert parts.is_union
            assert code[:2] == ("81" if level == OrgLevel.GRASSROOTS.value else "89")
        (root,) = _rows(generated.engine, "SELECT code FROM union_org WHERE parent_id IS NULL")
        assert root[0].startswith("89140000")


class TestTree:
    def test_paths_follow_the_parent_chain(self, generated: Generated) -> None:
        orgs = {
            row.id: row
            for row in _rows(
                generated.engine, "SELECT id, parent_id, path, level, kind FROM union_org"
            )
        }
        roots = [o for o in orgs.values() if o.parent_id is None]
        assert len(roots) == 1
        assert roots[0].level == OrgLevel.PROVINCE.value
        assert roots[0].path == f"/{roots[0].id}/"
        for org in orgs.values():
            if org.parent_id is not None:
                assert org.path == f"{orgs[org.parent_id].path}{org.id}/"
            depth = {"province": 1, "city": 2, "county": 3, "grassroots": 4}[org.level]
            assert org.path.count("/") - 1 == depth

    def test_names_and_levels(self, generated: Generated) -> None:
        names = {
            name: (level, kind)
            for name, level, kind in _rows(
                generated.engine, "SELECT name, level, kind FROM union_org"
            )
        }
        assert names["山西省总工会"] == ("province", "federation")
        assert names["太原市总工会"] == ("city", "federation")
        assert names["小店区总工会"] == ("county", "federation")
        # Two counties called 城区: each named after its city.
        assert "阳泉市城区总工会" in names
        assert "晋城市城区总工会" in names
        assert names["小店区新就业形态劳动者联合工会"] == ("grassroots", "joint")
        for name, (level, kind) in names.items():
            if kind == OrgKind.ENTERPRISE.value:
                assert name.endswith("工会委员会")
                assert level == OrgLevel.GRASSROOTS.value
            if kind == OrgKind.JOINT.value:
                assert name.endswith("联合工会")

    def test_every_employer_and_member_hangs_together(self, generated: Generated) -> None:
        with Session(generated.engine) as s:
            orgs = {o.id: o for o in s.scalars(select(UnionOrg))}
            firms = {e.id: e for e in s.scalars(select(Enterprise))}
            depts = {d.id: d for d in s.scalars(select(Department))}
            members = list(s.scalars(select(Member)))
        for firm in firms.values():
            union = orgs[firm.org_id]
            assert union.level == OrgLevel.GRASSROOTS
            assert union.region_code == firm.region_code
            if union.kind == OrgKind.ENTERPRISE:
                assert union.enterprise_id == firm.id
            else:
                assert union.kind == OrgKind.JOINT
        for m in members:
            union = orgs[m.org_id]
            assert union.level == OrgLevel.GRASSROOTS
            if m.enterprise_id is None:
                assert m.department_id is None
                assert union.kind == OrgKind.JOINT
            else:
                assert m.department_id is not None
                assert depts[m.department_id].enterprise_id == m.enterprise_id
                firm = firms[m.enterprise_id]
                assert m.org_id == firm.org_id or (
                    union.kind == OrgKind.JOINT and "新就业形态" in union.name
                )
        per_firm = Counter(m.enterprise_id for m in members if m.enterprise_id is not None)
        for firm_id, n in per_firm.items():
            firm = firms[firm_id]
            assert n <= firm.employee_count
            # Trade Union Law art. 11: 25 members or more, a union of its own.
            own = orgs[firm.org_id].kind == OrgKind.ENTERPRISE
            assert own == (n >= 25 or (firm.ownership == Ownership.INSTITUTION and n >= 8))


class TestRealism:
    def test_coal_miners_exist_and_are_mostly_men(self, generated: Generated) -> None:
        rows = _rows(
            generated.engine,
            "SELECT m.gender, m.occupation FROM member m JOIN enterprise e "
            "ON e.id = m.enterprise_id WHERE e.industry_division = '06'",
        )
        assert len(rows) > 0.1 * MEMBERS  # Shanxi: ~15 % of members mine coal
        men = sum(g == "M" for g, _ in rows) / len(rows)
        assert men > 0.85
        assert {"采煤工", "掘进工"} <= {o for _, o in rows}
        underground = [g for g, o in rows if o in {"采煤工", "掘进工", "瓦斯检查工"}]
        assert set(underground) == {"M"}  # no women underground

    def test_gender_mix_differs_by_industry(self, generated: Generated) -> None:
        rows = _rows(
            generated.engine,
            "SELECT e.industry_division, avg(CASE WHEN m.gender = 'M' THEN 1.0 ELSE 0 END) "
            "FROM member m JOIN enterprise e ON e.id = m.enterprise_id "
            "GROUP BY e.industry_division",
        )
        male = {d: float(share) for d, share in rows}
        assert male["83"] < 0.5  # education
        assert male["84"] < 0.5  # health
        assert male["47"] > 0.75  # construction

    def test_new_form_workers_sit_in_joint_unions_or_platforms(self, generated: Generated) -> None:
        forms = tuple(f.value for f in NEW_FORM_EMPLOYMENT)
        everyone = _rows(
            generated.engine,
            "SELECT m.employment_form, o.kind, e.is_platform, e.industry_division "
            "FROM member m JOIN union_org o ON o.id = m.org_id "
            "LEFT JOIN enterprise e ON e.id = m.enterprise_id",
        )
        rows = [row for row in everyone if row[0] in forms]
        assert {f for f, *_ in rows} == set(forms)
        assert any(kind == "joint" for _, kind, _, _ in rows)
        assert any(platform for _, _, platform, _ in rows)
        for _, kind, platform, division in rows:
            assert kind == "joint" or platform or division in {"54", "59", "60"}
        (platforms,) = _rows(
            generated.engine, "SELECT count(*) FROM enterprise WHERE is_platform = :t", t=True
        )[0]
        assert platforms >= 1

    def test_size_distribution_is_heavy_tailed(self, generated: Generated) -> None:
        sizes = sorted(
            n for (n,) in _rows(generated.engine, "SELECT employee_count FROM enterprise")
        )
        assert sizes[len(sizes) // 2] < 100  # the typical employer is small …
        assert sizes[-1] > 10 * sizes[len(sizes) // 2]  # … a few are very large

    def test_names_ethnicity_and_departments_look_chinese(self, generated: Generated) -> None:
        members = _members(generated)
        surnames = Counter(m.name[0] for m in members)
        assert {s for s, _ in surnames.most_common(3)} & {"王", "李", "张"}
        assert all(2 <= len(m.name) <= 4 for m in members)
        assert {m.ethnicity for m in members} <= set(ETHNIC_GROUPS)
        assert Counter(m.ethnicity for m in members)["汉族"] > 0.95 * MEMBERS
        depts = {n for (n,) in _rows(generated.engine, "SELECT name FROM department")}
        assert "采煤一队" in depts
        assert "综合办公室" in depts


class TestPlaintext:
    def test_sqlite_file_holds_no_plaintext_id_or_phone(self, generated: Generated) -> None:
        if generated.path is None:
            pytest.skip("a file check: SQLite only")
        blob = b"".join(
            p.read_bytes() for p in (generated.path, Path(f"{generated.path}-wal")) if p.exists()
        )
        assert len(blob) > 100_000
        crypto = generated.crypto
        members = _members(generated)
        for m in members[:: max(1, len(members) // 300)]:
            number = crypto.decrypt(m.id_number_enc, ID_NUMBER.name)
            assert number.encode() not in blob
            assert number[6:17].encode() not in blob  # not even the birth date + sequence
            if m.phone_enc:
                assert crypto.decrypt(m.phone_enc, PHONE.name).encode() not in blob


class TestDeterminism:
    def test_same_seed_same_people(self, generated: Generated, sqlite_generated: Generated) -> None:
        def people(g: Generated) -> list[tuple[str, dt.date, str, str]]:
            return [
                (
                    m.name,
                    m.birth_date,
                    g.crypto.decrypt(m.id_number_enc, ID_NUMBER.name),
                    m.occupation,
                )
                for m in _members(g)
            ]

        assert people(generated) == people(sqlite_generated)
        firms = "SELECT name, uscc FROM enterprise ORDER BY id"
        assert _rows(generated.engine, firms) == _rows(sqlite_generated.engine, firms)

    def test_helper_process_and_chunking_change_nothing(self, tmp_path: Path) -> None:
        def run(name: str, **kw: Any) -> list[tuple[str, str, str | None]]:
            engine = make_engine(f"sqlite:///{tmp_path / name}")
            schema.upgrade(engine)
            crypto = FieldCrypto(KeyRing.generate())
            generate_province(engine, crypto, members=3_000, seed=5, as_of=AS_OF, **kw)
            with Session(engine) as s:
                rows = [
                    (
                        m.name,
                        crypto.decrypt(m.id_number_enc, ID_NUMBER.name),
                        crypto.decrypt(m.phone_enc, PHONE.name) if m.phone_enc else None,
                    )
                    for m in s.scalars(select(Member).order_by(Member.id))
                ]
            engine.dispose()
            return rows

        inline = run("inline.db", workers=0, chunk_size=3_000)
        helper = run("helper.db", workers=1, chunk_size=700)
        assert inline == helper

    def test_other_seed_other_people(self, sqlite_generated: Generated, tmp_path: Path) -> None:
        other = _generate(f"sqlite:///{tmp_path / 'other.db'}", seed=SEED + 1)
        try:
            names = "SELECT name, birth_date FROM member ORDER BY id"
            mine = _rows(sqlite_generated.engine, names)
            theirs = _rows(other.engine, names)
            assert sum(a == b for a, b in zip(mine, theirs, strict=False)) < 0.05 * MEMBERS
        finally:
            other.engine.dispose()


class TestRefusals:
    @pytest.mark.parametrize("code", ["140100", "999999", "14000", "810000", "710000"])
    def test_not_a_mainland_province(self, code: str, tmp_path: Path) -> None:
        engine = make_engine(f"sqlite:///{tmp_path / 'bad.db'}")
        schema.upgrade(engine)
        with pytest.raises(ProvinceError):
            generate_province(engine, FieldCrypto(KeyRing.generate()), members=10, province=code)
        engine.dispose()

    def test_province_already_there(self, generated: Generated) -> None:
        before = _rows(generated.engine, "SELECT count(*), max(id) FROM member")
        with pytest.raises(ProvinceExistsError, match="already holds 12,000 members"):
            generate_province(generated.engine, generated.crypto, members=10, province=SHANXI)
        assert _rows(generated.engine, "SELECT count(*), max(id) FROM member") == before

    def test_second_province_beside_the_first(self, tmp_path: Path) -> None:
        url = f"sqlite:///{tmp_path / 'two.db'}"
        first = _generate(url, members=800)
        crypto = first.crypto
        # Hainan: counties directly under the province and cities without counties.
        report = generate_province(
            first.engine, crypto, members=800, seed=1, province="460000", as_of=AS_OF
        )
        assert report.counts["member"] == 800
        roots = _rows(
            first.engine, "SELECT name FROM union_org WHERE parent_id IS NULL ORDER BY id"
        )
        assert [r for (r,) in roots] == ["山西省总工会", "海南省总工会"]
        hainan = {
            name: parent
            for name, parent in _rows(
                first.engine,
                "SELECT o.name, p.name FROM union_org o JOIN union_org p ON p.id = o.parent_id "
                "WHERE o.region_code LIKE '46%' AND o.level IN ('city', 'county')",
            )
        }
        assert hainan["琼海市总工会"] == "海南省总工会"  # 省直辖县级市
        assert hainan["儋州市总工会"] == "海南省总工会"  # a city without counties
        (n_bidx,) = _rows(first.engine, "SELECT count(DISTINCT phone_bidx) FROM member")[0]
        (n_phone,) = _rows(first.engine, "SELECT count(phone_bidx) FROM member")[0]
        assert n_bidx == n_phone
        first.engine.dispose()


class TestProfiles:
    def test_tables_are_consistent(self) -> None:
        profiles.check_profiles()
        for prov in provinces():
            if prov.code[:2] in vocab.PROVINCE_ABBREVIATIONS:
                shares = profiles.sector_shares(prov.code[:2])
                assert abs(sum(shares.values()) - 1.0) < 1e-9
                vocab.minorities(prov.code[:2])  # raises on an unknown group

    @pytest.mark.parametrize(
        ("name", "short"),
        [
            ("太原市", "太原"),
            ("小店区", "小店"),
            ("万柏林区", "万柏林"),
            ("古县", "古县"),
            ("城区", "城区"),
            ("恩施土家族苗族自治州", "恩施"),
            ("新疆维吾尔自治区", "新疆"),
            ("山西省", "山西"),
            ("锡林郭勒盟", "锡林郭勒"),
            ("神农架林区", "神农架"),
        ],
    )
    def test_short_place_names(self, name: str, short: str) -> None:
        assert vocab.short_place_name(name) == short

    def test_municipality_districts_hang_under_the_province(self) -> None:
        from smartunion.generate.plan import plan_province

        beijing = plan_province("110000")
        assert beijing.orgs.names[0] == "北京市总工会"
        assert len(beijing.orgs) == 1 + len(children("110100"))
        assert set(beijing.orgs.parents[1:]) == {0}


def test_id_sequences_continue_after_the_generated_rows(generated: Generated) -> None:
    """PostgreSQL: rows were copied in with their ids; the app's next insert must not collide."""
    if generated.engine.dialect.name != "postgresql":
        pytest.skip("SQLite's rowid follows max(id) by itself")
    for table in ("union_org", "enterprise", "department", "member"):
        (top,) = _rows(generated.engine, f"SELECT COALESCE(MAX(id), 0) FROM {table}")  # noqa: S608
        (following,) = _rows(
            generated.engine, f"SELECT nextval(pg_get_serial_sequence('{table}', 'id'))"
        )
        assert following[0] > top[0], table
