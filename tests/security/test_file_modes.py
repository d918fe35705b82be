"""Item 21: the data folder is 0700, the SQLite database and its WAL/SHM files 0600."""

from __future__ import annotations

import os
import stat
import subprocess  # nosec B404 (the CLI as a user runs it)
import sys
from pathlib import Path

from sqlalchemy import text

from smartunion.db import make_engine


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_init_makes_a_private_data_folder(tmp_path: Path) -> None:
    data = tmp_path / "var"
    cli = Path(sys.executable).with_name("smartunion")
    env = {**os.environ, "SMARTUNION_DATA_DIR": str(data)}
    env.pop("SMARTUNION_DATABASE_URL", None)
    old = os.umask(0o022)  # the usual umask, which gave 0755 and 0644 before
    try:
        done = subprocess.run(  # nosec B603
            [str(cli), "init"], env=env, capture_output=True, text=True, check=False
        )
    finally:
        os.umask(old)
    assert done.returncode == 0, done.stderr
    assert _mode(data) == 0o700
    assert _mode(data / "smartunion.db") == 0o600
    assert _mode(data / "secret.key") == 0o600


def test_database_wal_and_shm_are_private(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        db = tmp_path / "fresh" / "su.db"
        engine = make_engine(f"sqlite:///{db}")
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (x INTEGER)"))
            conn.execute(text("INSERT INTO t VALUES (1)"))
        with engine.connect() as conn:  # WAL and SHM exist while a connection is open
            conn.execute(text("SELECT * FROM t")).all()
            files = {p.name: _mode(p) for p in db.parent.iterdir()}
    finally:
        os.umask(old)
        engine.dispose()
    assert {"su.db", "su.db-wal", "su.db-shm"} <= set(files)
    assert set(files.values()) == {0o600}
    assert _mode(db.parent) == 0o700


def test_an_existing_readable_database_is_tightened(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    engine = make_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    engine.dispose()
    db.chmod(0o644)
    make_engine(f"sqlite:///{db}").dispose()
    assert _mode(db) == 0o600
