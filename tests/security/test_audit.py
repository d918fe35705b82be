"""The audit chain: intact trails verify; changed, deleted, inserted or truncated ones do not."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from smartunion import schema
from smartunion.cli import app
from smartunion.config import get_settings
from smartunion.db import Database, make_engine, run_deferred
from smartunion.security import audit, checkpoints
from smartunion.security.crypto import FieldCrypto
from smartunion.security.keys import load_keyring
from smartunion.security.models import AuditEvent
from tests.factories import World, build_world

runner = CliRunner()


def _add_events(session: Session, n: int, *, seal: bool = True) -> None:
    for i in range(n):
        audit.record(session, None, "test.event", object_id=i, details={"i": i})
    run_deferred(session)
    if seal:
        audit.seal_pending(session, session.info["audit_key"])


def _by_seq(session: Session, seq: int) -> AuditEvent:
    event = session.scalar(select(AuditEvent).where(AuditEvent.seq == seq))
    assert event is not None
    return event


def _unsealed(session: Session) -> list[AuditEvent]:
    return list(
        session.scalars(select(AuditEvent).where(AuditEvent.seq.is_(None)).order_by(AuditEvent.id))
    )


class TestChain:
    def test_intact_chain_verifies(
        self, session: Session, world: World, crypto: FieldCrypto
    ) -> None:
        _add_events(session, 5)
        checked, broken = audit.verify_chain(session, crypto.ring.audit_key)
        assert broken is None
        assert checked == session.scalar(select(func.count(AuditEvent.id)))

    def test_changed_event_is_named(self, session: Session, crypto: FieldCrypto) -> None:
        _add_events(session, 6)
        target = _by_seq(session, 3)
        session.execute(
            update(AuditEvent).where(AuditEvent.id == target.id).values(details={"i": 99})
        )
        _, broken = audit.verify_chain(session, crypto.ring.audit_key)
        assert broken is not None
        assert broken.event_id == 3

    def test_recomputed_chain_without_key_fails(
        self, session: Session, crypto: FieldCrypto
    ) -> None:
        """An insider who edits an event and re-seals it with a guessed key is caught."""
        _add_events(session, 4)
        target = _by_seq(session, 2)
        target.details = {"i": "forged"}
        target.hash = audit.compute_hash(b"not-the-key", str(target.prev_hash), target)
        session.flush()
        _, broken = audit.verify_chain(session, crypto.ring.audit_key)
        assert broken is not None
        assert broken.event_id == 2

    def test_deleted_event_is_named(self, session: Session, crypto: FieldCrypto) -> None:
        _add_events(session, 6)
        session.execute(delete(AuditEvent).where(AuditEvent.id == _by_seq(session, 4).id))
        _, broken = audit.verify_chain(session, crypto.ring.audit_key)
        assert broken is not None
        assert broken.event_id == 4
        assert "missing" in broken.reason

    def test_inserted_event_is_caught(self, session: Session, crypto: FieldCrypto) -> None:
        _add_events(session, 3)
        # Make room after event 2 and slip a forged event in, linked to its predecessor.
        third = _by_seq(session, 3)
        second = _by_seq(session, 2)
        session.execute(update(AuditEvent).where(AuditEvent.id == third.id).values(seq=4))
        forged = AuditEvent(
            occurred_at=second.occurred_at,
            action="auth.login",
            details={},
            alg="hmac-sha256",
            seq=3,
            prev_hash=second.hash,
            hash="f" * 64,
        )
        session.add(forged)
        session.flush()
        _, broken = audit.verify_chain(session, crypto.ring.audit_key)
        assert broken is not None
        assert broken.event_id == 3

    def test_reordered_events_are_caught(self, session: Session, crypto: FieldCrypto) -> None:
        _add_events(session, 4)
        two, three = _by_seq(session, 2), _by_seq(session, 3)
        session.execute(update(AuditEvent).where(AuditEvent.id == two.id).values(seq=-2))
        session.execute(update(AuditEvent).where(AuditEvent.id == three.id).values(seq=2))
        session.execute(update(AuditEvent).where(AuditEvent.id == two.id).values(seq=3))
        _, broken = audit.verify_chain(session, crypto.ring.audit_key)
        assert broken is not None
        assert broken.event_id == 2

    def test_truncated_tail_is_caught_by_checkpoint(
        self, session: Session, crypto: FieldCrypto, tmp_path: Path
    ) -> None:
        key = crypto.ring.audit_key
        _add_events(session, 5)
        path = tmp_path / "cp.jsonl"
        cp = audit.append_checkpoint(path, key, session)
        assert cp is not None
        session.execute(delete(AuditEvent).where(AuditEvent.seq >= cp.event_id - 1))
        _, broken = audit.verify_chain(session, key, checkpoints=audit.read_checkpoints(path, key))
        assert broken is not None
        assert broken.event_id == cp.event_id
        assert "truncated" in broken.reason

    def test_forged_checkpoint_line_is_refused(
        self, session: Session, crypto: FieldCrypto, tmp_path: Path
    ) -> None:
        path = tmp_path / "cp.jsonl"
        path.write_text(json.dumps({"event_id": 1, "hash": "0" * 64, "mac": "0" * 64}) + "\n")
        with pytest.raises(ValueError, match="damaged or forged"):
            audit.read_checkpoints(path, crypto.ring.audit_key)

    def test_sm3_profile_chain(self, db: Database, crypto: FieldCrypto) -> None:
        db.audit_alg = "hmac-sm3"
        db.sessionmaker = db.make_sessionmaker(
            db.sessionmaker.kw["bind"], join_transaction_mode="create_savepoint"
        )
        with db.session() as s:
            _add_events(s, 3)
            assert {e.alg for e in s.scalars(select(AuditEvent))} == {"hmac-sm3"}
            _, broken = audit.verify_chain(s, crypto.ring.audit_key)
            assert broken is None


class TestAppendThenSeal:
    """Events are appended with their own seal and chained after commit."""

    def test_a_rolled_back_transaction_leaves_no_event(self, db: Database) -> None:
        def fail_after_recording() -> None:
            with db.session() as s:
                audit.record(s, None, "test.rolled_back")
                raise RuntimeError

        with pytest.raises(RuntimeError):
            fail_after_recording()
        with db.session() as s:
            assert (
                s.scalar(select(AuditEvent).where(AuditEvent.action == "test.rolled_back")) is None
            )

    def test_a_committed_event_waits_unsealed_and_verifies(
        self, session: Session, crypto: FieldCrypto
    ) -> None:
        _add_events(session, 3, seal=False)
        result = audit.verify(session, crypto.ring.audit_key)
        assert (result.sealed, result.unsealed, result.broken) == (0, 3, None)
        assert result.oldest_unsealed is not None
        assert audit.seal_pending(session, crypto.ring.audit_key) == 3
        result = audit.verify(session, crypto.ring.audit_key)
        assert (result.sealed, result.unsealed, result.broken) == (3, 0, None)

    def test_chain_order_is_commit_order_not_id_order(
        self, session: Session, crypto: FieldCrypto
    ) -> None:
        """A lower id that commits later is chained after the higher one, not lost."""
        key = crypto.ring.audit_key
        _add_events(session, 2)
        _add_events(session, 1, seal=False)
        (late,) = _unsealed(session)
        # Simulate the out-of-order commit: this event's id is below the chained ones.
        low = session.scalar(select(func.min(AuditEvent.id))) - 1000
        session.execute(update(AuditEvent).where(AuditEvent.id == late.id).values(id=low))
        assert audit.seal_pending(session, key) == 1
        assert _by_seq(session, 3).id == low
        assert audit.verify(session, key).broken is None

    def test_changed_unsealed_event_fails_its_own_seal(
        self, session: Session, crypto: FieldCrypto
    ) -> None:
        _add_events(session, 2, seal=False)
        first = _unsealed(session)[0]
        session.execute(
            update(AuditEvent).where(AuditEvent.id == first.id).values(outcome="denied")
        )
        result = audit.verify(session, crypto.ring.audit_key)
        assert result.broken is not None
        assert result.broken.event_id == first.id
        assert "own seal" in result.broken.reason
        # The sealer will not chain it: the chain never vouches for a forged event.
        assert audit.seal_pending(session, crypto.ring.audit_key) == 1
        assert audit.verify(session, crypto.ring.audit_key).broken is not None

    def test_forged_unsealed_event_is_caught(self, session: Session, crypto: FieldCrypto) -> None:
        _add_events(session, 1)
        session.add(
            AuditEvent(
                occurred_at=_by_seq(session, 1).occurred_at,
                action="member.read",
                details={},
                alg="hmac-sha256",
                uid="0" * 32,
                mac="f" * 64,
            )
        )
        session.flush()
        result = audit.verify(session, crypto.ring.audit_key)
        assert result.broken is not None
        assert "own seal" in result.broken.reason

    def test_copied_unsealed_event_is_caught(self, session: Session, crypto: FieldCrypto) -> None:
        _add_events(session, 1)
        original = _by_seq(session, 1)
        copy = {
            c.name: getattr(original, c.key)
            for c in AuditEvent.__table__.columns
            if c.name not in {"id", "seq", "prev_hash", "hash", "uid"}
        }
        # The copy needs a uid of its own (unique), so it cannot carry a valid seal…
        session.add(AuditEvent(**copy, uid="1" * 32))
        session.flush()
        result = audit.verify(session, crypto.ring.audit_key)
        assert result.broken is not None

    def test_a_crash_between_append_and_seal_loses_nothing(
        self, tmp_path: Path, crypto: FieldCrypto
    ) -> None:
        """A process appends and commits events, then dies (kill -9) before any sealer ran;
        the next process finds every event, each verifies, and the sealer chains them."""
        url = f"sqlite:///{tmp_path / 'crash.db'}"
        engine = make_engine(url)
        schema.upgrade(engine)
        engine.dispose()
        key_file = tmp_path / "audit.key"
        key_file.write_bytes(crypto.ring.audit_key)
        script = f"""
