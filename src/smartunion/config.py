"""Settings: the one place configuration is read (prefix ``SMARTUNION_``)."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Language = Literal["zh-CN", "en"]
Cipher = Literal["aes-256-gcm", "sm4-gcm"]


def default_data_dir() -> Path:
    """Absolute, so that a command run from another folder finds the same installation (a
    relative ``var`` made a new, empty one wherever it was run)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "smartunion"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SMARTUNION_", env_file=None, extra="ignore")

    data_dir: Path = Field(
        default_factory=lambda: default_data_dir(),
        description="Runtime data: SQLite file, lake, keys. Default: $XDG_DATA_HOME/smartunion "
        "or ~/.local/share/smartunion (the same from every folder; `make` sets ./var)",
    )
    database_url: str = Field(
        default="",
        description="SQLAlchemy URL; empty means a SQLite file under data_dir.",
    )
    secret_key_file: Path | None = Field(
        default=None,
        description="Field-encryption and signing keys; created with mode 0600 on first use.",
    )
    language: Language = "zh-CN"
    cipher: Cipher = Field(
        default="aes-256-gcm",
        description="Cipher for new keys: aes-256-gcm, or sm4-gcm (with HMAC-SM3 blind indexes)",
    )
    session_max_age_seconds: int = 8 * 3600
    session_idle_seconds: int = 30 * 60
    api_token_seconds: int = 3600
    api_token_idle_seconds: int = Field(
        default=30 * 60, ge=60, description="A bearer token unused this long is dead"
    )
    cookie_secure: bool = False
    totp_required_roles: str = Field(
        default="system_admin,org_admin",
        description="Comma-separated roles that must log in with a TOTP second factor",
    )
    api_rate_limit: int = Field(
        default=600, ge=0, description="API requests per minute per token; 0 disables"
    )
    trusted_proxies: str = Field(
        default="",
        description=(
            "Comma-separated addresses or networks (CIDR) of the reverse proxies whose "
            "X-Forwarded-For and X-Forwarded-Proto are believed; empty (default): nobody's, "
            "the client address is the connection's"
        ),
    )
    login_rate_limit: int = Field(
        default=20, ge=1, description="Login attempts per minute per client address"
    )
    # Insider-leak guard (see security/guard.py). Floors in records of each kind; margins
    # and the read quota in weighted records (a masked list row weighs 1).
    guard_min_normal_daily: int = Field(
        default=5000, ge=0, description="Masked list rows a day any user may read unremarked"
    )
    guard_min_normal_details: int = Field(default=150, ge=0)
    guard_min_normal_reveals: int = Field(default=20, ge=0)
    guard_alert_margin: int = Field(default=1000, ge=0)
    guard_hard_margin: int = Field(default=2000, ge=1)
    daily_read_quota: int = Field(default=20000, ge=1)
    daily_export_quota: int = Field(default=5000, ge=1)
    stats_min_group: int = Field(
        default=10, ge=2, description="Published statistics suppress groups smaller than this"
    )
    dp_monthly_budget: float = Field(
        default=2.0,
        gt=0,
        description="Differential-privacy ε a member's data may be released with per month",
    )
    stats_dp_only_roles: str = Field(
        default="",
        description="Comma-separated roles that receive differentially private statistics "
        "only (accounts whose figures leave the union); they must give epsilon",
    )
    export_approval_threshold: int = Field(
        default=1000, ge=0, description="Exports above this many records need a second person"
    )
    echo_sql: bool = False
    # Serving under load (docs/architecture.md, "Concurrency").
    worker_threads: int = Field(
        default=8,
        ge=1,
        le=512,
        description="Requests at work at once per server process (threads for sync code)",
    )
    queue_size: int = Field(
        default=1000, ge=0, description="Requests that may wait for a worker; more get 503"
    )
    queue_wait_seconds: float = Field(
        default=5.0, gt=0, description="Longest wait for a worker before a 503 Retry-After"
    )
    db_pool_size: int = Field(
        default=0,
        ge=0,
        description="Database connections per process; 0 = 2 × worker_threads + 2",
    )
    sqlite_synchronous: Literal["NORMAL", "FULL"] = Field(
        default="NORMAL",
        description="NORMAL survives a killed process; FULL also a power cut (slower commits)",
    )
    audit_seal_interval: float = Field(
        default=0.5,
        ge=0,
        description="Seconds between the server's audit sealing rounds; 0 = no sealer thread",
    )
    # Audit checkpoints (security/checkpoints.py): written outside the database.
    audit_checkpoint_path: Path | None = Field(
        default=None,
        description="Checkpoint file; put it on another host (a mount). Default: in data_dir",
    )
    audit_checkpoint_syslog: str = Field(
        default="",
        description="Also send each checkpoint to syslog: /dev/log, or host:port (UDP); "
        "empty = off",
    )
    audit_checkpoint_every_events: int = Field(
        default=1000, ge=0, description="The server writes a checkpoint every N new events"
    )
    audit_checkpoint_every_minutes: float = Field(
        default=5.0, ge=0, description="… and every M minutes when there are new events"
    )
    audit_checkpoint_max_age_hours: float = Field(
        default=25.0,
        ge=0,
        description="audit verify fails when the latest checkpoint is older; 0 = no limit",
    )

    @model_validator(mode="after")
    def _fill_paths(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{(self.data_dir / 'smartunion.db').as_posix()}"
        if self.secret_key_file is None:
            self.secret_key_file = self.data_dir / "secret.key"
        return self

    @property
    def pool_size(self) -> int:
        """Each request may hold two connections (its own and a guard counter's side
        transaction); the sealer and the readiness probe one each."""
        return self.db_pool_size or 2 * self.worker_threads + 2

    @property
    def key_file(self) -> Path:
        return self.secret_key_file or self.data_dir / "secret.key"

    @property
    def stats_dp_roles(self) -> frozenset[str]:
        return frozenset(r.strip() for r in self.stats_dp_only_roles.split(",") if r.strip())

    @property
    def totp_roles(self) -> frozenset[str]:
        return frozenset(r.strip() for r in self.totp_required_roles.split(",") if r.strip())

    @property
    def audit_checkpoint_file(self) -> Path:
        """Outside the database on purpose: it must survive someone who can edit the DB."""
        return self.audit_checkpoint_path or self.data_dir / "audit-checkpoints.jsonl"

    @property
    def lake_dir(self) -> Path:
        return self.data_dir / "lake"


@cache
def get_settings() -> Settings:
    return Settings()
