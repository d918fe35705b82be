"""What the running app holds: settings, database and field crypto, built once at start-up."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from smartunion.config import Settings
from smartunion.db import Database
from smartunion.security import keycheck
from smartunion.security.crypto import FieldCrypto
from smartunion.security.guard import GuardPolicy
from smartunion.security.ratelimit import RateLimiter
from smartunion.security.service import SessionLimits


@dataclass
class AppState:
    settings: Settings
    db: Database
    crypto: FieldCrypto
    api_limiter: RateLimiter = field(init=False)
    login_limiter: RateLimiter = field(init=False)

    def __post_init__(self) -> None:
        self.api_limiter = RateLimiter(self.settings.api_rate_limit)
        self.login_limiter = RateLimiter(self.settings.login_rate_limit)

    @classmethod
    def from_settings(cls, settings: Settings) -> AppState:
        crypto = FieldCrypto.from_file(settings.key_file, cipher=settings.cipher)
        db = Database.from_url(
            settings.database_url,
            audit_key=crypto.ring.audit_key,
            audit_alg="hmac-sm3" if settings.cipher == "sm4-gcm" else "hmac-sha256",
            guard_policy=GuardPolicy.from_settings(settings),
            echo=settings.echo_sql,
            pool_size=settings.pool_size,
            sqlite_synchronous=settings.sqlite_synchronous,
        )
        with db.session() as session:
            keycheck.check(session, crypto.ring, settings.key_file)
        return cls(settings=settings, db=db, crypto=crypto)

    @property
    def cookie_limits(self) -> SessionLimits:
        return SessionLimits(
            max_age=dt.timedelta(seconds=self.settings.session_max_age_seconds),
            idle=dt.timedelta(seconds=self.settings.session_idle_seconds),
        )

    @property
    def bearer_limits(self) -> SessionLimits:
        return SessionLimits(
            max_age=dt.timedelta(seconds=self.settings.api_token_seconds),
            idle=dt.timedelta(seconds=self.settings.api_token_idle_seconds),
        )
