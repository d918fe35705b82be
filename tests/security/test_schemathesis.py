"""Property-based fuzzing of the whole API from its OpenAPI document: no input gives a 5xx.

Runs against the real app on a SQLite file with the test province, as a system admin (the
widest scope) so that generated ids and bodies reach the service layer, not just the 401.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from smartunion import schema as db_schema
from smartunion.config import Settings
from smartunion.db import Database, make_engine
from smartunion.security import service as identity
from smartunion.security.crypto import FieldCrypto
from smartunion.security.guard import GuardPolicy
from smartunion.security.keys import KeyRing
from smartunion.web.app import create_app
from smartunion.web.state import AppState
from tests.factories import build_world

_dir = Path(tempfile.mkdtemp(prefix="su-fuzz-"))
_url = f"sqlite:///{_dir / 'fuzz.db'}"
db_schema.upgrade(make_engine(_url))
_crypto = FieldCrypto(KeyRing.generate())
# The fuzzer reads far more records than any person: give it room, keep the guard on.
_db = Database.from_url(
    _url,
    audit_key=_crypto.ring.audit_key,
    guard_policy=GuardPolicy(
        min_normal_daily=10**6,
        hard_margin=10**8,
        daily_read_quota=10**9,
        daily_export_quota=10**7,
    ),
)
with _db.session() as _s:
    _world = build_world(_s, _crypto)
    _admin = _world.users["admin"]
    _token = identity.open_session(_s, _admin, kind="bearer", lifetime=dt.timedelta(hours=2))
_settings = Settings(data_dir=_dir, database_url=_url, api_rate_limit=0, login_rate_limit=10**6)
app = create_app(_settings, state=AppState(settings=_settings, db=_db, crypto=_crypto))

schema = schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.mark.slow
@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_errors(case: Any) -> None:
    if case.path in ("/api/v1/auth/logout",):
        return  # would end the fuzzer's own session
    response = case.call(headers={"Authorization": f"Bearer {_token}"})
    assert response.status_code < 500, f"{case.method} {case.path}: {response.text[:300]}"
