"""One clear line and a non-zero exit for bad input and a full disk (fresh interpreter, fresh
data folder each). The full-disk cases need a small tmpfs: they mount one (as root) or skip."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

SMARTUNION = str(Path(sys.executable).with_name("smartunion"))


def run(data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SMARTUNION_")}
    environ.update({"SMARTUNION_DATA_DIR": str(data_dir), "COLUMNS": "200", **env})
    return subprocess.run(
        [SMARTUNION, *args], env=environ, capture_output=True, text=True, timeout=300
    )


def one_line(r: subprocess.CompletedProcess[str], code: int = 1) -> str:
    assert r.returncode == code, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr + r.stdout
    text = r.stderr.strip()
    assert text.count("error:") == 1 or text.startswith("Usage"), text
    return " ".join(text.split())


@pytest.fixture
def installed(tmp_path: Path) -> Path:
    data = tmp_path / "var"
    assert run(data, "init").returncode == 0
    assert run(data, "generate", "--members", "30", "--seed", "2").returncode == 0
    return data


def _org(data: Path) -> str:
    return str(json.loads(run(data, "orgs", "list", "--json").stdout)[0]["code"])


def test_users_create_with_an_unknown_member_id(installed: Path) -> None:
    r = run(
        installed,
        "users",
        "create",
        "--username",
        "m1",
        "--role",
        "member",
        "--org",
        _org(installed),
        "--member-id",
        "999999999",
        SMARTUNION_PASSWORD="Gx7-long-and-unusual-93",
    )
    assert "no member with id 999999999" in one_line(r)


class TestMembersBound:
    def test_too_many_says_the_bound(self, tmp_path: Path) -> None:
        r = run(tmp_path, "generate", "--members", "2000000000")
        assert r.returncode == 2
        assert "2,000,000,000 is outside 1 to 10,000,000" in " ".join(r.stderr.split())
        assert not (tmp_path / "smartunion.db").exists()

    def test_scientific_notation_is_explained(self, tmp_path: Path) -> None:
        r = run(tmp_path, "generate", "--members", "1e23")
        assert r.returncode == 2
        assert "'1e23' is not a whole number" in " ".join(r.stderr.split())

    def test_help_says_the_bound(self, tmp_path: Path) -> None:
        r = run(tmp_path, "generate", "--help")
        assert "1 to 10,000,000" in " ".join(r.stdout.split())


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MB tmpfs at ``tmp_path/disk``, unmounted afterwards."""
    mount = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
    mount.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({r.stderr.strip() or 'not root'})")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(disk: Path) -> None:
    """Use up every free byte of the small disk."""
    with (disk / "filler").open("ab") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError:
            pass


def _members(data: Path) -> int:
    with sqlite3.connect(data / "smartunion.db") as conn:
        return int(conn.execute("SELECT count(*) FROM member").fetchone()[0])


class TestFullDisk:
    def test_generate(self, small_disk: Path) -> None:
        data = small_disk / "var"
        assert run(data, "init").returncode == 0
        message = one_line(run(data, "generate", "--members", "40000"))
        assert "no space left" in message
        (small_disk / "filler").unlink(missing_ok=True)
        assert _members(data) == 0  # all or nothing

    def test_backup_leaves_no_partial_file(self, installed: Path, small_disk: Path) -> None:
        _fill(small_disk)
        out = small_disk / "b.subak"
        message = one_line(run(installed, "backup", "--out", str(out)))
        assert "no space left" in message
        assert sorted(p.name for p in small_disk.iterdir()) == ["filler"]

    def test_audit_verify(self, small_disk: Path) -> None:
        data = small_disk / "var"
        assert run(data, "init").returncode == 0
        assert run(data, "generate", "--members", "30").returncode == 0
        assert run(data, "users", "list").returncode == 0
        _fill(small_disk)
        assert "no space left" in one_line(run(data, "audit", "verify"))
        (small_disk / "filler").unlink()
        assert run(data, "audit", "verify").returncode == 0  # nothing was left broken
