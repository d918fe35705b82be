"""Factories for test data: valid codes and numbers, encrypted the way the service does it."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, field
from functools import cache

from sqlalchemy.orm import Session

from smartunion.members.models import (
    Education,
    EmploymentForm,
    Gender,
    Member,
    MemberStatus,
    SkillLevel,
)
from smartunion.members.service import ID_FIELD, PHONE_FIELD
from smartunion.orgs.models import (
    Department,
    Enterprise,
    OrgKind,
    OrgLevel,
    Ownership,
    SizeClass,
    UnionOrg,
)
from smartunion.privacy.models import SubjectRequest
from smartunion.security import service as identity
from smartunion.security.crypto import FieldCrypto
from smartunion.security.models import ExportRequest, SecurityAlert, User
from smartunion.security.passwords import hash_password
from smartunion.security.permissions import Role
from smartunion.validation import citizen_id_check_digit, make_uscc

PASSWORD = "Correct-Horse-9"
_seq = itertools.count(1)


@cache
def password_hash(password: str = PASSWORD) -> str:
    # argon2id costs ~50 ms a hash: compute once per password, not per user.
    return hash_password(password)


def citizen_id(region: str = "140105", birth: str = "19850312", seq: int = 123) -> str:
    body = f"{region}{birth}{seq:03d}"
    return body + citizen_id_check_digit(body)


def union_code(region: str, grassroots: bool) -> str:
    n = next(_seq)
    return make_uscc("8", "1" if grassroots else "9", region, f"{n:08d}"[:8])


def make_org(
    s: Session,
    name: str,
    level: OrgLevel,
    region: str,
    parent: UnionOrg | None,
    kind: OrgKind = OrgKind.FEDERATION,
) -> UnionOrg:
    org = UnionOrg(
        code=union_code(region, level is OrgLevel.GRASSROOTS),
        name=name,
        level=level,
        kind=kind,
        region_code=region,
        parent_id=parent.id if parent else None,
        path="",
    )
    s.add(org)
    s.flush()
    org.path = f"{parent.path if parent else '/'}{org.id}/"
    s.flush()
    return org


def make_enterprise(s: Session, org: UnionOrg, name: str, division: str = "06") -> Enterprise:
    n = next(_seq)
    ent = Enterprise(
        uscc=make_uscc("9", "1", org.region_code, f"{n:08d}"),
        name=name,
        industry_division=division,
        ownership=Ownership.STATE,
        size_class=SizeClass.LARGE,
        region_code=org.region_code,
        employee_count=1000,
        org_id=org.id,
    )
    s.add(ent)
    s.flush()
    return ent


def make_member(
    s: Session,
    crypto: FieldCrypto,
    org: UnionOrg,
    ent: Enterprise | None,
    name: str,
    id_number: str,
    phone: str | None = None,
    employment_form: EmploymentForm = EmploymentForm.STANDARD,
) -> Member:
    birth = dt.date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))
    member = Member(
        member_no=f"T{next(_seq):09d}",
        name=name,
        gender=Gender.MALE if int(id_number[16]) % 2 else Gender.FEMALE,
        birth_date=birth,
        id_number_enc=crypto.encrypt(id_number, ID_FIELD),
        id_number_bidx=crypto.blind_index(id_number, ID_FIELD),
        phone_enc=crypto.encrypt(phone, PHONE_FIELD) if phone else None,
        phone_bidx=crypto.blind_index(phone, PHONE_FIELD) if phone else None,
        ethnicity="汉族",
        education=Education.SENIOR,
        org_id=org.id,
        enterprise_id=ent.id if ent else None,
        occupation="采煤工",
        skill_level=SkillLevel.INTERMEDIATE,
        employment_form=employment_form,
        join_date=dt.date(2010, 5, 1),
        status=MemberStatus.ACTIVE,
    )
    s.add(member)
    s.flush()
    return member


def bulk_members(
    s: Session, crypto: FieldCrypto, org: UnionOrg, ent: Enterprise | None, n: int, prefix: str
) -> None:
    """``n`` members in one flush: distinct valid ID numbers of the organisation's county."""
    ids = [
        citizen_id(org.region_code, f"19{70 + i % 30:02d}{1 + i % 12:02d}{1 + i % 28:02d}", i % 997)
        for i in range(n)
    ]
    encrypted = crypto.encrypt_many(ids, ID_FIELD)
    blind = crypto.blind_index_many(ids, ID_FIELD)
    s.add_all(
        Member(
            member_no=f"T{next(_seq):09d}",
            name=f"{prefix}{i}",
            gender=Gender.MALE if int(number[16]) % 2 else Gender.FEMALE,
            birth_date=dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14])),
            id_number_enc=enc,
            id_number_bidx=bidx,
            ethnicity="汉族",
            education=Education.SENIOR,
            org_id=org.id,
            enterprise_id=ent.id if ent else None,
            occupation="采煤工",
            skill_level=SkillLevel.JUNIOR,
            employment_form=EmploymentForm.STANDARD,
            join_date=dt.date(2015, 1, 1),
            status=MemberStatus.ACTIVE,
        )
        for i, (number, enc, bidx) in enumerate(zip(ids, encrypted, blind, strict=True))
    )
    s.flush()


