"""Audit checkpoints as an operator meets them: fresh interpreter, fresh data folder."""

from __future__ import annotations

import datetime as dt
import hmac
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, delete, func, select

from smartunion.security.keys import load_keyring
from smartunion.security.models import AuditEvent

SMARTUNION = str(Path(sys.executable).with_name("smartunion"))


def run(data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SMARTUNION_")}
    environ.update({"SMARTUNION_DATA_DIR": str(data_dir), "COLUMNS": "200", **env})
    return subprocess.run(
        [SMARTUNION, *args], env=environ, capture_output=True, text=True, timeout=300
    )


def ok(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 0, (r.stdout, r.stderr)
    return " ".join((r.stdout + r.stderr).split())


def broken(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    return " ".join((r.stdout + r.stderr).split())


def _lines(data: Path) -> list[dict[str, object]]:
    return [json.loads(x) for x in (data / "audit-checkpoints.jsonl").read_text().splitlines()]


def _cut_tail(data: Path, after_seq: int) -> None:
    engine = create_engine(f"sqlite:///{data / 'smartunion.db'}")
    with engine.begin() as conn:
        conn.execute(delete(AuditEvent).where(AuditEvent.seq > after_seq))
        conn.execute(delete(AuditEvent).where(AuditEvent.seq.is_(None)))
    engine.dispose()


def _head(data: Path) -> int:
    engine = create_engine(f"sqlite:///{data / 'smartunion.db'}")
    with engine.connect() as conn:
        seq = conn.scalar(select(func.max(AuditEvent.seq)))
    engine.dispose()
    return int(seq or 0)


@pytest.fixture
def installed(tmp_path: Path) -> Path:
    data = tmp_path / "var"
    out = ok(run(data, "init"))
    assert "audit checkpoints:" in out
    assert "(started)" in out
    ok(run(data, "generate", "--members", "40", "--seed", "5"))
    ok(run(data, "users", "list"))  # an audited read: the trail is not empty
    return data


def test_init_starts_the_file_and_verify_reports_the_latest(installed: Path) -> None:
    assert [line["kind"] for line in _lines(installed)] == ["start"]
    out = ok(run(installed, "audit", "verify"))
    assert "latest checkpoint: event 0, epoch 0, line 1" in out
    assert "min ago" in out
    lines = _lines(installed)
    assert [line["kind"] for line in lines] == ["start", "head"]
    assert lines[1]["event_id"] == _head(installed)
    assert "(started)" not in ok(run(installed, "init"))


def test_no_file_warns_on_a_young_trail_and_fails_on_an_old_one(installed: Path) -> None:
    (installed / "audit-checkpoints.jsonl").unlink()
    out = ok(run(installed, "audit", "verify"))
    assert "warning: no audit checkpoint yet" in out
    assert not (installed / "audit-checkpoints.jsonl").exists()  # verify never starts one
    time.sleep(1.0)
    out = broken(
        run(installed, "audit", "verify", SMARTUNION_AUDIT_CHECKPOINT_MAX_AGE_HOURS="0.0002")
    )
    assert "no audit checkpoint at" in out
    assert "smartunion audit checkpoint" in out


def _age(data: Path, hours: float) -> None:
    """Rewrite the file as if written ``hours`` earlier (signed with the installation's key)."""
    from smartunion.security import checkpoints as cps

    key = load_keyring(data / "secret.key").audit_key
    path = data / "audit-checkpoints.jsonl"
    out, prev = [], cps.GENESIS
    for raw in path.read_text().splitlines():
        line = json.loads(raw)
        line.pop("mac")
        at = dt.datetime.fromisoformat(line["at"]) - dt.timedelta(hours=hours)
        line.update(at=at.isoformat(), prev=prev)
        line["mac"] = hmac.new(cps.line_key(key), cps._dump(line).encode(), "sha256").hexdigest()
        out.append(cps._dump(line))
        prev = cps._sha(out[-1])
    path.write_text("".join(f"{x}\n" for x in out))


def test_a_stale_checkpoint_fails_until_a_new_one_is_written(installed: Path) -> None:
    ok(run(installed, "audit", "verify"))
    ok(run(installed, "audit", "verify"))
    _age(installed, 30)
    out = broken(run(installed, "audit", "verify"))
    assert "30.0 h old" in out
    assert "SMARTUNION_AUDIT_CHECKPOINT_MAX_AGE_HOURS=25" in out
    assert "last lines were removed" in out
    ok(run(installed, "audit", "verify", SMARTUNION_AUDIT_CHECKPOINT_MAX_AGE_HOURS="48"))
    assert "checkpoint at event" in ok(run(installed, "audit", "checkpoint"))
    ok(run(installed, "audit", "verify"))


def test_the_checkpoint_file_can_live_elsewhere(installed: Path, tmp_path: Path) -> None:
    other = tmp_path / "mnt" / "audit" / "cp.jsonl"
    env = {"SMARTUNION_AUDIT_CHECKPOINT_PATH": str(other)}
    out = ok(run(installed, "audit", "checkpoint", **env))
    assert str(other) in out
    assert other.exists()
    assert f"line 1 of {other}" in ok(run(installed, "audit", "verify", **env))


def test_a_damaged_file_is_exit_2_in_one_line(installed: Path) -> None:
    ok(run(installed, "audit", "verify"))
    path = installed / "audit-checkpoints.jsonl"
    path.write_text(path.read_text().replace('"kind":"head"', '"kind":"start"'))
    out = broken(run(installed, "audit", "verify"))
    assert "audit checkpoint file damaged" in out
    assert ":2:" in out


class TestRestoreInPlace:
    @pytest.fixture
    def restored(self, installed: Path, tmp_path: Path) -> tuple[Path, int, str]:
        """A backup, more events checkpointed after it, then the backup restored in place."""
        backup = tmp_path / "before.subak"
        ok(run(installed, "audit", "verify"))  # seals: the backup's head is this one
        base = _head(installed)
        ok(run(installed, "backup", "--out", str(backup)))
        for _ in range(3):
            ok(run(installed, "users", "list"))
        ok(run(installed, "audit", "verify"))
        checkpointed = _head(installed)
        assert checkpointed > base
        out = ok(run(installed, "restore", str(backup), "--force"))
        return installed, base, out

    def test_a_legitimate_restore_verifies(self, restored: tuple[Path, int, str]) -> None:
        data, base, out = restored
        assert f"the trail continues from event {base}" in out
        assert f"events {base + 1}–" in out
        assert "discarded" in out
        line = _lines(data)[-1]
        assert line["kind"] == "restore"
        assert line["epoch"] == 1
        verified = ok(run(data, "audit", "verify"))
        assert "audit trail intact" in verified
        assert "epoch 1: restore of" in verified

    def test_a_restore_line_lost_in_a_crash_is_written_by_the_next_verify(
        self, restored: tuple[Path, int, str]
    ) -> None:
        data, base, _ = restored
        path = data / "audit-checkpoints.jsonl"
        lines = path.read_text().splitlines(keepends=True)
        path.write_text("".join(lines[:-1]))  # the restore committed; its line never landed
        verified = ok(run(data, "audit", "verify"))
        assert f"continues from event {base}" in verified
        assert _lines(data)[-2]["kind"] == "restore"

    def test_a_truncation_after_a_restore_still_fails(
        self, restored: tuple[Path, int, str]
    ) -> None:
        data, _, _ = restored
        ok(run(data, "users", "list"))
        ok(run(data, "audit", "verify"))
        _cut_tail(data, _head(data) - 1)
        assert "truncated" in broken(run(data, "audit", "verify"))

    def test_cutting_the_trail_back_past_the_restore_fails(
        self, restored: tuple[Path, int, str]
    ) -> None:
        data, base, _ = restored
        _cut_tail(data, base)  # the backup.restore event and everything after it
        assert "truncated" in broken(run(data, "audit", "verify"))


def test_a_truncation_without_a_restore_fails(installed: Path) -> None:
    ok(run(installed, "users", "list"))
    ok(run(installed, "audit", "verify"))
    _cut_tail(installed, _head(installed) - 1)
    assert "truncated" in broken(run(installed, "audit", "verify"))
