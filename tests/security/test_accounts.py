"""Accounts: who may open an account that acts as a member, password change and reset,
what a log-in answer tells, and how long a bearer token lives idle (issue 7 items 2, 15,
22, 23; issue 9 item 4)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from smartunion import schema
from smartunion.config import Settings
from smartunion.db import Database, make_engine, utcnow
from smartunion.errors import Conflict
from smartunion.notifications.models import Notification
from smartunion.security import service as identity
from smartunion.security.crypto import FieldCrypto
from smartunion.security.models import AuditEvent, AuthSession, User
from smartunion.security.permissions import Role
from smartunion.web.app import create_app
from smartunion.web.state import AppState
from tests.factories import PASSWORD, World, build_world, make_member

STRONG = "Tiger-Lily-Mine-47"
OTHER = "Harbour-Kite-Ninety-3"


def _login(client: TestClient, username: str, password: str, otp: str | None = None) -> str:
    data = {"username": username, "password": password}
    if otp is not None:
        data["otp"] = otp
    r = client.post("/api/v1/auth/token", data=data)
    assert r.status_code == 200, r.text
    token: str = r.json()["access_token"]
    return token


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _enrol(db: Database, crypto: FieldCrypto, username: str) -> str:
    with db.session() as s:
        user = s.scalar(select(User).where(User.username == username))
        assert user is not None
        secret = identity.begin_totp_enrolment(s, user, crypto)
        code = pyotp.TOTP(secret).at(utcnow() - dt.timedelta(seconds=30))
        assert identity.confirm_totp_enrolment(s, user, crypto, code)
    return secret


class TestNoStaffActsAsAMember:
    """Item 2: an account that acts as a member gives plaintext and the member's rights;
    no staff role may open one, link one, reopen one or set its password."""

    @pytest.mark.parametrize("who", ["orgadmin_a", "admin"])
    def test_staff_cannot_open_a_member_account(
        self, client: TestClient, world: World, who: str
    ) -> None:
        linked = client.post(
            "/api/v1/users",
            json={
                "username": "fake_member",
                "password": STRONG,
                "role": "member",
                "org_id": world.union_a.id,
                "member_id": world.member_a.id,
            },
            headers=world.auth(who),
        )
        assert linked.status_code == 422  # member_id is not a field of a staff account
        unlinked = client.post(
            "/api/v1/users",
            json={
                "username": "fake_member",
                "password": STRONG,
                "role": "member",
                "org_id": world.union_a.id,
            },
            headers=world.auth(who),
        )
        assert unlinked.status_code == 403
        staff_linked = client.post(
            "/api/v1/users",
            json={
                "username": "fake_member",
                "password": STRONG,
                "role": "staff",
                "org_id": world.union_a.id,
                "member_id": world.member_a.id,
            },
            headers=world.auth(who),
        )
        assert staff_linked.status_code == 422

    def test_the_service_refuses_member_accounts_whoever_asks(
        self, db: Database, world: World
    ) -> None:
        with db.session() as s, pytest.raises(identity.UserError, match="on the server"):
            identity.create_user(
                s,
                None,
                username="m2",
                password=STRONG,
                role=Role.MEMBER,
                org=world.union_a,
                member_id=world.member_a.id,
            )

    @pytest.mark.parametrize(
        "change",
        [{"role": "staff"}, {"reset_totp": True}],
    )
    def test_staff_cannot_turn_or_reset_a_member_account(
        self, client: TestClient, world: World, change: dict[str, object]
    ) -> None:
        r = client.patch(
            f"/api/v1/users/{world.users['member_a'].id}", json=change, headers=world.auth("admin")
        )
        assert r.status_code == 403

    def test_staff_may_switch_a_member_account_off_but_not_on(
        self, client: TestClient, world: World
    ) -> None:
        url = f"/api/v1/users/{world.users['member_a'].id}"
        off = client.patch(url, json={"is_active": False}, headers=world.auth("orgadmin_a"))
        assert off.status_code == 200
        assert off.json()["state"] == "inactive"
        assert client.get("/api/v1/me/data", headers=world.auth("member_a")).status_code == 401
        on = client.patch(url, json={"is_active": True}, headers=world.auth("orgadmin_a"))
        assert on.status_code == 403

    def test_staff_cannot_set_a_member_password(self, client: TestClient, world: World) -> None:
        r = client.post(
            f"/api/v1/users/{world.users['member_a'].id}/password",
            json={"new_password": STRONG},
            headers=world.auth("admin"),
        )
        assert r.status_code == 403
        assert _login_status(client, "member_a", STRONG) == 401

    def test_a_staff_account_cannot_become_a_member(self, client: TestClient, world: World) -> None:
        r = client.patch(
            f"/api/v1/users/{world.users['staff_a'].id}",
            json={"role": "member"},
            headers=world.auth("admin"),
        )
        assert r.status_code == 403

    def test_the_operator_opens_one_audited_and_the_member_is_told(
        self, client: TestClient, db: Database, crypto: FieldCrypto, world: World
    ) -> None:
        with db.session() as s:
            member = make_member(
                s, crypto, world.union_a, world.ent_a, "王五", "14010519850312004X", "13600001111"
            )
            user = identity.create_member_account(
                s,
                member_id=member.id,
                username="wangwu",
                password=STRONG,
                channel=identity.AccountChannel.OPERATOR_CLI,
            )
            assert user.role is Role.MEMBER
            assert user.org_id == world.union_a.id  # the member's own union
            event = s.scalar(
                select(AuditEvent).where(
                    AuditEvent.action == "user.create", AuditEvent.object_id == str(user.id)
                )
            )
            assert event is not None
            assert event.actor_username == "cli"
            assert event.details["channel"] == "operator_cli"
            assert event.details["member_id"] == member.id
            with pytest.raises(Conflict, match="already has an account"):
                identity.create_member_account(
                    s,
                    member_id=member.id,
                    username="wangwu2",
                    password=STRONG,
                    channel=identity.AccountChannel.OPERATOR_CLI,
                )
        token = _login(client, "wangwu", STRONG)
        notes = client.get("/api/v1/me/notifications", headers=_bearer(token))
        assert notes.status_code == 200
        assert [n["kind"] for n in notes.json()] == ["account.created"]
        # Staff have no notices of their own and cannot read a member's.
        staff = client.get("/api/v1/me/notifications", headers=world.auth("staff_a"))
        assert staff.status_code == 403


def _login_status(client: TestClient, username: str, password: str, otp: str | None = None) -> int:
    data = {"username": username, "password": password}
    if otp is not None:
        data["otp"] = otp
    return client.post("/api/v1/auth/token", data=data).status_code


class TestPasswordChange:
    """Item 15: change (self, with the current password) and reset (by an administrator);
    every other session and token of the account ends."""

    def test_change_needs_the_current_password_and_ends_other_sessions(
        self, client: TestClient, world: World, db: Database
    ) -> None:
        mine = _login(client, "staff_a", PASSWORD)
        other = _login(client, "staff_a", PASSWORD)
        wrong = client.post(
            "/api/v1/auth/password",
            json={"current_password": "not-the-password", "new_password": STRONG},
            headers=_bearer(mine),
        )
        assert wrong.status_code == 403
        r = client.post(
            "/api/v1/auth/password",
            json={"current_password": PASSWORD, "new_password": STRONG},
            headers=_bearer(mine),
        )
        assert r.status_code == 204
        assert client.get("/api/v1/auth/me", headers=_bearer(mine)).status_code == 200
        assert client.get("/api/v1/auth/me", headers=_bearer(other)).status_code == 401
        assert client.get("/api/v1/auth/me", headers=world.auth("staff_a")).status_code == 401
        with db.session() as s:
            cookie = identity.resolve_session(s, world.cookies["staff_a"], kind="cookie")
            assert cookie is None
            outcomes = [
                e.outcome
                for e in s.scalars(
                    select(AuditEvent)
                    .where(AuditEvent.action == "user.password_change")
                    .order_by(AuditEvent.id)
                )
            ]
        assert outcomes == ["failed", "ok"]
        assert _login_status(client, "staff_a", PASSWORD) == 401
        assert _login_status(client, "staff_a", STRONG) == 200

    def test_wrong_current_passwords_count_towards_the_lockout(
        self, client: TestClient, world: World, db: Database
    ) -> None:
        for _ in range(5):
            r = client.post(
                "/api/v1/auth/password",
                json={"current_password": "guess-guess-1", "new_password": STRONG},
                headers=world.auth("staff_a"),
            )
            assert r.status_code == 403
        with db.session() as s:
            user = s.get(User, world.users["staff_a"].id)
            assert user is not None
            assert user.locked_until is not None
        # Locked: even the right current password is refused now.
        r = client.post(
            "/api/v1/auth/password",
            json={"current_password": PASSWORD, "new_password": STRONG},
            headers=world.auth("staff_a"),
        )
        assert r.status_code == 403

    def test_a_weak_new_password_is_refused(self, client: TestClient, world: World) -> None:
        r = client.post(
            "/api/v1/auth/password",
            json={"current_password": PASSWORD, "new_password": "Woaini1314!!"},
            headers=world.auth("staff_a"),
        )
        assert r.status_code == 422
        assert _login_status(client, "staff_a", PASSWORD) == 200

    def test_admin_reset_ends_every_session_of_the_account(
        self, client: TestClient, world: World, db: Database
    ) -> None:
        target = world.users["staff_a"].id
        r = client.post(
            f"/api/v1/users/{target}/password",
            json={"new_password": STRONG},
            headers=world.auth("admin"),
        )
        assert r.status_code == 200
        assert client.get("/api/v1/auth/me", headers=world.auth("staff_a")).status_code == 401
        with db.session() as s:
            live = s.scalars(
                select(AuthSession).where(
                    AuthSession.user_id == target, AuthSession.revoked_at.is_(None)
                )
            ).all()
            assert live == []
            event = s.scalar(select(AuditEvent).where(AuditEvent.action == "user.password_reset"))
            assert event is not None
            assert event.actor_username == "admin"
        assert _login_status(client, "staff_a", STRONG) == 200

    @pytest.mark.parametrize(
        ("who", "target", "status"),
        [
            ("staff_a", "staff_b", 403),  # no user:manage
            ("orgadmin_a", "officer", 404),  # above their subtree
            ("orgadmin_b", "staff_b", 200),
            ("orgadmin_b", "officer_b", 403),  # a role they cannot hand out
            ("admin", "admin", 422),  # one's own: with the current password
        ],
    )
    def test_reset_follows_the_escalation_rules(
        self, client: TestClient, world: World, who: str, target: str, status: int
    ) -> None:
        r = client.post(
            f"/api/v1/users/{world.users[target].id}/password",
            json={"new_password": OTHER},
            headers=world.auth(who),
        )
        assert r.status_code == status

    def test_totp_reset_ends_every_session_of_the_account(
        self, client: TestClient, world: World
    ) -> None:
        r = client.patch(
            f"/api/v1/users/{world.users['orgadmin_a'].id}",
            json={"reset_totp": True},
            headers=world.auth("admin"),
        )
        assert r.status_code == 200
        assert client.get("/api/v1/auth/me", headers=world.auth("orgadmin_a")).status_code == 401


class TestLoginAnswers:
    """Item 22 and issue 9 item 4: the answer to a log-in confirms nothing it should not."""

    def test_totp_account_answers_otp_required_whether_the_password_is_right_or_not(
        self, client: TestClient, world: World, db: Database, crypto: FieldCrypto
    ) -> None:
        _enrol(db, crypto, "admin")
        right = client.post("/api/v1/auth/token", data={"username": "admin", "password": PASSWORD})
        wrong = client.post("/api/v1/auth/token", data={"username": "admin", "password": "x-y-z"})
        assert right.status_code == wrong.status_code == 401
        assert right.json() == wrong.json() == {"detail": "otp_required"}
        assert right.headers["WWW-Authenticate"] == wrong.headers["WWW-Authenticate"]

    def test_wrong_passwords_without_a_code_still_lock_the_account(
        self, client: TestClient, world: World, db: Database, crypto: FieldCrypto
    ) -> None:
        secret = _enrol(db, crypto, "admin")
        for _ in range(5):
            assert _login_status(client, "admin", "wrong-guess-1") == 401
        assert _login_status(client, "admin", PASSWORD, pyotp.TOTP(secret).now()) == 401

    def test_suspended_user_with_the_right_password_is_told_whom_to_contact(
        self, client: TestClient, world: World, db: Database
    ) -> None:
        with db.session() as s:
            s.execute(
                update(User)
                .where(User.id == world.users["staff_b"].id)
                .values(suspended_at=utcnow(), suspended_reason="bulk reading")
            )
        right = client.post(
            "/api/v1/auth/token", data={"username": "staff_b", "password": PASSWORD}
        )
        assert right.status_code == 403
        detail = right.json()["detail"]
        assert "suspended" in detail
        # staff_b sits in city B, whose own security officer is officer_b.
        assert world.city_b.name in detail
        assert "officer_b" in detail
        wrong = client.post("/api/v1/auth/token", data={"username": "staff_b", "password": "nope"})
        ghost = client.post("/api/v1/auth/token", data={"username": "ghost", "password": "nope"})
        assert wrong.status_code == ghost.status_code == 401
        assert wrong.json() == ghost.json()
        with db.session() as s:
            user = s.get(User, world.users["staff_b"].id)
            assert user is not None
            assert user.last_login_at is None  # told, not let in

    def test_suspended_totp_account_is_told_only_with_password_and_code(
        self, client: TestClient, world: World, db: Database, crypto: FieldCrypto
    ) -> None:
        secret = _enrol(db, crypto, "orgadmin_a")
        with db.session() as s:
            s.execute(
                update(User)
                .where(User.id == world.users["orgadmin_a"].id)
                .values(suspended_at=utcnow())
            )
        r = client.post("/api/v1/auth/token", data={"username": "orgadmin_a", "password": PASSWORD})
        assert r.json() == {"detail": "otp_required"}
        r = client.post(
            "/api/v1/auth/token",
            data={
                "username": "orgadmin_a",
                "password": PASSWORD,
                "otp": pyotp.TOTP(secret).now(),
            },
        )
        assert r.status_code == 403
        assert "suspended" in r.json()["detail"]
        # The province's officer covers union A (no officer of its own below the province).
        assert world.province.name in r.json()["detail"]

    def test_the_console_tells_a_suspended_user_too(
        self, client: TestClient, world: World, db: Database
    ) -> None:
        with db.session() as s:
            s.execute(
                update(User)
                .where(User.id == world.users["staff_b"].id)
                .values(suspended_at=utcnow())
            )
        page = client.get("/login")
        token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        r = client.post(
            "/login",
            data={"username": "staff_b", "password": PASSWORD, "csrf_token": token},
            follow_redirects=False,
        )
        assert r.status_code == 403
        assert "officer_b" in r.text
        assert world.city_b.name in r.text


class TestBearerIdle:
    """Item 23: a bearer token unused for longer than the idle limit is dead."""

    def test_idle_token_is_refused(
        self, settings: Settings, db: Database, crypto: FieldCrypto, world: World
    ) -> None:
        settings.api_token_idle_seconds = 600
        app = create_app(settings, state=AppState(settings=settings, db=db, crypto=crypto))
        with TestClient(app) as client:
            fresh = client.get("/api/v1/auth/me", headers=world.auth("staff_a"))
            assert fresh.status_code == 200
            with db.session() as s:
                s.execute(
                    update(AuthSession)
                    .where(AuthSession.user_id == world.users["staff_a"].id)
                    .values(last_seen_at=utcnow() - dt.timedelta(seconds=601))
                )
            idle = client.get("/api/v1/auth/me", headers=world.auth("staff_a"))
            assert idle.status_code == 401
            # Used within the limit, a token stays alive (each use moves last_seen_at).
            with db.session() as s:
                s.execute(
                    update(AuthSession)
                    .where(AuthSession.user_id == world.users["staff_b"].id)
                    .values(last_seen_at=utcnow() - dt.timedelta(seconds=599))
                )
            assert client.get("/api/v1/auth/me", headers=world.auth("staff_b")).status_code == 200


class TestStaffMadeMemberAccounts:
    """Item 2, the accounts staff opened before: revision 0010 switches them off."""

    def test_upgrade_disables_them_and_tells_the_member(
        self, tmp_path: Path, crypto: FieldCrypto
    ) -> None:
        engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
        schema.upgrade(engine, "0009")
        with Session(engine) as s:
            world = build_world(s, crypto)
            staff_made, cli_made = world.users["member_a"], world.users["member_b"]
            s.add_all(
                [
                    AuditEvent(
                        action="user.create",
                        object_type="user",
                        object_id=str(staff_made.id),
                        actor_user_id=world.users["orgadmin_a"].id,
                        details={"role": "member"},
                    ),
                    AuditEvent(
                        action="user.create",
                        object_type="user",
                        object_id=str(cli_made.id),
                        actor_user_id=None,
                        details={"role": "member"},
                    ),
                ]
            )
            s.commit()
            ids = (staff_made.id, cli_made.id, world.member_a.id)
        schema.upgrade(engine)
        with Session(engine) as s:
            a, b = s.get(User, ids[0]), s.get(User, ids[1])
            assert a is not None
            assert b is not None
            assert not a.is_active
            assert b.is_active
            live_a = s.scalars(
                select(AuthSession).where(
                    AuthSession.user_id == ids[0], AuthSession.revoked_at.is_(None)
                )
            ).all()
            assert live_a == []
            notices = s.scalars(select(Notification)).all()
            assert [(n.member_id, n.kind) for n in notices] == [
                (ids[2], "account.disabled_staff_made")
            ]
        engine.dispose()