def make_user(
    s: Session, username: str, role: Role, org: UnionOrg, member: Member | None = None
) -> User:
    user = User(
        username=username,
        display_name=username,
        password_hash=password_hash(),
        role=role,
        org_id=org.id,
        member_id=member.id if member else None,
    )
    s.add(user)
    s.flush()
    return user


@dataclass
class World:
    """Two sibling branches under one province; ``*_a`` and ``*_b`` never see each other."""

    province: UnionOrg
    city_a: UnionOrg
    city_b: UnionOrg
    union_a: UnionOrg
    union_b: UnionOrg
    ent_a: Enterprise
    ent_b: Enterprise
    dept_a: Department
    member_a: Member
    member_b: Member
    id_a: str
    id_b: str
    phone_a: str
    phone_b: str
    users: dict[str, User] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    cookies: dict[str, str] = field(default_factory=dict)
    alert_a_id: int = 0
    export_a_id: int = 0
    request_a_id: int = 0

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


def build_world(s: Session, crypto: FieldCrypto) -> World:
    province = make_org(s, "山西省总工会", OrgLevel.PROVINCE, "140000", None)
    city_a = make_org(s, "太原市总工会", OrgLevel.CITY, "140100", province)
    city_b = make_org(s, "大同市总工会", OrgLevel.CITY, "140200", province)
    union_a = make_org(
        s, "太原煤业有限公司工会委员会", OrgLevel.GRASSROOTS, "140105", city_a, OrgKind.ENTERPRISE
    )
    union_b = make_org(
        s, "大同机械有限公司工会委员会", OrgLevel.GRASSROOTS, "140213", city_b, OrgKind.ENTERPRISE
    )
    ent_a = make_enterprise(s, union_a, "太原煤业有限公司")
    ent_b = make_enterprise(s, union_b, "大同机械有限公司", division="34")
    dept_a = Department(enterprise_id=ent_a.id, name="采煤一队")
    s.add(dept_a)
    id_a, id_b = citizen_id("140105", "19850312", 123), citizen_id("140213", "19900101", 244)
    phone_a, phone_b = "13812345678", "13987654321"
    member_a = make_member(s, crypto, union_a, ent_a, "张三丰", id_a, phone_a)
    member_b = make_member(s, crypto, union_b, ent_b, "李四", id_b, phone_b)
    world = World(
        province,
        city_a,
        city_b,
        union_a,
        union_b,
        ent_a,
        ent_b,
        dept_a,
        member_a,
        member_b,
        id_a,
        id_b,
        phone_a,
        phone_b,
    )
    for name, role, org, member in [
        ("admin", Role.SYSTEM_ADMIN, province, None),
        ("staff_a", Role.STAFF, city_a, None),
        ("staff_b", Role.STAFF, city_b, None),
        ("orgadmin_a", Role.ORG_ADMIN, union_a, None),
        ("orgadmin_b", Role.ORG_ADMIN, city_b, None),
        ("officer", Role.SECURITY_OFFICER, province, None),
        ("officer_b", Role.SECURITY_OFFICER, city_b, None),
        ("analyst", Role.ANALYST, province, None),
        ("auditor", Role.AUDITOR, province, None),
        ("member_a", Role.MEMBER, union_a, member_a),
        ("member_b", Role.MEMBER, union_b, member_b),
    ]:
        user = make_user(s, name, role, org, member)
        world.users[name] = user
        world.tokens[name] = identity.open_session(
            s, user, kind="bearer", lifetime=dt.timedelta(hours=1)
        )
        world.cookies[name] = identity.open_session(
            s, user, kind="cookie", lifetime=dt.timedelta(hours=1)
        )
    alert = SecurityAlert(
        user_id=world.users["staff_a"].id,
        kind="bulk_read",
        severity="warning",
        message="test alert",
        details={},
    )
    s.add(alert)
    s.flush()
    world.alert_a_id = alert.id
    export = ExportRequest(
        uid="a1b2c3d4e5f60718",
        requested_by=world.users["staff_a"].id,
        dataset="members",
        org_id=union_a.id,
        filters={},
        file_format="csv",
        record_count=1,
        status="pending",
    )
    s.add(export)
    s.flush()
    world.export_a_id = export.id
    request = SubjectRequest(
        member_id=member_a.id,
        org_id=union_a.id,
        kind="correction",
        field="phone",
        note_enc=crypto.encrypt("新号码 13700001111", "subject_request.note"),
    )
    s.add(request)
    s.flush()
    world.request_a_id = request.id
    return world