import os, pathlib
import smartunion.models
from smartunion import schema
from smartunion.db import Database, make_engine, run_deferred
from smartunion.security import audit, checkpoints
db = Database.from_url({url!r}, audit_key=pathlib.Path({str(key_file)!r}).read_bytes())
for i in range(25):
    with db.session() as s:
        audit.record(s, None, "test.before_crash", object_id=i)
os.kill(os.getpid(), 9)
"""
        proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
        assert proc.returncode == -9, proc.stderr.decode()
        db = Database.from_url(url, audit_key=crypto.ring.audit_key)
        with db.session() as s:
            result = audit.verify(s, crypto.ring.audit_key)
            assert (result.sealed, result.unsealed, result.broken) == (0, 25, None)
        assert audit.seal_all(db.session, crypto.ring.audit_key) == 25
        with db.session() as s:
            result = audit.verify(s, crypto.ring.audit_key)
            assert (result.sealed, result.unsealed, result.broken) == (25, 0, None)
            ids = [e.object_id for e in s.scalars(select(AuditEvent).order_by(AuditEvent.seq))]
        assert ids == [str(i) for i in range(25)]
        db.engine.dispose()

    def test_personal_reads_are_audited_without_plaintext(
        self, client: TestClient, world: World, db: Database
    ) -> None:
        client.get(f"/api/v1/members/{world.member_a.id}", headers=world.auth("staff_a"))
        client.post(
            "/api/v1/members/lookup", json={"id_number": world.id_a}, headers=world.auth("staff_a")
        )
        client.get("/api/v1/members", params={"q": "张"}, headers=world.auth("staff_a"))
        with db.session() as s:
            events = s.scalars(select(AuditEvent).where(AuditEvent.actor_username == "staff_a"))
            by_action = {e.action: e for e in events}
        assert by_action["member.read"].object_id == str(world.member_a.id)
        assert by_action["member.lookup"].details["ids"] == [world.member_a.id]
        assert by_action["member.list"].details["ids"] == [world.member_a.id]
        for event in by_action.values():
            assert world.id_a not in repr(event.details)
            assert world.phone_a not in repr(event.details)


class TestCli:
    @pytest.fixture
    def data_dir(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
        monkeypatch.setenv("SMARTUNION_DATA_DIR", str(tmp_path))
        monkeypatch.delenv("SMARTUNION_DATABASE_URL", raising=False)
        get_settings.cache_clear()
        assert runner.invoke(app, ["init"]).exit_code == 0
        crypto = FieldCrypto(load_keyring(tmp_path / "secret.key"))
        db = Database.from_url(
            f"sqlite:///{tmp_path / 'smartunion.db'}", audit_key=crypto.ring.audit_key
        )
        with db.session() as s:
            build_world(s, crypto)
            _add_events(s, 5)
        db.engine.dispose()
        yield tmp_path
        get_settings.cache_clear()

    def _db(self, data_dir: Path) -> Database:
        return Database.from_url(f"sqlite:///{data_dir / 'smartunion.db'}")

    def test_verify_ok_then_tamper(self, data_dir: Path) -> None:
        ok = runner.invoke(app, ["audit", "verify"])
        assert ok.exit_code == 0, ok.output
        assert "intact" in ok.output
        db = self._db(data_dir)
        with db.engine.begin() as conn:
            conn.execute(update(AuditEvent).where(AuditEvent.seq == 2).values(outcome="ok!"))
        db.engine.dispose()
        bad = runner.invoke(app, ["audit", "verify"])
        assert bad.exit_code == 2
        assert "event 2" in bad.output

    def test_tail_deletion_after_a_verify(self, data_dir: Path) -> None:
        assert runner.invoke(app, ["audit", "verify"]).exit_code == 0
        db = self._db(data_dir)
        with db.engine.begin() as conn:
            last = conn.scalar(select(func.max(AuditEvent.seq)))
            conn.execute(delete(AuditEvent).where(AuditEvent.seq == last))
        db.engine.dispose()
        bad = runner.invoke(app, ["audit", "verify"])
        assert bad.exit_code == 2
        assert "truncated" in bad.output


def test_login_events_belong_to_the_users_organisation(
    client: TestClient, world: World, db: Database
) -> None:
    """Auditors search by organisation: a log-in must not be a branch-less system event."""
    client.post("/api/v1/auth/token", data={"username": "staff_b", "password": "wrong-pass"})
    with db.session() as s:
        event = s.scalar(
            select(AuditEvent).where(
                AuditEvent.action == "auth.login", AuditEvent.actor_username == "staff_b"
            )
        )
        assert event is not None
        assert event.actor_org_id == world.city_b.id


def test_listing_rights_requests_is_audited(client: TestClient, world: World, db: Database) -> None:
    client.get("/api/v1/privacy/requests", headers=world.auth("staff_a"))
    with db.session() as s:
        event = s.scalar(select(AuditEvent).where(AuditEvent.action == "privacy.requests_view"))
        assert event is not None
        assert event.details["ids"] == [world.request_a_id]


class TestCheckpointFile:
    """A full disk or a crash mid-append must not break every later verify."""

    @pytest.fixture
    def checkpointed(
        self, session: Session, crypto: FieldCrypto, tmp_path: Path
    ) -> tuple[bytes, Path, audit.Checkpoint]:
        """Two events and a checkpoint file holding one line."""
        key = crypto.ring.audit_key
        path = tmp_path / "cp.jsonl"
        _add_events(session, 2)
        first = audit.append_checkpoint(path, key, session)
        assert first is not None
        return key, path, first

    def test_a_torn_last_line_is_dropped_and_the_next_append_is_clean(
        self, session: Session, checkpointed: tuple[bytes, Path, audit.Checkpoint]
    ) -> None:
        key, path, first = checkpointed
        with path.open("a", encoding="utf-8") as fh:
            fh.write('{"event_id": 3, "hash": "ab')  # what a full disk left of an append
        assert audit.read_checkpoints(path, key) == [first]
        _add_events(session, 2)
        second = audit.append_checkpoint(path, key, session)
        assert audit.read_checkpoints(path, key) == [first, second]
        assert path.read_text(encoding="utf-8").count("\n") == 2

    def test_a_failed_write_leaves_the_file_as_it_was(
        self,
        session: Session,
        checkpointed: tuple[bytes, Path, audit.Checkpoint],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        key, path, _ = checkpointed
        before = path.read_bytes()

        def full_disk(fd: int) -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(checkpoints.os, "fsync", full_disk)
        with pytest.raises(OSError, match="No space"):
            audit.append_checkpoint(path, key, session)
        assert path.read_bytes() == before
        assert list(path.parent.iterdir()) == [path]

    def test_a_changed_whole_line_is_still_an_error(
        self, checkpointed: tuple[bytes, Path, audit.Checkpoint]
    ) -> None:
        key, path, _ = checkpointed
        path.write_text(path.read_text().replace('"hash":"', '"hash":"0'), encoding="utf-8")
        with pytest.raises(ValueError, match="damaged or forged"):
            audit.read_checkpoints(path, key)
