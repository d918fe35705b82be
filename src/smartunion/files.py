"""Files that hold the platform's data are the service account's alone.

The data folder is created 0700 and the SQLite database 0600 before SQLite first opens it:
SQLite gives its WAL, SHM and journal files the database file's own mode, so they are
0600 too. (The key file is written 0600 by ``security.keys``.) Existing files that are
readable by others are tightened when the database is opened, so an installation from
before this rule is fixed by its next start.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
SQLITE_COMPANIONS = ("", "-wal", "-shm", "-journal")


def private_dir(path: Path) -> bool:
    """Create ``path`` (0700) or tighten it to 0700; True when an existing one was looser."""
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    return tighten(path, PRIVATE_DIR)


def tighten(path: Path, mode: int) -> bool:
    """Remove group and other bits from ``path`` if it has any; True when it had."""
    try:
        current = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return False
    if current & 0o077 == 0:
        return False
    try:
        path.chmod(current & mode)
    except PermissionError:  # not ours to change: leave it, as SQLite will
        return False
    return True


def private_sqlite(database: Path) -> None:
    """Make sure the SQLite file exists 0600 (with its folder) before SQLite opens it."""
    parent = database.parent
    if not parent.exists():
        parent.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    try:
        fd = os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:
        pass
    else:
        os.close(fd)  # an empty file is an empty SQLite database
    for suffix in SQLITE_COMPANIONS:
        tighten(database.with_name(database.name + suffix), PRIVATE_FILE)
