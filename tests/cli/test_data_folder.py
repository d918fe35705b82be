"""Where an installation lives, and that no command makes an empty one by mistake (fresh
interpreter, empty working folder, fresh home)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.conftest import PG_PROBLEM

SMARTUNION = str(Path(sys.executable).with_name("smartunion"))


def run(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SMARTUNION_") and k != "XDG_DATA_HOME"
    }
    environ.update({"HOME": str(cwd.parent / "home"), "COLUMNS": "200", **env})
    return subprocess.run(
        [SMARTUNION, *args], cwd=cwd, env=environ, capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    """An empty folder to run from, beside an empty home."""
    (tmp_path / "home").mkdir()
    work = tmp_path / "work"
    work.mkdir()
    return work


def _one_line(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    return " ".join(r.stderr.split())


def _tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_nothing_is_created_in_the_folder_a_command_runs_from(elsewhere: Path) -> None:
    home = elsewhere.parent / "home"
    message = _one_line(run(elsewhere, "users", "list"))
    assert f"nothing is installed at {home / '.local/share/smartunion'}" in message
    assert _tree(elsewhere) == []
    assert _tree(home) == []


def test_init_puts_the_installation_in_the_users_data_folder(elsewhere: Path) -> None:
    home = elsewhere.parent / "home"
    r = run(elsewhere, "init")
    assert r.returncode == 0, r.stderr
    data = home / ".local/share/smartunion"
    assert (data / "secret.key").exists()
    assert (data / "smartunion.db").exists()
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert _tree(elsewhere) == []
    # ... and another folder finds the same installation.
    other = elsewhere.parent / "other"
    other.mkdir()
    assert run(other, "orgs", "list").returncode == 0
    assert _tree(other) == []


def test_xdg_data_home_is_honoured(elsewhere: Path, tmp_path: Path) -> None:
    r = run(elsewhere, "init", XDG_DATA_HOME=str(tmp_path / "xdg"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "xdg" / "smartunion" / "secret.key").exists()


def test_a_sqlite_url_in_a_missing_folder_is_an_error_not_a_new_database(
    elsewhere: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    assert run(elsewhere, "init", SMARTUNION_DATA_DIR=str(data)).returncode == 0
    url = f"sqlite:///{tmp_path / 'typo' / 'smartunion.db'}"
    env = {"SMARTUNION_DATA_DIR": str(data), "SMARTUNION_DATABASE_URL": url}
    for args in (["users", "list"], ["audit", "verify"], ["generate", "--members", "5"]):
        message = _one_line(run(elsewhere, *args, **env))
        assert "no database at" in message, args
        assert "smartunion init" in message
        assert not (tmp_path / "typo").exists(), args
    # init is the one command that makes it (a new, empty installation there).
    fresh = {**env, "SMARTUNION_SECRET_KEY_FILE": str(tmp_path / "typo-key")}
    assert run(elsewhere, "init", **fresh).returncode == 0
    assert (tmp_path / "typo" / "smartunion.db").exists()


@pytest.mark.skipif(PG_PROBLEM is not None, reason=f"PostgreSQL: {PG_PROBLEM}")
def test_init_on_a_missing_postgresql_database_says_so(elsewhere: Path, tmp_path: Path) -> None:
    name = f"su_missing_{uuid.uuid4().hex[:8]}"
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    data = tmp_path / "pgdata"
    message = _one_line(
        run(elsewhere, "init", SMARTUNION_DATABASE_URL=url, SMARTUNION_DATA_DIR=str(data))
    )
    assert f"the PostgreSQL database '{name}' does not exist: create it" in message
    assert "run `smartunion init` first" not in message
    assert not data.exists()
