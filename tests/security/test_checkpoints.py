"""Audit checkpoints: chained and signed lines, written automatically, fresh or failing, and
reconciled after a restore in place (security/checkpoints.py)."""

from __future__ import annotations

import datetime as dt
import json
import socket
import threading
from pathlib import Path

import pytest
from sqlalchemy import delete
from sqlalchemy.orm import Session

from smartunion.config import Settings
from smartunion.db import Database, run_deferred
from smartunion.security import audit
from smartunion.security import checkpoints as cps
from smartunion.security.crypto import FieldCrypto
from smartunion.security.keys import KeyRing
from smartunion.security.models import AuditEvent
from smartunion.security.sealer import AuditSealer


def _events(session: Session, n: int) -> None:
    for i in range(n):
        audit.record(session, None, "test.event", object_id=i)
    run_deferred(session)
    audit.seal_pending(session, session.info["audit_key"])


@pytest.fixture
def key(crypto: FieldCrypto) -> bytes:
    return crypto.ring.audit_key


@pytest.fixture
def three_lines(session: Session, key: bytes, tmp_path: Path) -> Path:
    """A file begun at an empty trail, then two checkpoints two events apart."""
    path = tmp_path / "cp.jsonl"
    cps.append(path, key, session, create=True)
    for _ in range(2):
        _events(session, 2)
        cps.append(path, key, session)
    return path


class TestChainedLines:
    def test_lines_link_and_carry_a_mac(self, three_lines: Path, key: bytes) -> None:
        log = cps.read_log(three_lines, key)
        assert [e.kind for e in log.entries] == ["start", "head", "head"]
        assert [e.n for e in log.entries] == [1, 2, 3]
        assert [c.event_id for c in log.checkpoints] == [2, 4]
        first, second = (json.loads(x) for x in three_lines.read_text().splitlines()[:2])
        assert first["prev"] == cps.GENESIS
        assert second["prev"] == cps._sha(three_lines.read_text().splitlines()[0])
        assert len(second["mac"]) == 64

    def test_a_removed_middle_line_breaks_the_file_chain(
        self, three_lines: Path, key: bytes
    ) -> None:
        lines = three_lines.read_text().splitlines(keepends=True)
        three_lines.write_text(lines[0] + lines[2])
        with pytest.raises(cps.CheckpointDamaged, match=r":2: .*removed, inserted or moved"):
            cps.read_log(three_lines, key)

    def test_swapped_lines_break_it(self, three_lines: Path, key: bytes) -> None:
        lines = three_lines.read_text().splitlines(keepends=True)
        three_lines.write_text(lines[0] + lines[2] + lines[1])
        with pytest.raises(cps.CheckpointDamaged):
            cps.read_log(three_lines, key)

    def test_a_line_signed_with_another_key_is_forged(
        self, three_lines: Path, key: bytes, session: Session, tmp_path: Path
    ) -> None:
        other = tmp_path / "other.jsonl"
        cps.append(other, KeyRing.generate().audit_key, session, create=True)
        three_lines.write_text(three_lines.read_text() + other.read_text())
        with pytest.raises(cps.CheckpointDamaged, match=":4: checkpoint line is damaged"):
            cps.read_log(three_lines, key)

    def test_a_writer_refuses_to_chain_onto_a_forged_last_line(
        self, three_lines: Path, key: bytes, session: Session
    ) -> None:
        text = three_lines.read_text()
        three_lines.write_text(text[:-80] + "0" * 79 + "\n")
        with pytest.raises(cps.CheckpointDamaged):
            cps.append(three_lines, key, session)

    def test_format_1_lines_are_read_and_chained_onto(
        self, session: Session, key: bytes, tmp_path: Path
    ) -> None:
        _events(session, 2)
        seq, head = audit.chain_head(session)
        old = {"event_id": seq, "hash": head, "at": "2026-11-01T00:00:00+00:00"}
        old["mac"] = cps._legacy_mac(key, seq, head)
        path = tmp_path / "cp.jsonl"
        path.write_text(json.dumps(old) + "\n")
        _events(session, 1)
        entry = cps.append(path, key, session)
        assert entry is not None
        assert entry.n == 2
        assert [c.event_id for c in cps.read_checkpoints(path, key)] == [seq, seq + 1]

    def test_the_trail_is_checked_against_every_line(
        self, three_lines: Path, key: bytes, session: Session
    ) -> None:
        session.execute(delete(AuditEvent).where(AuditEvent.seq == 4))
        _, broken = audit.verify_chain(
            session, key, checkpoints=cps.read_checkpoints(three_lines, key)
        )
        assert broken is not None
        assert broken.event_id == 4
        assert "truncated" in broken.reason


class TestFreshness:
    def _log(self, at: dt.datetime) -> cps.CheckpointLog:
        entry = cps.Entry(1, "head", 0, 5, "a" * 64, at, "{}")
        return cps.CheckpointLog([entry], [cps.Checkpoint(5, "a" * 64)], [])

    def test_a_recent_checkpoint_is_reported_with_its_age(self, tmp_path: Path) -> None:
        now = dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC)
        got = cps.freshness(
            self._log(now - dt.timedelta(minutes=7)),
            tmp_path,
            trail_began=now,
            max_age_hours=25,
            now=now,
        )
        assert got.level == "ok"
        assert "event 5" in got.message
        assert "7 min ago" in got.message

    def test_an_old_checkpoint_fails(self, tmp_path: Path) -> None:
        now = dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC)
        got = cps.freshness(
            self._log(now - dt.timedelta(hours=30)),
            tmp_path,
            trail_began=now,
            max_age_hours=25,
            now=now,
        )
        assert got.level == "fail"
        assert "30.0 h old" in got.message

    def test_no_limit_no_failure(self, tmp_path: Path) -> None:
        now = dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC)
        got = cps.freshness(
            self._log(now - dt.timedelta(days=300)),
            tmp_path,
            trail_began=now,
            max_age_hours=0,
            now=now,
        )
        assert got.level == "ok"

    def test_none_on_a_young_trail_warns_on_an_old_one_fails(self, tmp_path: Path) -> None:
        now = dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC)
        empty = cps.CheckpointLog([], [], [])
        young = cps.freshness(
            empty, tmp_path, trail_began=now - dt.timedelta(hours=1), max_age_hours=25, now=now
        )
        old = cps.freshness(
            empty, tmp_path, trail_began=now - dt.timedelta(days=3), max_age_hours=25, now=now
        )
        assert young.level == "warn"
        assert "cannot see a removed tail" in young.message
        assert old.level == "fail"


