"""Authentication hardening: password policy, lock-out with back-off, TOTP, rate limits."""

from __future__ import annotations

import datetime as dt

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from smartunion.config import Settings
from smartunion.db import Database, utcnow
from smartunion.security import service as identity
from smartunion.security.crypto import FieldCrypto
from smartunion.security.models import AuditEvent, User
from smartunion.security.passwords import WeakPassword, check_policy
from smartunion.web.app import create_app
from smartunion.web.state import AppState
from tests.factories import PASSWORD, World


class TestPasswordPolicy:
    @pytest.mark.parametrize(
        ("password", "why"),
        [
            ("Ab1!", "at least 10"),
            ("abcdefghijk1", "three of"),
            ("Zhangsan-2026!x", "username"),
            ("Woaini1314!!", "commonly used"),
            ("Gonghui123!", "commonly used"),
            ("Qwerty-1234", "too weak"),
            ("Aa1!Aa1!Aa1!", "too weak"),
        ],
    )
    def test_weak_passwords_are_refused(self, password: str, why: str) -> None:
        with pytest.raises(WeakPassword, match=why):
            check_policy(password, username="zhangsan")

    def test_strong_password_passes(self) -> None:
        check_policy("Tiger-Lily-Mine-47", username="zhangsan")


def _token(client: TestClient, username: str, password: str, otp: str | None = None) -> int:
    data = {"username": username, "password": password}
    if otp is not None:
        data["otp"] = otp
    return client.post("/api/v1/auth/token", data=data).status_code


class TestLogin:
    def test_password_flow_gives_a_working_token(self, client: TestClient, world: World) -> None:
        r = client.post("/api/v1/auth/token", data={"username": "staff_a", "password": PASSWORD})
        assert r.status_code == 200
        token = r.json()["access_token"]
        me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert me.json()["username"] == "staff_a"

    def test_wrong_password_and_unknown_user_look_the_same(
        self, client: TestClient, world: World
    ) -> None:
        a = client.post("/api/v1/auth/token", data={"username": "staff_a", "password": "nope"})
        b = client.post("/api/v1/auth/token", data={"username": "ghost", "password": "nope"})
        assert a.status_code == b.status_code == 401
        assert a.json() == b.json()

    def test_lockout_with_backoff(self, client: TestClient, world: World, db: Database) -> None:
        for _ in range(5):
            assert _token(client, "staff_a", "wrong-password") == 401
        # Locked now: even the right password is refused.
        assert _token(client, "staff_a", PASSWORD) == 401
        with db.session() as s:
            user = s.scalar(select(User).where(User.username == "staff_a"))
            assert user is not None
            assert user.locked_until is not None
            first = user.locked_until - utcnow()
            assert dt.timedelta(seconds=50) < first <= dt.timedelta(minutes=1)
            reasons = [
                e.details.get("reason")
                for e in s.scalars(select(AuditEvent).where(AuditEvent.action == "auth.login"))
            ]
        assert reasons[-1] == "locked"
        assert identity.lockout_after(6) == dt.timedelta(minutes=2)
        assert identity.lockout_after(30) == dt.timedelta(hours=24)

    def test_login_rate_limit_per_address(
        self, settings: Settings, db: Database, crypto: FieldCrypto, world: World
    ) -> None:
        settings.login_rate_limit = 3
        app = create_app(settings, state=AppState(settings=settings, db=db, crypto=crypto))
        with TestClient(app) as client:
            codes = [_token(client, "ghost", "x") for _ in range(4)]
        assert codes == [401, 401, 401, 429]

    def test_api_rate_limit_per_token(
        self, settings: Settings, db: Database, crypto: FieldCrypto, world: World
    ) -> None:
        settings.api_rate_limit = 3
        app = create_app(settings, state=AppState(settings=settings, db=db, crypto=crypto))
        with TestClient(app) as client:
            codes = [client.get("/api/v1/auth/me", headers=world.auth("staff_a")) for _ in range(4)]
            other = client.get("/api/v1/auth/me", headers=world.auth("staff_b"))
        assert [r.status_code for r in codes] == [200, 200, 200, 429]
        assert int(codes[-1].headers["Retry-After"]) >= 1
        assert other.status_code == 200


class TestTotp:
    def _enrol(self, db: Database, crypto: FieldCrypto, username: str) -> str:
        with db.session() as s:
            user = s.scalar(select(User).where(User.username == username))
            assert user is not None
            secret = identity.begin_totp_enrolment(s, user, crypto)
            code = pyotp.TOTP(secret).at(utcnow() - dt.timedelta(seconds=30))
            assert identity.confirm_totp_enrolment(s, user, crypto, code)
        return secret

    def test_admin_without_totp_must_enrol(self, client: TestClient, world: World) -> None:
        r = client.post("/api/v1/auth/token", data={"username": "admin", "password": PASSWORD})
        assert r.status_code == 403
        assert "enrol" in r.json()["detail"]

    def test_totp_login_and_replay(
        self, client: TestClient, world: World, db: Database, crypto: FieldCrypto
    ) -> None:
        secret = self._enrol(db, crypto, "admin")
        assert _token(client, "admin", PASSWORD) == 401  # otp_required
        r = client.post("/api/v1/auth/token", data={"username": "admin", "password": PASSWORD})
        assert r.json()["detail"] == "otp_required"
        code = pyotp.TOTP(secret).now()
        assert _token(client, "admin", PASSWORD, code) == 200
        assert _token(client, "admin", PASSWORD, code) == 401  # a code works once
        assert _token(client, "admin", PASSWORD, "000000") == 401

    def test_secret_is_stored_encrypted(
        self, world: World, db: Database, crypto: FieldCrypto
    ) -> None:
        secret = self._enrol(db, crypto, "orgadmin_a")
        with db.session() as s:
            user = s.scalar(select(User).where(User.username == "orgadmin_a"))
            assert user is not None
            assert user.totp_secret_enc is not None
            assert secret.encode() not in user.totp_secret_enc
            assert user.totp_enabled


class TestRevealLimit:
    def test_refused_reveals_do_not_extend_the_window(
        self, client: TestClient, world: World, db: Database, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from sqlalchemy import update

        from smartunion.members import service as member_service

        monkeypatch.setattr(member_service, "REVEALS_PER_HOUR", 2)
        url = f"/api/v1/members/{world.member_a.id}/reveal"
        body = {"reason": "核对会员信息"}
        codes = [
            client.post(url, json=body, headers=world.auth("staff_a")).status_code for _ in range(4)
        ]
        assert codes == [200, 200, 429, 429]
        # An hour later the two reveals have left the window; the refusals must not count.
        with db.session() as s:
            s.execute(
                update(AuditEvent)
                .where(AuditEvent.action == "member.reveal", AuditEvent.outcome == "ok")
                .values(occurred_at=utcnow() - dt.timedelta(minutes=61))
            )
        assert client.post(url, json=body, headers=world.auth("staff_a")).status_code == 200
