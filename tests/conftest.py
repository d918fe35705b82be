"""Test fixtures: every database test runs on SQLite and, when it answers, PostgreSQL.

Each test gets an outer transaction that is rolled back at the end; the code under test
commits to a savepoint inside it (``join_transaction_mode="create_savepoint"``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session

from smartunion import schema
from smartunion.config import Settings
from smartunion.db import Database, make_engine
from smartunion.members import repository as member_repo
from smartunion.security import guard
from smartunion.security.crypto import FieldCrypto
from smartunion.security.keys import KeyRing
from smartunion.stats import members as member_stats
from smartunion.stats import overview
from smartunion.web.app import create_app
from smartunion.web.state import AppState
from tests.factories import World, build_world

PG_ADMIN_URL = os.environ.get(
    "SMARTUNION_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def _postgres_problem() -> str | None:
    try:
        engine = create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect():
            pass
        engine.dispose()
    except Exception as exc:  # any failure means "not here"; the reason is reported
        return f"PostgreSQL not reachable at {PG_ADMIN_URL}: {type(exc).__name__}"
    return None


PG_PROBLEM = _postgres_problem()
BACKENDS = ["sqlite", "postgresql"]


def pytest_report_header() -> list[str]:
    if PG_PROBLEM is None:
        return [f"PostgreSQL: database tests run on it too ({PG_ADMIN_URL})"]
    return [f"PostgreSQL: SKIPPED — {PG_PROBLEM}"]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if PG_PROBLEM is not None:
        terminalreporter.write_line(f"NOTE: PostgreSQL tests were skipped: {PG_PROBLEM}")


def _pg_url(dbname: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{dbname}"


def create_pg_database(prefix: str = "su_test") -> str:
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return _pg_url(name)


def drop_pg_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    path = tmp_path_factory.mktemp("db") / "test.db"
    engine = make_engine(f"sqlite:///{path}")
    schema.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def postgres_engine() -> Iterator[Engine]:
    if PG_PROBLEM is not None:
        pytest.skip(PG_PROBLEM)
    url = create_pg_database()
    engine = make_engine(url)
    schema.upgrade(engine)
    yield engine
    engine.dispose()
    drop_pg_database(url)


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest) -> Engine:
    name = "sqlite_engine" if request.param == "sqlite" else "postgres_engine"
    result: Engine = request.getfixturevalue(name)
    return result


@pytest.fixture
def db(engine: Engine, crypto: FieldCrypto) -> Iterator[Database]:
    # Each test writes its own history and members into a fresh transaction.
    guard.clear_baselines()
    member_repo.forget_counts()
    member_stats.forget_decisions()
    overview.forget()
    connection = engine.connect()
    outer = connection.begin()
    database = Database(engine, audit_key=crypto.ring.audit_key)
    database.sessionmaker = database.make_sessionmaker(
        connection, join_transaction_mode="create_savepoint"
    )
    yield database
    outer.rollback()
    connection.close()


@pytest.fixture
def session(db: Database) -> Iterator[Session]:
    with db.session() as s:
        yield s


@pytest.fixture(scope="session")
def crypto() -> FieldCrypto:
    return FieldCrypto(KeyRing.generate())


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # No sealer thread: the test's database is one connection, not to be shared with a
    # thread; tests that need a sealed chain seal it themselves.
    return Settings(data_dir=tmp_path, database_url="sqlite:///unused.db", audit_seal_interval=0)


@pytest.fixture
def app_state(settings: Settings, db: Database, crypto: FieldCrypto) -> AppState:
    return AppState(settings=settings, db=db, crypto=crypto)


@pytest.fixture
def client(settings: Settings, app_state: AppState) -> Iterator[TestClient]:
    with TestClient(create_app(settings, state=app_state)) as c:
        yield c


@pytest.fixture
def world(db: Database, crypto: FieldCrypto) -> World:
    """Province → two cities → a grassroots union each, with staff and members on both sides."""
    with db.session() as s:
        return build_world(s, crypto)
