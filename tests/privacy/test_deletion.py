"""After an accepted deletion request no trace leads back to the person (issue 7, item 11).

Traces looked for: the account's username and display name (in the account and in the
audit trail), the name a staff member searched for, a phone number in a staff reply, the
request notes; and the kept statistical fields, which must not single the record out.
"""

from __future__ import annotations

import datetime as dt
import json

from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from smartunion.db import Database
from smartunion.members.models import Member
from smartunion.orgs.models import UnionOrg
from smartunion.privacy.generalise import K_ANONYMITY, date_range
from smartunion.privacy.models import SubjectRequest
from smartunion.security.crypto import FieldCrypto
from smartunion.security.models import AuditEvent, User
from tests.factories import PASSWORD, World, bulk_members


def _delete(client: TestClient, world: World, response: str = "已按您的要求删除") -> int:
    r = client.post(
        "/api/v1/me/requests",
        json={"kind": "deletion", "note": f"请删除，联系电话 {world.phone_a}"},
        headers=world.auth("member_a"),
    )
    assert r.status_code == 201, r.text
    request_id: int = r.json()["id"]
    done = client.post(
        f"/api/v1/privacy/requests/{request_id}/resolve",
        json={"accept": True, "response": response},
        headers=world.auth("staff_a"),
    )
    assert done.status_code == 200, done.text
    return request_id


def _everything(db: Database) -> str:
    """The audit trail, the accounts and the requests, as one text."""
    with db.session() as s:
        trail = [
            [e.actor_username, e.object_id, e.details]
            for e in s.scalars(select(AuditEvent).order_by(AuditEvent.id))
        ]
        users = [[u.username, u.display_name] for u in s.scalars(select(User))]
        requests = [[r.response, r.field] for r in s.scalars(select(SubjectRequest))]
    return json.dumps([trail, users, requests], ensure_ascii=False)


class TestNoTraceLeft:
    def test_account_names_search_terms_and_replies_are_gone(
        self, client: TestClient, world: World, db: Database
    ) -> None:
        with db.session() as s:
            s.execute(
                update(User)
                .where(User.id == world.users["member_a"].id)
                .values(display_name="张三丰本人")
            )
        # The member uses the portal: log-in, own data, a consent.
        r = client.post("/api/v1/auth/token", data={"username": "member_a", "password": PASSWORD})
        assert r.status_code == 200, r.text
        assert client.get("/api/v1/me/data", headers=world.auth("member_a")).status_code == 200
        # Staff look the member up by name and by phone.
        for q in ("张三丰", world.phone_a):
            found = client.get("/api/v1/members", params={"q": q}, headers=world.auth("staff_a"))
            assert [m["id"] for m in found.json()["items"]] == [world.member_a.id]
        request_id = _delete(client, world, response=f"已删除，回访电话 {world.phone_a}")
        text = _everything(db)
        for trace in ("member_a", "张三丰", world.phone_a, world.id_a):
            at = text.find(trace)
            assert at < 0, (trace, text[max(0, at - 200) : at + 50])
        with db.session() as s:
            user = s.get_one(User, world.users["member_a"].id)
            assert user.display_name == ""
            assert not user.totp_enabled
            request = s.get_one(SubjectRequest, request_id)
            assert request.note_enc is None
        # The account is dead on every path.
        assert client.get("/api/v1/me/data", headers=world.auth("member_a")).status_code == 401
        r = client.post("/api/v1/auth/token", data={"username": "member_a", "password": PASSWORD})
        assert r.status_code == 401

    def test_the_sealed_chain_still_verifies(
        self, client: TestClient, world: World, db: Database, crypto: FieldCrypto
    ) -> None:
        from smartunion.security import audit

        key = crypto.ring.audit_key
        client.get("/api/v1/me/data", headers=world.auth("member_a"))
        audit.seal_all(db.session, key)
        _delete(client, world)
        audit.seal_all(db.session, key)
        with db.session() as s:
            checked, broken = audit.verify_chain(s, key)
        assert broken is None
        assert checked > 0


class TestKeptFieldsAreNotUnique:
    def test_anonymised_record_is_one_of_at_least_k(
        self, client: TestClient, world: World, db: Database, crypto: FieldCrypto
    ) -> None:
        # 太原煤业 gets 60 more members; member_a alone has its birth month and join date.
        with db.session() as s:
            bulk_members(s, crypto, world.union_a, world.ent_a, 60, "工人")
            original = s.get_one(Member, world.member_a.id)

            def same_exact(m: Member) -> int:
                return int(
                    s.scalar(
                        select(func.count())
                        .select_from(Member)
                        .where(
                            Member.enterprise_id == m.enterprise_id,
                            Member.gender == m.gender,
                            Member.birth_date.between(*date_range(m.birth_date, 1)),
                            Member.join_date.between(*date_range(m.join_date, 1)),
                        )
                    )
                    or 0
                )

            assert same_exact(original) == 1  # unique before: the finding
        _delete(client, world)
        with db.session() as s:
            member = s.get_one(Member, world.member_a.id)
            event = s.scalars(
                select(AuditEvent).where(AuditEvent.action == "member.anonymise")
            ).one()
            kept = event.details["generalised"]
            birth = tuple(dt.date.fromisoformat(d) for d in kept["birth"])
            join = tuple(dt.date.fromisoformat(d) for d in kept["join"])
            assert birth[0] <= member.birth_date <= birth[1]
            assert join[0] <= member.join_date <= join[1]
            assert member.org_id == kept["org_id"]
            if not kept["employer"]:
                assert member.enterprise_id is None
            org = s.get_one(UnionOrg, member.org_id)
            sharing = (
                select(func.count())
                .select_from(Member)
                .join(UnionOrg, UnionOrg.id == Member.org_id)
                .where(
                    UnionOrg.path.startswith(org.path),
                    Member.gender == member.gender,
                    Member.employment_form == member.employment_form,
                    Member.birth_date.between(*birth),
                    Member.join_date.between(*join),
                )
            )
            if kept["employer"]:
                sharing = sharing.where(Member.enterprise_id == member.enterprise_id)
            assert (s.scalar(sharing) or 0) >= K_ANONYMITY
            assert event.details["k_reached"] is True
            assert member.occupation == ""
