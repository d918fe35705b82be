"""The key file and the database belong together: commands as a user runs them (a fresh
interpreter, a fresh data folder), never a silently created replacement key."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from smartunion.security.models import KeyFingerprint

SMARTUNION = str(Path(sys.executable).with_name("smartunion"))


def run(data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SMARTUNION_") or k in env}
    environ.update({"SMARTUNION_DATA_DIR": str(data_dir), "COLUMNS": "200", **env})
    return subprocess.run(
        [SMARTUNION, *args], env=environ, capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def installed(tmp_path: Path) -> Path:
    data = tmp_path / "var"
    r = run(data, "init")
    assert r.returncode == 0, r.stderr
    r = run(data, "generate", "--members", "60", "--seed", "3")
    assert r.returncode == 0, r.stderr
    return data


def _one_line_error(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    return " ".join(r.stderr.split())


def test_a_missing_key_file_stops_every_command_and_creates_nothing(installed: Path) -> None:
    (installed / "secret.key").rename(installed / "kept.key")
    for args in (["users", "list"], ["orgs", "list"], ["audit", "verify"], ["serve"]):
        message = _one_line_error(run(installed, *args))
        assert "does not exist" in message, args
        assert not (installed / "secret.key").exists(), args
    message = _one_line_error(run(installed, "init"))
    assert "holds data" in message
    assert "backup" in message
    assert not (installed / "secret.key").exists()


def test_another_installations_key_file_is_refused(installed: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    assert run(other, "init").returncode == 0
    shutil.copy(other / "secret.key", installed / "secret.key")
    message = _one_line_error(run(installed, "users", "list"))
    assert "holds a different signing key" in message
    message = _one_line_error(run(installed, "serve"))
    assert "wrong key file" in message


def test_a_mistyped_key_path_is_refused(installed: Path) -> None:
    typo = installed / "secret.kye"
    r = run(installed, "users", "list", SMARTUNION_SECRET_KEY_FILE=str(typo))
    assert "does not exist" in _one_line_error(r)
    assert not typo.exists()


def test_rotation_records_the_new_keys_and_retirement_forgets_the_old(installed: Path) -> None:
    r = run(installed, "keys", "rotate", "--retire-old")
    assert r.returncode == 0, r.stderr
    ring = json.loads((installed / "secret.key").read_text())
    engine = create_engine(f"sqlite:///{installed / 'smartunion.db'}")
    with Session(engine) as s:
        recorded = {
            (k, v) for k, v in s.execute(select(KeyFingerprint.kind, KeyFingerprint.version))
        }
    engine.dispose()
    assert recorded == {("signing", 0)} | {("data", int(v)) for v in ring["data_keys"]} | {
        ("blind", int(v)) for v in ring["blind_keys"]
    }
    assert ("data", 2) in recorded
    assert run(installed, "users", "list").returncode == 0


def test_users_create_works_in_a_fresh_process(installed: Path) -> None:
    """The CLI loads every model: creating a user used to crash in every fresh process."""
    orgs = json.loads(run(installed, "orgs", "list", "--json").stdout)
    code = orgs[0]["code"]
    r = run(
        installed,
        "users",
        "create",
        "--username",
        "new_staff",
        "--role",
        "staff",
        "--org",
        code,
        SMARTUNION_PASSWORD="Strong-Passw0rd-2026",
    )
    assert r.returncode == 0, r.stderr
    assert "new_staff" in run(installed, "users", "list").stdout


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("SMARTUNION_CIPHER", "rot13", "SMARTUNION_CIPHER"),
        ("SMARTUNION_API_RATE_LIMIT", "-1", "SMARTUNION_API_RATE_LIMIT"),
        ("SMARTUNION_LANGUAGE", "fr", "SMARTUNION_LANGUAGE"),
        ("SMARTUNION_DATABASE_URL", "not-a-url", "SMARTUNION_DATABASE_URL"),
        ("SMARTUNION_DATABASE_URL", "foo://", "'foo' is not supported"),
        ("SMARTUNION_DATABASE_URL", "mysql://u@h/db", "'mysql' is not supported"),
    ],
)
def test_a_bad_setting_is_one_line(tmp_path: Path, variable: str, value: str, says: str) -> None:
    message = _one_line_error(run(tmp_path / "var", "users", "list", **{variable: value}))
    assert says in message


def _damage(key_file: Path, how: str) -> None:
    good = json.loads(key_file.read_text())
    key_file.unlink()
    if how == "folder":
        key_file.mkdir()
        return
    damaged = {
        "list": [1, 2],
        "null data keys": {**good, "data_keys": None},
        "numeric signing key": {**good, "signing_key": 12345},
        "md5 blind key": {
            **good,
            "blind_keys": {v: {**k, "algorithm": "md5"} for v, k in good["blind_keys"].items()},
        },
    }[how]
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, json.dumps(damaged).encode())
    os.close(fd)


@pytest.mark.parametrize(
    "how", ["list", "null data keys", "numeric signing key", "md5 blind key", "folder"]
)
def test_a_damaged_key_file_is_one_line(tmp_path: Path, how: str) -> None:
    data = tmp_path / "var"
    assert run(data, "init").returncode == 0
    _damage(data / "secret.key", how)
    message = _one_line_error(run(data, "users", "list"))
    assert "key" in message


def test_resume_with_no_rotation_in_progress_says_so(installed: Path) -> None:
    message = _one_line_error(run(installed, "keys", "rotate", "--resume"))
    assert "no rotation in progress" in message


class TestRetiredKeys:
    """`--retire-old` warns first and keeps the retired keys apart, where restores find them."""

    def test_retiring_warns_and_archives(self, installed: Path) -> None:
        r = run(installed, "keys", "rotate", "--retire-old")
        assert r.returncode == 0, r.stderr
        warning = " ".join(r.stderr.split())
        assert "warning: --retire-old removes old keys" in warning
        assert "secret.key.retired" in warning
        archive = installed / "secret.key.retired"
        assert os.stat(archive).st_mode & 0o777 == 0o600
        kept = json.loads(archive.read_text())
        assert set(kept["data_keys"]) == {"1"}
        assert set(kept["blind_keys"]) == {"1"}
        assert "1" not in json.loads((installed / "secret.key").read_text())["data_keys"]
        assert "retired keys archived in" in " ".join(r.stdout.split())

    def test_a_backup_from_before_the_retirement_restores(
        self, installed: Path, tmp_path: Path
    ) -> None:
        backup = tmp_path / "old.subak"
        assert run(installed, "backup", "--out", str(backup)).returncode == 0
        assert run(installed, "keys", "rotate", "--retire-old").returncode == 0
        r = run(installed, "restore", str(backup), "--force")
        assert r.returncode == 0, r.stderr
        said = " ".join(r.stdout.split())
        assert "retired data key version(s) [1] taken back" in said
        assert "1" in json.loads((installed / "secret.key").read_text())["data_keys"]
        # Everything reads again under the restored data (key check, decryption, audit).
        assert run(installed, "users", "list").returncode == 0
        assert run(installed, "audit", "verify").returncode == 0

    def test_without_the_archive_the_restore_says_what_is_missing(
        self, installed: Path, tmp_path: Path
    ) -> None:
        backup = tmp_path / "old.subak"
        assert run(installed, "backup", "--out", str(backup)).returncode == 0
        assert run(installed, "keys", "rotate", "--retire-old").returncode == 0
        (installed / "secret.key.retired").unlink()
        message = _one_line_error(run(installed, "restore", str(backup), "--force"))
        assert "data key version(s) [1]" in message
        assert "the database was not changed" in message
