"""SQL injection and XSS payloads in every text input: stored literally, never executed,
never a server error, and escaped wherever HTML shows them."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from smartunion.db import Database
from smartunion.members.models import Member
from smartunion.validation import make_uscc
from tests.factories import World, citizen_id

PAYLOADS = [
    "' OR '1'='1",
    "'; DROP TABLE member; --",
    "张%' UNION SELECT id_number_enc FROM member --",
    '<script>alert("x")</script>',
    '"><img src=x onerror=alert(1)>',
    "{{7*7}}",
    "%_\\",
]


def _count(db: Database) -> int:
    with db.session() as s:
        return s.scalar(select(func.count(Member.id))) or 0


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize("path", ["/api/v1/members", "/api/v1/enterprises", "/api/v1/orgs"])
def test_search_inputs(
    client: TestClient, world: World, db: Database, path: str, payload: str
) -> None:
    before = _count(db)
    r = client.get(path, params={"q": payload[:60]}, headers=world.auth("admin"))
    assert r.status_code == 200
    assert r.json()["items"] == []  # matched literally: nothing is called that
    assert _count(db) == before


@pytest.mark.parametrize("payload", PAYLOADS)
def test_text_fields_are_stored_literally(client: TestClient, world: World, payload: str) -> None:
    headers = world.auth("staff_a")
    name = ("王" + payload)[:60]
    member = client.post(
        "/api/v1/members",
        headers=headers,
        json={
            "name": name,
            "id_number": citizen_id("140105", "19910101", 7 + len(payload)),
            "education": "senior",
            "org_id": world.union_a.id,
            "occupation": payload,
            "join_date": "2012-01-01",
        },
    )
    assert member.status_code == 201, member.text
    detail = client.get(f"/api/v1/members/{member.json()['id']}", headers=headers).json()
    assert detail["occupation"] == payload
    found = client.get("/api/v1/members", params={"q": name}, headers=headers).json()
    assert [m["id"] for m in found["items"]] == [member.json()["id"]]
    ent = client.post(
        "/api/v1/enterprises",
        headers=world.auth("admin"),
        json={
            "uscc": make_uscc("9", "1", "140105", f"{abs(hash(payload)) % 10**8:08d}"),
            "name": ("企业" + payload)[:160],
            "industry_division": "13",
            "ownership": "private",
            "size_class": "small",
            "region_code": "140105",
            "employee_count": 3,
            "org_id": world.union_a.id,
        },
    )
    assert ent.status_code == 201, ent.text
    assert ent.json()["name"] == ("企业" + payload)[:160]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_lookup_rejects_non_numbers(client: TestClient, world: World, payload: str) -> None:
    r = client.post(
        "/api/v1/members/lookup", json={"id_number": payload}, headers=world.auth("staff_a")
    )
    assert r.status_code == 422
    assert payload not in r.text  # errors never echo the input


@pytest.mark.parametrize("payload", PAYLOADS[3:5])
def test_console_escapes_stored_payloads(
    client: TestClient, world: World, db: Database, payload: str
) -> None:
    with db.session() as s:
        member = s.get(Member, world.member_a.id)
        assert member is not None
        member.occupation = payload
    client.cookies.set("su_session", world.cookies["staff_a"])
    page = client.get(f"/console/members/{world.member_a.id}")
    assert page.status_code == 200
    assert payload not in page.text
    assert "&lt;" in page.text
    listing = client.get("/console/members", params={"q": payload})
    assert payload not in listing.text
