"""The ``smartunion`` command: set up, generate, serve, manage users and organisations."""

from __future__ import annotations

import errno
import getpass
import json
import os
import re
import shutil
import sqlite3
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError as PydanticValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.orm import Session

import smartunion.models  # noqa: F401  (the composition root loads every model once)
from smartunion.config import Settings, get_settings
from smartunion.db import Database, make_engine
from smartunion.errors import Conflict, InvalidInput, NotFound
from smartunion.orgs.models import OrgLevel, UnionOrg
from smartunion.security import audit, keycheck
from smartunion.security import service as identity
from smartunion.security.crypto import FieldCrypto
from smartunion.security.guard import GuardPolicy
from smartunion.security.keys import KeyFileError, load_keyring
from smartunion.security.models import AuditEvent, User
from smartunion.security.passwords import WeakPassword
from smartunion.security.permissions import Role
from smartunion.validation import ValidationError

app = typer.Typer(help="SmartUnion 智慧工会平台", no_args_is_help=True, add_completion=False)
users_app = typer.Typer(help="Staff and member accounts", no_args_is_help=True)
orgs_app = typer.Typer(help="Union organisations", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident audit trail", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(orgs_app, name="orgs")
app.add_typer(audit_app, name="audit")
keys_app = typer.Typer(help="Encryption keys", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
export_app = typer.Typer(help="Exports of personal data (with approval)", no_args_is_help=True)
app.add_typer(export_app, name="export")


def _register_ops() -> None:
    from smartunion.ops.cli import register

    register(app)


console = Console()
err = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])

USER_ERRORS = (
    Conflict,
    InvalidInput,
    NotFound,
    ValidationError,
    WeakPassword,
    KeyFileError,
    keycheck.KeyMismatch,
    identity.UserError,
    ValueError,
)


def fail(message: str) -> typer.Exit:
    # soft_wrap: one line whatever the terminal's width (rich would break it at 80 columns).
    err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code=1)


