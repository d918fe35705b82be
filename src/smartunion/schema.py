"""Schema management: Alembic migrations run from the installed package."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.set_main_option("file_template", "%%(year)d_%%(month).2d_%%(day).2d_%%(rev)s_%%(slug)s")
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    _migrate(engine, lambda cfg: command.upgrade(cfg, revision))


def downgrade(engine: Engine, revision: str) -> None:
    """Down to ``revision``; a step whose older schema cannot hold the data refuses
    (``CommandError``, one line) before changing anything."""
    _migrate(engine, lambda cfg: command.downgrade(cfg, revision))


def _migrate(engine: Engine, run: Callable[[Config], None]) -> None:
    """One transaction. On SQLite, with foreign keys off meanwhile and checked before the
    commit: changing a column or a CHECK constraint rebuilds the table (copy, drop, rename),
    and dropping a table other rows point at fails with them on (the SQLite manual's
    procedure for ALTER TABLE)."""
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:  # before BEGIN: the pragma does nothing inside a transaction
            _raw_sqlite(conn, "PRAGMA foreign_keys=OFF")
        try:
            with conn.begin():
                cfg.attributes["connection"] = conn
                run(cfg)
                if sqlite:
                    bad = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if bad:
                        raise CommandError(
                            f"migration left {len(bad)} rows pointing at nothing "
                            f"(first in table {bad[0][0]}): nothing was changed"
                        )
        finally:
            if sqlite:
                _raw_sqlite(conn, "PRAGMA foreign_keys=ON")


def _raw_sqlite(conn: Connection, sql: str) -> None:
    raw = conn.connection.driver_connection
    assert raw is not None  # noqa: S101  # nosec B101 (an open connection has its driver connection)
    raw.execute(sql)


def is_current(engine: Engine) -> bool:
    script = ScriptDirectory.from_config(alembic_config(str(engine.url)))
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_heads()
    return set(current) == set(script.get_heads())
