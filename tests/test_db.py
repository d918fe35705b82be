"""The SQLite engine under concurrent requests."""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import text

from smartunion.db import make_engine


def test_overlapping_read_then_write_transactions_wait_instead_of_failing(
    tmp_path: Path,
) -> None:
    """Requests read, then write their audit event. With deferred transactions SQLite
    refuses the write at once ("database is locked") when another request committed in
    between; the 1M-member API benchmark hit it. Each transaction now takes the lock first."""
    engine = make_engine(f"sqlite:///{tmp_path / 'race.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    errors: list[str] = []

    def work() -> None:
        for _ in range(100):
            try:
                with engine.begin() as conn:
                    conn.execute(text("SELECT count(*) FROM t")).scalar()
                    conn.execute(text("INSERT INTO t VALUES (1)"))
            except Exception as exc:  # any failure is the bug
                errors.append(type(exc).__name__)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 400
    engine.dispose()