@contextmanager
def user_errors() -> Iterator[None]:
    """User mistakes end in one clear line and exit 1, not a traceback."""
    try:
        yield
    except USER_ERRORS as exc:
        raise fail(str(exc)) from None
    except (OperationalError, ProgrammingError) as exc:
        text = str(exc.orig) if exc.orig else str(exc)
        missing_db = re.search(r'database "([^"]+)" does not exist', text)
        if missing_db:
            raise fail(
                f"the PostgreSQL database {missing_db.group(1)!r} does not exist: create it "
                f"(createdb {missing_db.group(1)}, or CREATE DATABASE), then run "
                "`smartunion init`"
            ) from None
        if "no such table" in text or "does not exist" in text:
            raise fail("the database is not set up: run `smartunion init` first") from None
        raise fail(_database_error(text)) from None
    except sqlite3.Error as exc:  # the generator's and the backup's direct SQLite connections
        raise fail(_database_error(str(exc))) from None
    except IntegrityError as exc:
        text = str(exc.orig) if exc.orig else str(exc)
        raise fail(f"the database refused the change: {text.splitlines()[0]}") from None
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            where = exc.filename or "the data folder"
            raise fail(_NO_SPACE.format(where=where)) from None
        raise fail(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")) from None


def _database_error(text: str) -> str:
    if "disk is full" in text or "No space left" in text or _database_disk_full(text):
        return _NO_SPACE.format(where="the database")
    return f"database error: {text.splitlines()[0] if text else '?'}"


def _database_disk_full(text: str) -> bool:
    """SQLite reports a full disk while growing its WAL as a plain "disk I/O error"."""
    if "disk I/O error" not in text:
        return False
    try:
        url = make_url(get_settings().database_url)
        folder = Path(url.database or ".").resolve().parent
        return shutil.disk_usage(folder).free < 1 << 20
    except (OSError, ValueError, ArgumentError, PydanticValidationError):
        return False


_NO_SPACE = (
    "no space left on the device of {where}: nothing was committed or left half-written; "
    "free some space and run the command again"
)


def _settings() -> Settings:
    """The settings, or one line per bad ``SMARTUNION_*`` variable and exit 1."""
    try:
        settings = get_settings()
    except PydanticValidationError as exc:
        lines = [
            f"SMARTUNION_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
            for e in exc.errors()
        ]
        raise fail("; ".join(lines)) from None
    try:
        url = make_url(settings.database_url)
        if url.get_backend_name() not in ("sqlite", "postgresql"):
            raise ValueError(f"{url.get_backend_name()!r} is not supported")
    except (ArgumentError, ValueError) as exc:
        raise fail(
            f"SMARTUNION_DATABASE_URL: {exc}; use sqlite:///PATH or "
            "postgresql+psycopg://USER@HOST:PORT/NAME"
        ) from None
    return settings


def _sqlite_file(settings: Settings) -> Path | None:
    url = make_url(settings.database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(str(url.database))


def _db(settings: Settings, *, create: bool = False) -> Database:
    """The database, after checking that the key file is the one its data needs. Only
    ``init`` (``create``) may make a SQLite file: a mistyped path is an error, not a new,
    empty database."""
    path = _sqlite_file(settings)
    if path is not None and not create and not path.exists() and not settings.key_file.exists():
        raise fail(f"nothing is installed at {settings.data_dir}: run `smartunion init` first")
    ring = _crypto(settings).ring
    if path is not None and not create and not path.exists():
        raise fail(
            f"no database at {path}: run `smartunion init` to create one, or point "
            "SMARTUNION_DATABASE_URL (or SMARTUNION_DATA_DIR) at the installation"
        )
    db = Database.from_url(
        settings.database_url,
        audit_key=ring.audit_key,
        audit_alg="hmac-sm3" if settings.cipher == "sm4-gcm" else "hmac-sha256",
        guard_policy=GuardPolicy.from_settings(settings),
        echo=settings.echo_sql,
    )
    try:
        with db.session() as s:
            keycheck.check(s, ring, settings.key_file)
    except keycheck.KeyMismatch as exc:
        raise fail(str(exc)) from None
    return db


def _crypto(settings: Settings) -> FieldCrypto:
    """The field crypto, or one line and exit 1 if the key file is missing or damaged."""
    try:
        return FieldCrypto.from_file(settings.key_file, cipher=settings.cipher)
    except KeyFileError as exc:
        raise fail(str(exc)) from None


@app.command()
def init() -> None:
    """Create the data directory (0700), the key file (0600) and the schema (Alembic head)."""
    from smartunion import schema
    from smartunion.files import PRIVATE_DIR, tighten

    settings = _settings()
    with user_errors():
        sqlite_file = _sqlite_file(settings)
        if sqlite_file is not None:  # init makes the SQLite file, and its folder if need be
            sqlite_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if settings.data_dir.exists() and tighten(settings.data_dir, PRIVATE_DIR):
            console.print(f"{settings.data_dir}: made private (mode 0700)")
        if not settings.key_file.exists():
            engine = make_engine(settings.database_url)
            try:
                with Session(engine) as s:
                    populated = keycheck.holds_data(s)
            finally:
                engine.dispose()
            if populated:
                raise fail(
                    f"key file {settings.key_file} does not exist, and the database holds data "
                    "written under a key: restore the key file from its backup (a new key "
                    "cannot read that data; see docs/security.md, 'Keys')"
                )
            settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            load_keyring(settings.key_file, create=True, cipher=settings.cipher)
        db = _db(settings, create=True)
        schema.upgrade(db.engine)
        ring = _crypto(settings).ring
        with db.session() as s:
            keycheck.check(s, ring, settings.key_file)
        checkpoint_file = settings.audit_checkpoint_file
        started = not checkpoint_file.exists()
        if started:  # a new installation's file; `verify` reports a missing one later
            from smartunion.security import checkpoints as cps

            with db.session() as s:
                cps.append(checkpoint_file, ring.audit_key, s, create=True)
    console.print(f"database ready: {db.engine.url.render_as_string(hide_password=True)}")
    console.print(f"key file: {settings.key_file}")
    console.print(
        f"audit checkpoints: {checkpoint_file}" + (" (started)" if started else ""),
        highlight=False,
    )


MAX_MEMBERS = 10_000_000  # the largest province; more would not fit a 24 GB machine


def _member_count(value: str) -> int:
    """A whole number within the bound, with a message that says the bound."""
    try:
        number = int(str(value).replace(",", "").replace("_", ""))
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a whole number (write 1000000, not 1e6)"
        ) from None
    if not 1 <= number <= MAX_MEMBERS:
        raise typer.BadParameter(f"{number:,} is outside 1 to {MAX_MEMBERS:,}")
    return number


@app.command()
def generate(
    members: Annotated[
        int,
        typer.Option(
            parser=_member_count,
            metavar="INTEGER",
            help=f"How many members, 1 to {MAX_MEMBERS:,} (about 1 GB of memory per million)",
        ),
    ] = 10_000,
    seed: Annotated[int, typer.Option(help="Same seed, same province")] = 0,
    province: Annotated[str, typer.Option(help="GB/T 2260 province code")] = "140000",
    if_empty: Annotated[
        bool, typer.Option("--if-empty", help="Do nothing when members already exist")
    ] = False,
) -> None:
    """Generate a synthetic province (organisations, enterprises, members)."""
    from smartunion.generate import generate_province
    from smartunion.members.models import Member

    settings = _settings()
    with user_errors(), _stopped_by_signals("nothing was generated (all or nothing)"):
        db = _db(settings)
        if if_empty:
            with db.session() as s:
                if s.scalar(select(Member.id).limit(1)) is not None:
                    console.print("members exist already: nothing generated")
                    return
        crypto = _crypto(settings)
        with Progress(
            TextColumn("{task.description:<14}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        ) as progress:
            tasks: dict[str, Any] = {}

            def report(phase: str, done: int, total: int) -> None:
                if phase not in tasks:
                    tasks[phase] = progress.add_task(phase, total=total)
                progress.update(tasks[phase], completed=done, total=total)

            result = generate_province(
                db.engine, crypto, members=members, seed=seed, province=province, progress=report
            )
    console.print(result.summary() if hasattr(result, "summary") else result)


@contextmanager
def _stopped_by_signals(outcome: str) -> Iterator[None]:
    """SIGTERM and Ctrl-C stop a long command cleanly: its cleanup runs (helpers shut down,
    the transaction rolls back), then one line and exit 128 + signal."""
    import signal

    def stop(signum: int, _frame: object) -> None:
        raise _Stopped(signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    except _Stopped as exc:
        raise _stopped(exc.signum, outcome) from None
    except KeyboardInterrupt:
        raise _stopped(signal.SIGINT, outcome) from None
    finally:
        signal.signal(signal.SIGTERM, previous)


class _Stopped(BaseException):  # not an Exception: no handler on the way swallows it
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _stopped(signum: int, outcome: str) -> typer.Exit:
    import signal

    err.print(f"stopped by {signal.Signals(signum).name}: {outcome}", highlight=False)
    return typer.Exit(code=128 + signum)


DEMO_PASSWORD = "Demo-Union-2026"  # noqa: S105  # nosec B105 (printed for the demo; documented)
DEMO_ACCOUNTS = [
    ("admin", Role.SYSTEM_ADMIN, 0),
    ("city_admin", Role.ORG_ADMIN, 1),
    ("county_staff", Role.STAFF, 2),
    ("analyst", Role.ANALYST, 0),
    ("auditor", Role.AUDITOR, 0),
    ("officer", Role.SECURITY_OFFICER, 0),
]


@app.command("demo-accounts")
def demo_accounts() -> None:
    """Create (once) and print the demo accounts: one per role, all with the demo password."""
    from smartunion.members.models import Member

    settings = _settings()
    rows: list[tuple[str, str, str]] = []
    with user_errors(), _db(settings).session() as s:
        root = s.scalar(select(UnionOrg).where(UnionOrg.parent_id.is_(None)).order_by(UnionOrg.id))
        if root is None:
            raise fail("no organisations yet: run `smartunion generate` first")
        chain = [root]
        for _ in range(2):
            child = s.scalar(
                select(UnionOrg).where(UnionOrg.parent_id == chain[-1].id).order_by(UnionOrg.id)
            )
            chain.append(child or chain[-1])
        accounts: list[tuple[str, Role, UnionOrg, int | None]] = [
            (name, role, chain[depth], None) for name, role, depth in DEMO_ACCOUNTS
        ]
        member = s.scalar(select(Member).order_by(Member.id).limit(1))
        if member is not None:
            org = s.get(UnionOrg, member.org_id)
            if org is not None:
                accounts.append(("member", Role.MEMBER, org, member.id))
        for name, role, org, member_id in accounts:
            if s.scalar(select(User.id).where(User.username == name)) is None:
                if member_id is not None:
                    identity.create_member_account(
                        s,
                        member_id=member_id,
                        username=name,
                        password=DEMO_PASSWORD,
                        channel=identity.AccountChannel.OPERATOR_CLI,
                    )
                    continue
                identity.create_user(
                    s, None, username=name, password=DEMO_PASSWORD, role=role, org=org
                )
            rows.append((name, str(role), org.name))
        to_enrol = [
            name
            for name, enrolled in s.execute(
                select(User.username, User.totp_enabled).where(
                    User.username.in_([r[0] for r in rows]),
                    User.role.in_(sorted(settings.totp_roles)),
                )
            )
            if not enrolled
        ]
    table = Table(title=f"Demo accounts (password: {DEMO_PASSWORD})")
    for col in ("username", "role", "organisation"):
        table.add_column(col)
    for row in rows:
        table.add_row(*row)
    console.print(table)
    if to_enrol:  # an admin who has an authenticator already is not told to set one up
        console.print(
            f"{' and '.join(sorted(to_enrol))} set up a TOTP authenticator at the first log-in "
            "(二次认证)."
        )


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="PORT", help="Port (or $PORT)")] = 8000,
    workers: Annotated[int, typer.Option(min=1)] = 1,
) -> None:
    """Serve the platform: staff console, member portal, JSON API and docs."""
    import uvicorn

    from smartunion import schema

    settings = _settings()
    with user_errors():
        db = _db(settings)
        if not schema.is_current(db.engine):
            raise fail("the database schema is not current: run `smartunion init`")
        db.engine.dispose()
    base = f"http://{host}:{port}"
    console.print(f"SmartUnion on {base}", highlight=False)
    console.print(f"  staff console:  {base}/console", highlight=False)
    console.print(f"  member portal:  {base}/m/", highlight=False)
    console.print(f"  API docs:       {base}/docs", highlight=False)
    uvicorn.run(
        "smartunion.web.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        log_level="info",
        # uvicorn would believe X-Forwarded-For from 127.0.0.1 by default, so anyone on the
        # host could pick their address (and dodge the per-address log-in limit). The app
        # believes forwarded headers only from SMARTUNION_TRUSTED_PROXIES.
        proxy_headers=False,
    )


def _password() -> str:
    env = os.environ.get("SMARTUNION_PASSWORD")
    if env:
        return env
    if not sys.stdin.isatty():
        raise fail("no password: set SMARTUNION_PASSWORD or run in a terminal")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Repeat: ") != first:
        raise fail("passwords differ")
    return first


@users_app.command("create")
def users_create(
    username: Annotated[str, typer.Option(help="Login name")],
    role: Annotated[Role, typer.Option(help="Role", case_sensitive=False)],
    org: Annotated[
        str | None,
        typer.Option(
            "--org",
            help="Organisation code (统一社会信用代码); for a member, their own union (optional)",
        ),
    ] = None,
    member_id: Annotated[int | None, typer.Option(help="For role member: the member id")] = None,
    display_name: Annotated[str, typer.Option(help="Name shown in the console")] = "",
) -> None:
    """Create an account. Password from the prompt or $SMARTUNION_PASSWORD.

    Only here (on the server) can an account that acts as a member be opened: it belongs
    to the member's own union, is audited and leaves the member a notice."""
    settings = _settings()
    if (role is Role.MEMBER) != (member_id is not None):
        raise fail("--member-id goes with --role member, and role member needs it")
    if role is not Role.MEMBER and org is None:
        raise fail("--org is required")
    password = _password()
    with user_errors(), _db(settings).session() as s:
        if member_id is not None:
            user = identity.create_member_account(
                s,
                member_id=member_id,
                username=username,
                password=password,
                channel=identity.AccountChannel.OPERATOR_CLI,
                display_name=display_name,
            )
            target = s.get(UnionOrg, user.org_id)
            if org and target is not None and target.code != org.strip().upper():
                raise fail(f"member {member_id} belongs to {target.code}, not {org}")
        else:
            target = s.scalar(select(UnionOrg).where(UnionOrg.code == (org or "").strip().upper()))
            if target is None:
                raise fail(f"no organisation with code {org}")
            user = identity.create_user(
                s,
                None,
                username=username,
                password=password,
                role=role,
                org=target,
                display_name=display_name,
            )
        console.print(f"created user {user.username} ({role}) at {target.name if target else ''}")


@users_app.command("list")
def users_list() -> None:
    """List accounts with role, organisation and state (active, suspended, inactive)."""
    settings = _settings()
    with user_errors(), _db(settings).session() as s:
        rows = s.execute(
            select(
                User.username,
                User.role,
                UnionOrg.code,
                UnionOrg.name,
                User.is_active,
                User.suspended_at,
            )
            .join(UnionOrg, UnionOrg.id == User.org_id)
            .order_by(User.username)
        ).all()
        audit.record(s, None, "user.list", username="cli", details={"count": len(rows)})
    table = Table()
    for col in ("username", "role", "org code", "organisation", "state"):
        table.add_column(col, overflow="fold")
    for r in rows:
        state = identity.account_state(is_active=r[4], suspended_at=r[5])
        table.add_row(r[0], str(r[1]), r[2], r[3], str(state))
    console.print(table)


def _set_password(username: str, password: str, *, activate: bool) -> None:
    settings = _settings()
    with user_errors(), _db(settings).session() as s:
        user = s.scalar(select(User).where(User.username == username))
        if user is None:
            raise fail(f"no account {username!r}")
        identity.set_password(s, None, user, password)
        if activate and not user.is_active:
            user.is_active = True
            audit.record(
                s,
                None,
                "user.activate",
                object_type="user",
                object_id=user.id,
                username="cli",
                org_id=user.org_id,
            )


@users_app.command("set-password")
def users_set_password(
    username: Annotated[str, typer.Option(help="Login name")],
    activate: Annotated[
        bool, typer.Option(help="Also reactivate a deactivated account (e.g. a member's)")
    ] = False,
) -> None:
    """Set an account's password (prompt or $SMARTUNION_PASSWORD); every session and token
    of the account ends, the lock-out is lifted. Audited."""
    password = _password()
    _set_password(username, password, activate=activate)
    console.print(f"password of {username} set; its sessions and tokens are revoked")


@users_app.command("reset-password")
def users_reset_password(
    username: Annotated[str, typer.Option(help="Login name")],
    activate: Annotated[
        bool, typer.Option(help="Also reactivate a deactivated account (e.g. a member's)")
    ] = False,
) -> None:
    """Give an account a new random password, printed once, for its owner to change
    (``POST /api/v1/auth/password``); every session and token of the account ends."""
    import secrets

    # Four groups of four from an alphabet without look-alikes, joined by dashes: meets
    # the policy (length, three classes, zxcvbn) and is readable over the phone.
    alphabet = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    while True:
        groups = ["".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(4)]
        password = "-".join(groups)
        kinds = (str.islower, str.isupper, str.isdigit)
        if all(any(k(c) for c in password) for k in kinds):
            break
    _set_password(username, password, activate=activate)
    console.print(f"new password of {username}: {password}", highlight=False)
    console.print("give it to its owner in person; their sessions and tokens are revoked")


@orgs_app.command("list")
def orgs_list(
    as_json: Annotated[bool, typer.Option("--json", help="JSON for scripts")] = False,
    level: Annotated[
        OrgLevel | None, typer.Option(help="Only this level", case_sensitive=False)
    ] = None,
) -> None:
    """List union organisations (code, name, level, parent code). Codes are never cut: in a
    pipe the list is tab-separated, one organisation a line."""
    from sqlalchemy.orm import aliased

    settings = _settings()
    parent = aliased(UnionOrg)
    with user_errors(), _db(settings).session() as s:
        stmt = (
            select(UnionOrg.code, UnionOrg.name, UnionOrg.level, UnionOrg.region_code, parent.code)
            .outerjoin(parent, parent.id == UnionOrg.parent_id)
            .order_by(UnionOrg.path)
        )
        if level:
            stmt = stmt.where(UnionOrg.level == level)
        rows = s.execute(stmt).all()
    items = [
        {"code": r[0], "name": r[1], "level": str(r[2]), "region_code": r[3], "parent_code": r[4]}
        for r in rows
    ]
    if as_json:
        sys.stdout.write(json.dumps(items, ensure_ascii=False, indent=2) + "\n")
        return
    columns = ("code", "name", "level", "region", "parent")
    cells = [
        (i["code"], i["name"], i["level"], i["region_code"], i["parent_code"] or "") for i in items
    ]
    if not sys.stdout.isatty():
        sys.stdout.write("".join("\t".join(row) + "\n" for row in [columns, *cells]))
        return
    table = Table()
    widest = max((len(c) for row in cells for c in (row[0], row[4])), default=4)
    for col in columns:
        if col in ("code", "parent"):  # what --org needs: whole, whatever the width
            table.add_column(col, no_wrap=True, min_width=widest)
        else:
            table.add_column(col, overflow="fold")
    for row in cells:
        table.add_row(*row)
    console.print(table)


@audit_app.command("verify")
def audit_verify(
    checkpoint: Annotated[
        bool, typer.Option(help="After a clean run, append a checkpoint to the checkpoint file")
    ] = True,
    seal: Annotated[
        bool, typer.Option(help="First link committed events into the chain (as the server does)")
    ] = True,
) -> None:
    """Check every event's seal and link and the checkpoints (their age included); exit 0 if
    intact, 2 naming the first bad event or the checkpoint problem."""
    from sqlalchemy import func

    from smartunion.security import checkpoints as cps

    settings = _settings()
    key = _crypto(settings).ring.audit_key
    path = settings.audit_checkpoint_file
    with user_errors():
        db = _db(settings)
        if seal:
            audit.seal_all(db.session, key)
        with db.session() as s:
            try:
                cps.reconcile(path, key, s)  # a restore whose line a crash kept from the file
                log = cps.read_log(path, key)
            except cps.CheckpointDamaged as exc:
                _audit_broken(f"[red]audit checkpoint file damaged:[/red] {exc}")
            result = audit.verify(s, key, checkpoints=log.checkpoints)
            broken = result.broken
            if broken is not None:
                _audit_broken(
                    f"[red]audit trail broken at event {broken.event_id}:[/red] {broken.reason} "
                    f"({result.sealed} chained events before it are intact)"
                )
            gone = cps.missing_restores(s, log)
            if gone:
                _audit_broken(f"[red]audit trail broken:[/red] {gone}")
            began = s.scalar(select(func.min(AuditEvent.occurred_at)))
            fresh = cps.freshness(
                log,
                path,
                trail_began=began,
                max_age_hours=settings.audit_checkpoint_max_age_hours,
            )
            if fresh.level == "fail":
                _audit_broken(f"[red]audit checkpoints:[/red] {fresh.message}")
            if checkpoint and log.entries:
                cps.append(path, key, s)
    console.print(f"audit trail intact: {result.checked} events verified", highlight=False)
    if result.unsealed:
        oldest = result.oldest_unsealed.isoformat() if result.oldest_unsealed else "?"
        console.print(
            f"{result.unsealed} of them committed but not yet chained (oldest {oldest}); "
            "each carries its own seal, checked; the server's sealer links them shortly"
        )
    for line in cps.describe_restores(log):
        console.print(line, highlight=False)
    if fresh.level == "warn":
        err.print(f"[yellow]warning:[/yellow] {fresh.message}", highlight=False)
    else:
        console.print(fresh.message, highlight=False)


def _audit_broken(message: str) -> None:
    err.print(message, highlight=False)
    raise typer.Exit(code=2)


@audit_app.command("seal")
def audit_seal() -> None:
    """Link committed events into the chain now (the server does it every half second)."""
    settings = _settings()
    key = _crypto(settings).ring.audit_key
    with user_errors():
        sealed = audit.seal_all(_db(settings).session, key)
    console.print(f"sealed {sealed} events")


@audit_app.command("checkpoint")
def audit_checkpoint() -> None:
    """Record the chain head in the checkpoint file, starting the file if there is none (the
    server writes them by itself; run this from cron where no server runs)."""
    from smartunion.security import checkpoints as cps

    settings = _settings()
    key = _crypto(settings).ring.audit_key
    path = settings.audit_checkpoint_file
    syslog = cps.syslog_logger(settings.audit_checkpoint_syslog)
    with user_errors():
        db = _db(settings)
        audit.seal_all(db.session, key)
        with db.session() as s:
            restored = cps.reconcile(path, key, s, create=True, syslog=syslog)
            entry = cps.append(path, key, s, create=True, syslog=syslog)
    if restored is not None:
        console.print(cps.describe_restores(cps.CheckpointLog([], [], [restored]))[0])
    if entry is not None:
        console.print(
            f"checkpoint at event {entry.event_id} (epoch {entry.epoch}, line {entry.n}) in {path}",
            highlight=False,
        )


def _bar() -> Progress:
    return Progress(
        TextColumn("{task.description:<18}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


@keys_app.command("rotate")
def keys_rotate(
    resume: Annotated[
        bool, typer.Option(help="Finish an interrupted rotation instead of starting a new one")
    ] = False,
    batch: Annotated[int, typer.Option(min=100, help="Rows per committed batch")] = 5_000,
    retire_old: Annotated[
        bool, typer.Option(help="Afterwards drop old keys no row needs any more")
    ] = False,
) -> None:
    """Re-encrypt every personal field to a new key (online, resumable, audited)."""
    from smartunion.security import rotation
    from smartunion.security.keys import retired_file

    settings = _settings()
    if retire_old:
        err.print(
            "[yellow]warning:[/yellow] --retire-old removes old keys from the key file once no "
            "row needs them. Backups made before this rotation need them: they are kept in "
            f"{retired_file(settings.key_file)}, which `smartunion restore` reads. Back up that "
            "file and the new key file together now.",
            highlight=False,
        )
    with user_errors():
        db = _db(settings)
        if resume:
            current = _crypto(settings).ring.current
            if rotation.versions_in_use(db) <= {current}:
                raise fail(
                    f"no rotation in progress: every stored value is on data key {current} "
                    "(run without --resume to start one)"
                )
        with _bar() as progress:
            tasks: dict[str, Any] = {}

            def report(name: str, done: int, total: int) -> None:
                if name not in tasks:
                    tasks[name] = progress.add_task(name, total=total)
                progress.update(tasks[name], completed=done, total=total)

            result = rotation.rotate(
                db,
                settings.key_file,
                cipher=settings.cipher,
                resume=resume,
                batch=batch,
                retire_old=retire_old,
                progress=report,
            )
    console.print(
        f"now on data key {result.data_version} / blind key {result.blind_version}: "
        f"{sum(result.rewritten.values())} values re-encrypted in {result.seconds:.1f} s "
        f"({result.rows_per_second:,.0f}/s)"
        + (f", retired key versions {result.retired}" if result.retired else "")
    )
    if result.retired:
        console.print(
            f"retired keys archived in {retired_file(settings.key_file)}: back it up with the "
            "key file",
            highlight=False,
        )


@keys_app.command("status")
def keys_status() -> None:
    """Key versions in the key file and the versions stored data still uses."""
    from smartunion.security import rotation

    settings = _settings()
    with user_errors():
        ring = load_keyring(settings.key_file, create=False)
        used = rotation.versions_in_use(_db(settings))
    for version, key in sorted(ring.data_keys.items()):
        mark = "current" if version == ring.current else ("in use" if version in used else "unused")
        console.print(f"data key {version}: {key.cipher} ({mark})")
    for version, blind in sorted(ring.blind_keys.items()):
        mark = "current" if version == ring.blind_current else "old"
        console.print(f"blind-index key {version}: {blind.algorithm} ({mark})")


@export_app.command("members")
def export_members(
    org: Annotated[str, typer.Option("--org", help="Organisation code: its whole subtree")],
    out: Annotated[Path, typer.Option("--out", help="File to write")],
    user: Annotated[str, typer.Option("--user", help="Account the export is made for")],
    file_format: Annotated[str, typer.Option("--format", help="csv or xlsx")] = "xlsx",
    unmasked: Annotated[bool, typer.Option(help="Plaintext fields (needs approval)")] = False,
    reason: Annotated[str, typer.Option(help="Why (required when unmasked)")] = "",
    request: Annotated[
        int | None, typer.Option(help="Download this approved request instead of asking anew")
    ] = None,
    encoding: Annotated[str, typer.Option(help="CSV encoding: utf-8-sig or gb18030")] = "utf-8-sig",
) -> None:
    """Export the member list, masked by default. Over the threshold it waits for approval."""
    import smartunion.datasets  # noqa: F401  (registers the datasets)
    from smartunion.security import exports

    if file_format not in ("csv", "xlsx"):
        raise fail("--format must be csv or xlsx")
    if encoding not in ("utf-8-sig", "gb18030"):
        raise fail("--encoding must be utf-8-sig or gb18030")
    settings = _settings()
    crypto = _crypto(settings)
    with user_errors(), _db(settings).session() as s:
        principal = identity.principal_for(s, user)
        if request is None:
            target = s.scalar(select(UnionOrg).where(UnionOrg.code == org.strip().upper()))
            if target is None:
                raise fail(f"no organisation with code {org}")
            created = exports.request_export(
                s,
                principal,
                exports.ExportPolicy.from_settings(settings),
                dataset="members",
                org_id=target.id,
                filters={},
                file_format=file_format,  # type: ignore[arg-type]
                unmasked=unmasked,
                reason=reason,
            )
            if created.status != "approved":
                console.print(
                    f"export {created.id} ({created.record_count} records) awaits approval by a "
                    f"second person; then run again with --request {created.id}"
                )
                raise typer.Exit(code=3)
            request = created.id
        file = exports.download(
            s, principal, crypto, request, lang=settings.language, encoding=encoding
        )
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(file.content)
    console.print(f"wrote {file.records} records to {out} (sha256 {file.sha256[:16]}…)")


@app.command()
def purge(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count, change nothing")] = False,
) -> None:
    """Apply the retention rules (run daily): old sessions, counters, requests; anonymise
    members who left more than three years ago."""
    from smartunion.privacy.retention import purge as run_purge

    settings = _settings()
    with user_errors(), _db(settings).session() as s:
        counts = run_purge(s, _crypto(settings), dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    for name, n in counts.items():
        console.print(f"{name}: {verb} {n}")


_register_ops()
