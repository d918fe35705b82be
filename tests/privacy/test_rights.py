"""PIPL rights: consent, access to one's own data, correction, deletion, retention."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient
from sqlalchemy import select

from smartunion.db import Database, utcnow
from smartunion.members.models import Member, MemberStatus
from smartunion.privacy.models import SubjectRequest
from smartunion.privacy.retention import purge
from smartunion.security.crypto import FieldCrypto
from smartunion.security.models import AuditEvent, AuthSession, User
from tests.factories import World, citizen_id, make_member


class TestConsent:
    def test_grant_and_withdraw(self, client: TestClient, world: World) -> None:
        headers = world.auth("member_a")
        listed = client.get("/api/v1/me/consents", headers=headers).json()
        assert {c["purpose"] for c in listed} == {"services", "analytics", "bank_card"}
        assert not any(c["granted"] for c in listed)
        assert client.put("/api/v1/me/consents/bank_card", headers=headers).status_code == 204
        listed = {
            c["purpose"]: c for c in client.get("/api/v1/me/consents", headers=headers).json()
        }
        assert listed["bank_card"]["granted"]
        assert listed["bank_card"]["separate_consent"]
        assert client.delete("/api/v1/me/consents/bank_card", headers=headers).status_code == 204
        listed = {
            c["purpose"]: c for c in client.get("/api/v1/me/consents", headers=headers).json()
        }
        assert not listed["bank_card"]["granted"]
        assert client.put("/api/v1/me/consents/membership", headers=headers).status_code == 422

    def test_staff_have_no_consents(self, client: TestClient, world: World) -> None:
        assert client.get("/api/v1/me/consents", headers=world.auth("staff_a")).status_code == 403


class TestAccess:
    def test_my_data_is_complete_and_shows_who_read_it(
        self, client: TestClient, world: World
    ) -> None:
        client.get(f"/api/v1/members/{world.member_a.id}", headers=world.auth("staff_a"))
        r = client.get("/api/v1/me/data", headers=world.auth("member_a"))
        assert r.status_code == 200
        data = r.json()
        assert data["profile"]["id_number"] == world.id_a
        assert data["profile"]["phone"] == world.phone_a
        reads = [e for e in data["access_log"] if e["action"] == "member.read"]
        assert reads
        assert reads[0]["by_role"] == "staff"
        assert "staff_a" not in r.text


class TestRequests:
    def test_correction_note_is_encrypted_and_scoped(
        self, client: TestClient, world: World, db: Database
    ) -> None:
        r = client.post(
            "/api/v1/me/requests",
            json={"kind": "correction", "field": "education", "note": "应为本科 13911112222"},
            headers=world.auth("member_b"),
        )
        assert r.status_code == 201
        with db.session() as s:
            row = s.get(SubjectRequest, r.json()["id"])
            assert row is not None
            assert row.note_enc is not None
            assert b"13911112222" not in row.note_enc
        mine = client.get("/api/v1/privacy/requests", headers=world.auth("staff_b")).json()
        assert [x["note"] for x in mine] == ["应为本科 13911112222"]
        theirs = client.get("/api/v1/privacy/requests", headers=world.auth("staff_a")).json()
        assert r.json()["id"] not in {x["id"] for x in theirs}

    def test_deletion_anonymises_and_keeps_aggregates(
        self, client: TestClient, world: World, db: Database
    ) -> None:
        kept = (
            "org_id",
            "enterprise_id",
            "gender",
            "education",
            "occupation",
            "employment_form",
            "join_date",
        )
        with db.session() as s:
            original = s.get(Member, world.member_a.id)
            assert original is not None
            before = {f: getattr(original, f) for f in kept}
            birth = original.birth_date
        r = client.post(
            "/api/v1/me/requests", json={"kind": "deletion"}, headers=world.auth("member_a")
        )
        request_id = r.json()["id"]
        done = client.post(
            f"/api/v1/privacy/requests/{request_id}/resolve",
            json={"accept": True, "response": "已按您的要求删除"},
            headers=world.auth("staff_a"),
        )
        assert done.json()["status"] == "done"
        with db.session() as s:
            member = s.get(Member, world.member_a.id)
            assert member is not None
            assert member.name == "已匿名"
            assert member.phone_enc is None
            assert member.anonymised_at is not None
            user = s.scalar(select(User).where(User.member_id == member.id))
            assert user is not None
            assert not user.is_active
        found = client.post(
            "/api/v1/members/lookup", json={"id_number": world.id_a}, headers=world.auth("staff_a")
        )
        assert found.json() == []
        assert client.get("/api/v1/me/data", headers=world.auth("member_a")).status_code == 401
        # What aggregates use is still there, generalised (tests/privacy/test_deletion.py
        # checks the k-anonymity of what is kept): gender, education and form as they were.
        with db.session() as s:
            member = s.get(Member, world.member_a.id)
            assert member is not None
            for f in ("gender", "education", "employment_form"):
                assert getattr(member, f) == before[f], f
            assert abs(member.birth_date.year - birth.year) < 20
            assert member.status is MemberStatus.LEFT


class TestRetention:
    def test_purge_removes_old_sessions_and_anonymises_old_leavers(
        self, world: World, db: Database, crypto: FieldCrypto
    ) -> None:
        long_ago = utcnow() - dt.timedelta(days=4 * 365)
        with db.session() as s:
            gone = make_member(
                s, crypto, world.union_a, world.ent_a, "赵老", citizen_id("140105", "19500101", 11)
            )
            gone.status = MemberStatus.LEFT
            gone.left_at = long_ago.date()
            old = s.scalar(select(AuthSession).limit(1))
            assert old is not None
            old.expires_at = utcnow() - dt.timedelta(days=90)
            gone_id, old_id = gone.id, old.id
        with db.session() as s:
            dry = purge(s, crypto, dry_run=True)
        assert dry["former_member"] == 1
        assert dry["auth_session"] >= 1
        with db.session() as s:
            assert s.get(Member, gone_id).anonymised_at is None  # type: ignore[union-attr]
            counts = purge(s, crypto)
        with db.session() as s:
            assert s.get(Member, gone_id).anonymised_at is not None  # type: ignore[union-attr]
            assert s.get(AuthSession, old_id) is None
            assert counts["former_member"] == 1
            assert s.scalar(select(AuditEvent).where(AuditEvent.action == "privacy.purge"))


def test_register_for_the_dpo(client: TestClient, world: World) -> None:
    r = client.get("/api/v1/privacy/register", headers=world.auth("auditor"))
    assert r.status_code == 200
    body = r.json()
    assert any(a["name"] == "会员信息管理" for a in body["activities"])
    assert {p["key"] for p in body["purposes"]} >= {"membership", "bank_card"}
    assert client.get("/api/v1/privacy/register", headers=world.auth("staff_a")).status_code == 403