class TestAutomaticWriter:
    def _writer(self, path: Path, key: bytes, **kw: float) -> cps.Checkpointer:
        args: dict[str, float] = {"every_events": 3, "every_seconds": 0, "heartbeat_seconds": 0}
        args.update(kw)
        return cps.Checkpointer(path, key, **args)  # type: ignore[arg-type]

    def test_every_n_events(self, session: Session, key: bytes, tmp_path: Path) -> None:
        path = tmp_path / "cp.jsonl"
        cps.append(path, key, session, create=True)
        writer = self._writer(path, key)
        _events(session, 2)
        assert writer.tick(session, now=1) is None  # 2 new < 3
        _events(session, 1)
        assert writer.tick(session, now=1.5) is None  # at most one look a second
        written = writer.tick(session, now=2)
        assert written is not None
        assert written.event_id == 3

    def test_every_m_minutes_when_there_are_new_events(
        self, session: Session, key: bytes, tmp_path: Path
    ) -> None:
        path = tmp_path / "cp.jsonl"
        cps.append(path, key, session, create=True)
        writer = self._writer(path, key, every_events=0, every_seconds=60)
        _events(session, 1)
        assert writer.tick(session, now=1) is None
        later = cps.Entry(1, "start", 0, 0, cps.GENESIS, cps.utcnow() - dt.timedelta(minutes=2), "")
        assert writer.due(later, 1) is True
        assert writer.due(later, 0) is False  # nothing new: no line, unless a heartbeat

    def test_an_idle_trail_gets_a_heartbeat(self, key: bytes, tmp_path: Path) -> None:
        writer = self._writer(tmp_path / "x", key, heartbeat_seconds=3600)
        idle = cps.Entry(1, "head", 0, 9, "a" * 64, cps.utcnow() - dt.timedelta(hours=2), "")
        assert writer.due(idle, 9) is True
        fresh = cps.Entry(1, "head", 0, 9, "a" * 64, cps.utcnow(), "")
        assert writer.due(fresh, 9) is False

    def test_the_server_never_starts_a_file(
        self, session: Session, key: bytes, tmp_path: Path
    ) -> None:
        path = tmp_path / "cp.jsonl"
        _events(session, 5)
        assert self._writer(path, key).tick(session, now=1) is None
        assert not path.exists()

    def test_the_sealer_writes_them(
        self, db: Database, session: Session, key: bytes, tmp_path: Path
    ) -> None:
        path = tmp_path / "cp.jsonl"
        cps.append(path, key, session, create=True)
        for i in range(4):
            audit.record(session, None, "test.event", object_id=i)
        run_deferred(session)
        sealer = AuditSealer(db, key, interval=1, checkpointer=self._writer(path, key))
        sealer.tick()
        assert [c.event_id for c in cps.read_checkpoints(path, key)] == [4]

    def test_settings_choose_file_and_rules(self, tmp_path: Path, key: bytes) -> None:
        settings = Settings(
            data_dir=tmp_path,
            audit_checkpoint_path=tmp_path / "elsewhere" / "cp.jsonl",
            audit_checkpoint_every_events=50,
            audit_checkpoint_every_minutes=2,
            audit_checkpoint_max_age_hours=10,
        )
        writer = cps.checkpointer_for(settings, key)
        assert writer.path == tmp_path / "elsewhere" / "cp.jsonl"
        assert (writer.every_events, writer.every_seconds) == (50, 120)
        assert writer.heartbeat_seconds == 5 * 3600

    def test_parallel_writers_keep_the_chain(
        self, key: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Several server processes append to one file: each takes the file's lock."""
        path = tmp_path / "cp.jsonl"
        heads = iter(range(1, 10_000))
        lock = threading.Lock()

        def head(_: object) -> tuple[int, str]:
            with lock:
                return next(heads), "b" * 64

        monkeypatch.setattr(cps, "_head", head)
        cps.append(path, key, None, create=True)  # type: ignore[arg-type]

        def write() -> None:
            for _ in range(25):
                cps.append(path, key, None)  # type: ignore[arg-type]

        threads = [threading.Thread(target=write) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        log = cps.read_log(path, key)
        assert len(log.entries) == 101
        assert [e.n for e in log.entries] == list(range(1, 102))


def test_each_line_also_goes_to_syslog(session: Session, key: bytes, tmp_path: Path) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    port = sock.getsockname()[1]
    try:
        logger = cps.syslog_logger(f"127.0.0.1:{port}")
        _events(session, 1)
        entry = cps.append(tmp_path / "cp.jsonl", key, session, create=True, syslog=logger)
        assert entry is not None
        message = sock.recv(65536).decode()
    finally:
        sock.close()
    assert "smartunion-audit-checkpoint:" in message
    assert entry.raw in message
