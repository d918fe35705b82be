"""``smartunion users``: member accounts only here, passwords set and reset on the server,
and the real state of each account (issue 7 items 2 and 15, issue 9 item 4)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from smartunion.cli import app
from smartunion.config import get_settings
from smartunion.db import Database, utcnow
from smartunion.notifications.models import Notification
from smartunion.security import service as identity
from smartunion.security.crypto import FieldCrypto
from smartunion.security.keys import load_keyring
from smartunion.security.models import AuditEvent, AuthSession, User
from smartunion.security.passwords import verify_password
from tests.factories import PASSWORD, World, build_world

runner = CliRunner()
STRONG = "Tiger-Lily-Mine-47"


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("SMARTUNION_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("SMARTUNION_DATABASE_URL", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    get_settings.cache_clear()
    result = runner.invoke(app, ["init"])
    assert result.exit_code == 0, result.output
    yield tmp_path
    get_settings.cache_clear()


@pytest.fixture
def db(data_dir: Path) -> Iterator[Database]:
    crypto = FieldCrypto(load_keyring(data_dir / "secret.key"))
    database = Database.from_url(
        f"sqlite:///{data_dir / 'smartunion.db'}", audit_key=crypto.ring.audit_key
    )
    yield database
    database.engine.dispose()


@pytest.fixture
def world(db: Database, data_dir: Path) -> World:
    crypto = FieldCrypto(load_keyring(data_dir / "secret.key"))
    with db.session() as s:
        return build_world(s, crypto)


def _user(db: Database, username: str) -> User:
    with db.session() as s:
        user = s.scalar(select(User).where(User.username == username))
        assert user is not None
        s.expunge(user)
        return user


def _live_sessions(db: Database, user_id: int) -> int:
    with db.session() as s:
        return len(
            s.scalars(
                select(AuthSession.id).where(
                    AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None)
                )
            ).all()
        )


def test_list_shows_the_real_state(db: Database, world: World) -> None:
    with db.session() as s:
        s.execute(update(User).where(User.username == "staff_a").values(suspended_at=utcnow()))
        s.execute(update(User).where(User.username == "staff_b").values(is_active=False))
    result = runner.invoke(app, ["users", "list"])
    assert result.exit_code == 0, result.output
    states = {
        cells[0]: cells[-1]
        for line in result.output.splitlines()
        if (cells := [c.strip() for c in re.split(r"[│┃]", line)[1:-1]]) and cells[0]
    }
    assert states["staff_a"] == "suspended"
    assert states["staff_b"] == "inactive"
    assert states["analyst"] == "active"
    assert "yes" not in states.values()


def test_member_account_is_opened_here_audited_and_notified(
    db: Database, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # member_b has an account already (the world made one); open one for a member without.
    with db.session() as s:
        s.execute(update(User).where(User.username == "member_a").values(member_id=None))
    monkeypatch.setenv("SMARTUNION_PASSWORD", STRONG)
    missing = runner.invoke(app, ["users", "create", "--username", "zsf", "--role", "member"])
    assert missing.exit_code == 1
    assert "--member-id" in missing.output
    result = runner.invoke(
        app,
        [
            "users",
            "create",
            "--username",
            "zsf",
            "--role",
            "member",
            "--member-id",
            str(world.member_a.id),
        ],
    )
    assert result.exit_code == 0, result.output
    user = _user(db, "zsf")
    assert user.member_id == world.member_a.id
    assert user.org_id == world.union_a.id
    with db.session() as s:
        notices = s.scalars(
            select(Notification.kind).where(Notification.member_id == world.member_a.id)
        ).all()
        assert notices == ["account.created"]
        event = s.scalar(
            select(AuditEvent).where(
                AuditEvent.action == "user.create", AuditEvent.object_id == str(user.id)
            )
        )
        assert event is not None
        assert event.details["channel"] == "operator_cli"
    again = runner.invoke(
        app,
        [
            "users",
            "create",
            "--username",
            "zsf2",
            "--role",
            "member",
            "--member-id",
            str(world.member_b.id),
        ],
    )
    assert again.exit_code == 1
    assert "already has an account: member_b" in again.output


def test_set_password_revokes_every_session(
    db: Database, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = world.users["staff_a"].id
    assert _live_sessions(db, target) == 2
    monkeypatch.setenv("SMARTUNION_PASSWORD", STRONG)
    result = runner.invoke(app, ["users", "set-password", "--username", "staff_a"])
    assert result.exit_code == 0, result.output
    assert verify_password(_user(db, "staff_a").password_hash, STRONG)
    assert _live_sessions(db, target) == 0
    with db.session() as s:
        event = s.scalar(select(AuditEvent).where(AuditEvent.action == "user.password_reset"))
        assert event is not None
        assert event.actor_username == "cli"
    monkeypatch.setenv("SMARTUNION_PASSWORD", "short")
    weak = runner.invoke(app, ["users", "set-password", "--username", "staff_a"])
    assert weak.exit_code == 1
    assert "at least" in weak.output
    assert "Traceback" not in weak.output
    ghost = runner.invoke(app, ["users", "set-password", "--username", "ghost"])
    assert ghost.exit_code == 1


def test_reset_password_prints_one_that_works_and_can_reactivate(
    db: Database, world: World
) -> None:
    with db.session() as s:
        s.execute(
            update(User)
            .where(User.username == "member_a")
            .values(is_active=False, locked_until=utcnow() + dt.timedelta(hours=1))
        )
    result = runner.invoke(app, ["users", "reset-password", "--username", "member_a", "--activate"])
    assert result.exit_code == 0, result.output
    printed = re.search(r"new password of member_a: (\S+)", result.output)
    assert printed is not None
    user = _user(db, "member_a")
    assert verify_password(user.password_hash, printed.group(1))
    assert not verify_password(user.password_hash, PASSWORD)
    assert user.is_active
    assert user.locked_until is None
    assert _live_sessions(db, user.id) == 0
    with db.session() as s:
        # The member is told that the operator set their password.
        kinds = s.scalars(
            select(Notification.kind).where(Notification.member_id == world.member_a.id)
        ).all()
        assert kinds == ["account.password_set"]
        assert identity.authenticate(s, "member_a", printed.group(1)).id == user.id
