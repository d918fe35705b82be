"""Migrations on populated databases: every downgrade works or refuses in one line before
touching anything, and a down-and-up round trip keeps every row both versions can hold
(SQLite and PostgreSQL, both cipher profiles)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.util import CommandError
from sqlalchemy import Engine, delete, func, inspect, select, text, update
from sqlalchemy.orm import Session

from smartunion import schema
from smartunion.db import Database, make_engine
from smartunion.ops import backup as bk
from smartunion.privacy.models import SubjectRequest
from smartunion.security import audit
from smartunion.security.keys import KeyRing
from smartunion.security.models import AuditEvent, ExportRequest, SecurityAlert, User
from smartunion.stats.models import PrivacyRelease
from tests.conftest import PG_PROBLEM, create_pg_database, drop_pg_database
from tests.ops.test_backup import fill

BACKENDS = ["sqlite", "postgresql"]
ROOT = Path(__file__).resolve().parents[2]


def _revision(engine: Engine) -> str:
    with engine.connect() as conn:
        return str(conn.scalar(text("SELECT version_num FROM alembic_version")))


def _downgrade(engine: Engine, revision: str) -> None:
    schema.downgrade(engine, revision)


def _kept(engine: Engine, skip: set[str]) -> dict[str, bk.TableSummary]:
    return {n: d for n, d in bk.database_digests(engine).items() if n not in skip}


@pytest.fixture(params=[(b, c) for b in BACKENDS for c in ("aes-256-gcm", "sm4-gcm")])
def populated(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Engine, KeyRing]]:
    """A database at head with data in every table, every audit event sealed."""
    backend, cipher = request.param
    if backend == "postgresql":
        if PG_PROBLEM is not None:
            pytest.skip(PG_PROBLEM)
        url = create_pg_database("su_migr")
    else:
        url = f"sqlite:///{tmp_path / 'm.db'}"
    engine = make_engine(url)
    ring = KeyRing.generate(cipher)  # type: ignore[arg-type]
    try:
        schema.upgrade(engine)
        fill(engine, ring)
        db = Database(
            engine,
            audit_key=ring.audit_key,
            audit_alg="hmac-sm3" if cipher == "sm4-gcm" else "hmac-sha256",
        )
        with db.session() as s:  # under the profile's seal (HMAC-SM3 for SM4)
            for i in range(3):
                audit.record(s, None, "test.profile", username="cli", details={"i": i})
        audit.seal_all(db.session, ring.audit_key)
        yield engine, ring
    finally:
        engine.dispose()
        if backend == "postgresql":
            drop_pg_database(url)


def _everything(engine: Engine) -> dict[str, list[Any]]:
    """Every row of every table the database has at its revision."""
    with engine.connect() as conn:
        names = inspect(conn).get_table_names()
        return {
            n: [tuple(r) for r in conn.execute(text(f'SELECT * FROM "{n}" ORDER BY 1'))]  # noqa: S608
            for n in names
        }


def _refused(engine: Engine, revision: str, match: str) -> None:
    before, at = _everything(engine), _revision(engine)
    with pytest.raises(CommandError, match=match) as caught:
        _downgrade(engine, revision)
    assert "\n" not in str(caught.value)
    assert _revision(engine) == at
    assert _everything(engine) == before


def _chain_intact(engine: Engine, ring: KeyRing) -> int:
    with Session(engine) as s:
        checked, broken = audit.verify_chain(s, ring.audit_key)
    assert broken is None
    return checked


class TestRoundTrip:
    def test_down_to_0006_and_up_keeps_every_row(self, populated: tuple[Engine, KeyRing]) -> None:
        engine, ring = populated
        # key_fingerprint: recorded again at the next start; audit_event loses uid and mac,
        # which the older schema has no column for (its rows are all kept and still verify).
        before = _kept(engine, {"key_fingerprint", "audit_event"})
        events = _chain_intact(engine, ring)
        _downgrade(engine, "0006")
        assert _revision(engine) == "0006"
        schema.upgrade(engine)
        assert _kept(engine, {"key_fingerprint", "audit_event"}) == before
        assert _chain_intact(engine, ring) == events

    def test_down_to_0002_and_up_once_nothing_is_lost(
        self, populated: tuple[Engine, KeyRing]
    ) -> None:
        engine, ring = populated
        with Session(engine) as s, s.begin():
            # What the older schemas cannot hold, taken out first (the refusals say so).
            s.execute(delete(SubjectRequest))
            s.execute(delete(PrivacyRelease))
            s.execute(delete(ExportRequest))
            s.execute(delete(SecurityAlert))
            s.execute(update(User).where(User.role == "security_officer").values(role="auditor"))
            s.execute(update(User).values(suspended_at=None, totp_secret_enc=None))
            s.execute(text("UPDATE member SET left_at = NULL, anonymised_at = NULL"))
        sm3 = ring.current_key.cipher == "sm4-gcm"
        target = "0002" if sm3 else "0001"
        skip = {"key_fingerprint", "audit_event", "access_counter", "app_user"}
        before = _kept(engine, skip)
        with engine.connect() as conn:
            users = conn.execute(text("SELECT id, username, role FROM app_user ORDER BY id")).all()
        _downgrade(engine, target)
        assert _revision(engine) == target
        schema.upgrade(engine)
        assert _kept(engine, skip) == before
        with engine.connect() as conn:
            again = conn.execute(text("SELECT id, username, role FROM app_user ORDER BY id")).all()
        assert again == users
        _chain_intact(engine, ring)


class TestRefusals:
    def test_rights_requests_are_not_dropped_silently(
        self, populated: tuple[Engine, KeyRing]
    ) -> None:
        engine, _ = populated
        _downgrade(engine, "0006")
        _refused(engine, "0005", "PIPL rights requests would be deleted")

    def test_a_security_officer_stops_the_downgrade_below_0004(
        self, populated: tuple[Engine, KeyRing]
    ) -> None:
        engine, _ = populated
        with Session(engine) as s, s.begin():
            s.execute(delete(SubjectRequest))
            s.execute(delete(PrivacyRelease))
            s.execute(text("UPDATE member SET left_at = NULL, anonymised_at = NULL"))
        _downgrade(engine, "0004")
        _refused(engine, "0003", "role security_officer")

    def test_unsealed_events_are_not_deleted(self, populated: tuple[Engine, KeyRing]) -> None:
        engine, ring = populated
        db = Database(engine, audit_key=ring.audit_key)
        with db.session() as s:
            audit.record(s, None, "test.unsealed", username="cli")
        _downgrade(engine, "0007")
        _refused(engine, "0006", "not sealed yet: run `smartunion audit seal` first")
        with Session(engine) as s:
            assert s.scalar(select(func.count()).where(AuditEvent.seq.is_(None))) == 1

    def test_sm3_seals_stop_the_downgrade_below_0002(
        self, populated: tuple[Engine, KeyRing]
    ) -> None:
        engine, ring = populated
        if ring.current_key.cipher != "sm4-gcm":
            pytest.skip("the SM4 profile's case")
        with Session(engine) as s, s.begin():
            s.execute(delete(SubjectRequest))
            s.execute(delete(PrivacyRelease))
            s.execute(delete(ExportRequest))
            s.execute(delete(SecurityAlert))
            s.execute(update(User).where(User.role == "security_officer").values(role="auditor"))
            s.execute(update(User).values(suspended_at=None, totp_secret_enc=None))
            s.execute(text("UPDATE member SET left_at = NULL, anonymised_at = NULL"))
        _downgrade(engine, "0002")
        _refused(engine, "0001", "sealed with HMAC-SM3")


def test_alembic_uses_the_configured_database(tmp_path: Path) -> None:
    """`alembic` from the source folder works on the configured database (not a throwaway
    file), and refuses in one line."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMARTUNION_")}
    env["SMARTUNION_DATA_DIR"] = str(tmp_path / "var")
    smartunion = str(Path(sys.executable).with_name("smartunion"))
    alembic = str(Path(sys.executable).with_name("alembic"))
    for args in (["init"], ["users", "list"]):  # an audit event: the database holds data
        assert subprocess.run([smartunion, *args], env=env, capture_output=True).returncode == 0
    current = subprocess.run(
        [alembic, "current"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert current.returncode == 0, current.stderr
    assert "(head)" in current.stdout
    down = subprocess.run(
        [alembic, "downgrade", "base"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    said = down.stdout + down.stderr
    assert down.returncode != 0
    assert "FAILED: downgrade below 0007 refused" in said  # the users list event is unsealed
    assert "Traceback" not in said
    assert len(said.strip().splitlines()) == 1
    engine = make_engine(f"sqlite:///{tmp_path / 'var' / 'smartunion.db'}")
    try:
        assert (
            _revision(engine)
            == schema.ScriptDirectory.from_config(
                schema.alembic_config("sqlite://")
            ).get_current_head()
        )
    finally:
        engine.dispose()
