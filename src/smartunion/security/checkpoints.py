"""Audit checkpoints (审计检查点): the chain head, written outside the database, chained and signed.

The audit chain shows any change inside the trail, but not a removed *tail*: the last events
and their links can go together. A checkpoint records the head (``seq`` and ``hash``) in a
file the database's writer should not be able to reach (``SMARTUNION_AUDIT_CHECKPOINT_PATH``,
ideally on another host) and, optionally, in syslog. ``audit verify`` then requires every
checkpointed event to still be there, unchanged.

Each line is JSON with

- ``n`` (its line number), ``prev`` (SHA-256 of the line before it, ``GENESIS`` for the
  first), so that a removed, changed, inserted or reordered line breaks the file's own chain;
- ``mac``: HMAC-SHA256 over the rest with a key derived from the key file's signing key, so
  no one without the key file can write a valid line;
- ``kind``: ``start`` (a file begun by ``init`` or ``audit checkpoint``), ``head`` (written
  by the server's sealer every N events or minutes, by every clean ``audit verify`` and by
  ``audit checkpoint``) or ``restore``;
- ``epoch``: a restore in place replaces the trail by an older one, so checkpoints of events
  after the backup name events that no longer exist. The restore is recorded in the trail (a
  sealed ``backup.restore`` event naming the restored head and the replaced one), and its
  ``restore`` line starts a new epoch from the restored head, naming the discarded range. A
  legitimate restore therefore verifies; a truncation by someone without the key file has
  no such event and no such line, and still fails.

Writers append one whole line with one ``write`` under an exclusive ``flock`` of the file
(several server processes write to it), fsync, and on failure cut the file back to its old
length; a torn last line (a crash mid-write) is dropped by readers and cut off by the next
writer. What a writer cannot see is someone who *also* removes the file's last lines: the
file's age (``verify`` fails past ``SMARTUNION_AUDIT_CHECKPOINT_MAX_AGE_HOURS``) and the
syslog copy are the defence there (``docs/security.md``).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import hmac
import json
import logging
import logging.handlers
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from smartunion.db import utcnow
from smartunion.security.models import AuditEvent

if TYPE_CHECKING:
    from smartunion.config import Settings

log = logging.getLogger("smartunion.audit")

FORMAT = 2
GENESIS = "0" * 64
RESTORE_ACTION = "backup.restore"
Kind = Literal["start", "head", "restore"]
_TAIL_BYTES = 64 * 1024  # far more than one line: the last line is always inside it


class CheckpointDamaged(ValueError):
    """A whole line of the file fails its seal or its link: damaged or forged."""


class NoCheckpointFile(RuntimeError):
    """Automatic writers only append: starting a file is an operator's act."""


@dataclass(frozen=True)
class Checkpoint:
    event_id: int
    hash: str


@dataclass(frozen=True)
class Entry:
    """One line of the checkpoint file."""

    n: int
    kind: Kind
    epoch: int
    event_id: int
    hash: str
    at: dt.datetime
    raw: str = field(repr=False)
    restore_uid: str | None = None
    discarded: tuple[int, int] | None = None
    legacy: bool = False

    def age(self, now: dt.datetime | None = None) -> dt.timedelta:
        return (now or utcnow()) - self.at


@dataclass(frozen=True)
class CheckpointLog:
    """What the file says: its lines, and the checkpoints the trail must still match."""

    entries: list[Entry]
    checkpoints: list[Checkpoint]
    restores: list[Entry]

    @property
    def latest(self) -> Entry | None:
        return self.entries[-1] if self.entries else None

    @property
    def epoch(self) -> int:
        return self.entries[-1].epoch if self.entries else 0


def line_key(audit_key: bytes) -> bytes:
    """The key of the lines' MACs: derived from the audit key (itself from the signing key)."""
    return hmac.new(audit_key, b"smartunion-audit-checkpoint-v2", "sha256").digest()


def _dump(data: dict[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _sha(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def _legacy_mac(key: bytes, event_id: int, event_hash: str) -> str:
    return hmac.new(key, f"checkpoint:{event_id}:{event_hash}".encode(), "sha256").hexdigest()


def _complete_lines(text: str) -> list[str]:
    """The complete lines. A last piece without its newline is what a full disk or a crash
    leaves of an append: it was never written, so it is dropped, not an error."""
    return text.split("\n")[:-1]


def _parse(key: bytes, raw: str, lineno: int, prev: Entry | None, where: str) -> Entry:
    damaged = CheckpointDamaged(f"{where}:{lineno}: checkpoint line is damaged or forged")
    try:
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise damaged
        if "v" not in data:  # format 1: unchained lines, accepted only before any chained one
            if prev is not None and not prev.legacy:
                raise damaged
            event_id, event_hash = int(data["event_id"]), str(data["hash"])
            ok = hmac.compare_digest(str(data["mac"]), _legacy_mac(key, event_id, event_hash))
            at = dt.datetime.fromisoformat(str(data["at"])) if "at" in data else utcnow()
            if not ok:
                raise damaged
            return Entry(lineno, "head", 0, event_id, event_hash, at, raw, legacy=True)
        mac = str(data.pop("mac"))
        expected = hmac.new(line_key(key), _dump(data).encode(), "sha256").hexdigest()
        if not hmac.compare_digest(mac, expected):
            raise damaged
        entry = Entry(
            n=int(data["n"]),
            kind=data["kind"],
            epoch=int(data["epoch"]),
            event_id=int(data["event_id"]),
            hash=str(data["hash"]),
            at=dt.datetime.fromisoformat(str(data["at"])),
            raw=raw,
            restore_uid=data.get("restore_uid"),
            discarded=(
                (int(data["discarded_from"]), int(data["discarded_to"]))
                if data.get("discarded_from") is not None
                else None
            ),
        )
    except CheckpointDamaged:
        raise
    except (ValueError, KeyError, TypeError):
        raise damaged from None
    # The file's own chain: a removed, inserted, reordered or copied line breaks it here.
    expected_prev = _sha(prev.raw) if prev is not None else GENESIS
    if data.get("prev") != expected_prev or entry.n != lineno:
        raise CheckpointDamaged(
            f"{where}:{lineno}: checkpoint line does not follow the line before it "
            "(a line was removed, inserted or moved)"
        )
    before = prev.epoch if prev is not None else 0
    if entry.epoch != (before + 1 if entry.kind == "restore" else before):
        raise damaged
    return entry


def parse_log(text: str, key: bytes, *, where: str = "checkpoints") -> CheckpointLog:
    entries: list[Entry] = []
    for raw in _complete_lines(text):
        if not raw.strip():
            continue
        entries.append(_parse(key, raw, len(entries) + 1, entries[-1] if entries else None, where))
    return _effective(entries)


def _effective(entries: list[Entry]) -> CheckpointLog:
    """Checkpoints the trail must match: a restore discards those after its restored head
    and checks everything up to it, from the head itself on."""
    active: list[Checkpoint] = []
    restores: list[Entry] = []
    for e in entries:
        if e.kind == "restore":
            restores.append(e)
            active = [c for c in active if c.event_id <= e.event_id]
        if e.event_id > 0:
            active.append(Checkpoint(e.event_id, e.hash))
    return CheckpointLog(entries, active, restores)


def read_log(path: Path, key: bytes) -> CheckpointLog:
    """The checkpoint file, checked line by line; ``CheckpointDamaged`` names a bad line."""
    if not path.exists():
        return CheckpointLog([], [], [])
    text = path.read_text(encoding="utf-8", errors="replace")
    return parse_log(text, key, where=str(path))


def read_checkpoints(path: Path, key: bytes) -> list[Checkpoint]:
    return read_log(path, key).checkpoints


def _head(session: Session) -> tuple[int, str]:
    from smartunion.security.audit import chain_head

    return chain_head(session)


@contextmanager
def _locked(path: Path, *, create: bool) -> Iterator[int]:
    flags = os.O_RDWR | (os.O_CREAT if create else 0)
    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, flags, 0o600)
    except FileNotFoundError:
        raise NoCheckpointFile(
            f"no checkpoint file at {path}: start one with `smartunion audit checkpoint`"
        ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # several server processes write to the same file
        yield fd
    finally:
        os.close(fd)  # releases the lock


def _last_entry(fd: int, key: bytes, path: Path) -> tuple[Entry | None, int]:
    """The file's last whole line (its seal and its link to the line before checked) and the
    length of the whole lines; a torn piece after them is cut off here, before anything is
    appended after it. Only the tail is read: the file grows for years."""
    size = os.fstat(fd).st_size
    start = max(0, size - _TAIL_BYTES)
    os.lseek(fd, start, os.SEEK_SET)
    tail = b""
    while len(tail) < size - start:
        chunk = os.read(fd, size - start - len(tail))
        if not chunk:
            break
        tail += chunk
    end = tail.rfind(b"\n")
    whole = start + end + 1 if end >= 0 else 0
    if whole < size:
        os.ftruncate(fd, whole)
    lines = [ln for ln in tail[: end + 1].decode("utf-8", errors="replace").split("\n")[:-1]]
    lines = [ln for ln in lines if ln.strip()]
    if not lines:
        return None, whole
    try:
        data = json.loads(lines[-1])
        if len(lines) == 1 and start == 0:
            prev = None
        else:
            before = json.loads(lines[-2])
            prev = Entry(
                int(data.get("n", 1)) - 1,
                before.get("kind", "head"),
                int(before.get("epoch", 0)),
                0,
                "",
                utcnow(),
                lines[-2],
                legacy="v" not in before,
            )
        n = int(data["n"]) if "n" in data else (prev.n + 1 if prev else 1)
    except (ValueError, KeyError, TypeError, AttributeError):
        raise CheckpointDamaged(f"{path}: the last checkpoint line is damaged or forged") from None
    return _parse(key, lines[-1], n, prev, str(path)), whole


def _write_line(
    fd: int, whole: int, key: bytes, last: Entry | None, fields: dict[str, Any]
) -> Entry:
    data = {
        "v": FORMAT,
        "n": (last.n if last else 0) + 1,
        "prev": _sha(last.raw) if last else GENESIS,
        "at": utcnow().isoformat(),
        **fields,
    }
    data = {k: v for k, v in data.items() if v is not None}
    data["mac"] = hmac.new(line_key(key), _dump(data).encode(), "sha256").hexdigest()
    raw = _dump(data)
    payload = (raw + "\n").encode("utf-8")
    try:
        os.lseek(fd, whole, os.SEEK_SET)
        written = os.write(fd, payload)
        if written != len(payload):
            raise OSError(28, "No space left on device (short write)")
        os.fsync(fd)
    except BaseException:
        os.ftruncate(fd, whole)  # whole or absent: never a torn line to append after
        raise
    entry = _parse(key, raw, data["n"], last, "checkpoints")
    return entry


Due = Callable[[Entry | None, int], bool]


def append(
    path: Path,
    key: bytes,
    session: Session,
    *,
    create: bool = False,
    due: Due | None = None,
    syslog: logging.Logger | None = None,
) -> Entry | None:
    """Append the chain head. ``create``: start the file if there is none (operators' commands;
    the server only appends). ``due(last entry, head seq)``: write only if it says so."""
    with _locked(path, create=create) as fd:
        last, whole = _last_entry(fd, key, path)
        seq, head = _head(session)
        if due is not None and not due(last, seq):
            return None
        kind: Kind = "start" if last is None else "head"
        entry = _write_line(
            fd,
            whole,
            key,
            last,
            {"kind": kind, "epoch": last.epoch if last else 0, "event_id": seq, "hash": head},
        )
    _mirror(syslog, entry)
    return entry


def _latest_restore(session: Session) -> AuditEvent | None:
    return session.scalar(
        select(AuditEvent)
        .where(AuditEvent.action == RESTORE_ACTION)
        .order_by(AuditEvent.id.desc())
        .limit(1)
    )


def reconcile(
    path: Path,
    key: bytes,
    session: Session,
    *,
    create: bool = False,
    syslog: logging.Logger | None = None,
) -> Entry | None:
    """After a restore in place: start a new epoch at the restored head, naming what the
    restore discarded. Runs after every restore and before every checkpoint, so a crash
    between a restore's commit and its line heals at the next writer. Only a sealed-on-append
    ``backup.restore`` event that passes its own seal counts: nobody without the key file can
    make one."""
    from smartunion.security.audit import _mac_ok

    event = _latest_restore(session)
    if event is None or not _mac_ok(key, event):
        return None
    details = event.details or {}
    restored = details.get("restored_head")
    if not isinstance(restored, dict):
        return None  # a restore from before epochs: nothing to reconcile from
    if not path.exists() and not create:
        return None
    base, base_hash = int(restored["seq"]), str(restored["hash"])
    replaced = details.get("replaced_head") or {}
    with _locked(path, create=create) as fd:
        last, whole = _last_entry(fd, key, path)
        current = read_log(path, key)  # under the lock: two writers never both reconcile
        if any(r.restore_uid == event.uid for r in current.restores):
            return None
        beyond = [c.event_id for c in current.checkpoints if c.event_id > base]
        last_gone = max([*beyond, int(replaced.get("seq", 0) or 0)], default=0)
        discarded = (base + 1, last_gone) if last_gone > base else None
        entry = _write_line(
            fd,
            whole,
            key,
            last,
            {
                "kind": "restore",
                "epoch": (last.epoch if last else 0) + 1,
                "event_id": base,
                "hash": base_hash,
                "restore_uid": event.uid,
                "discarded_from": discarded[0] if discarded else None,
                "discarded_to": discarded[1] if discarded else None,
            },
        )
    _mirror(syslog, entry)
    return entry


def missing_restores(session: Session, log_: CheckpointLog) -> str | None:
    """A restore line whose ``backup.restore`` event is no longer in the trail: the trail was
    cut back to before the restore (or the line belongs to another database)."""
    uids = [r.restore_uid for r in log_.restores if r.restore_uid]
    if not uids:
        return None
    present = set(session.scalars(select(AuditEvent.uid).where(AuditEvent.uid.in_(uids))))
    for r in log_.restores:
        if r.restore_uid and r.restore_uid not in present:
            return (
                f"the restore recorded by checkpoint line {r.n} (epoch {r.epoch}) is gone from "
                "the trail (trail truncated)"
            )
    return None


# --- syslog: a copy of every line on another host ------------------------------------------


def syslog_logger(target: str) -> logging.Logger | None:
    """``""``: none; a path: a local syslog socket (``/dev/log``); ``host:port``: UDP."""
    if not target:
        return None
    address: str | tuple[str, int]
    if target.startswith("/"):
        address = target
    else:
        host, _, port = target.rpartition(":")
        address = (host or "localhost", int(port or 514))
    logger = logging.getLogger(f"smartunion.audit.checkpoint.{target}")
    if not logger.handlers:
        handler = logging.handlers.SysLogHandler(
            address=address,
            facility=logging.handlers.SysLogHandler.LOG_AUTH,
            socktype=socket.SOCK_DGRAM,
        )
        handler.setFormatter(logging.Formatter("smartunion-audit-checkpoint: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    return logger


def _mirror(syslog: logging.Logger | None, entry: Entry) -> None:
    if syslog is not None:
        try:
            syslog.info(entry.raw)
        except Exception:  # the file holds the line; a syslog outage must not stop sealing
            log.exception("audit: could not send a checkpoint to syslog")


# --- the automatic writer ------------------------------------------------------------------


class Checkpointer:
    """Writes a checkpoint every ``every_events`` new events, or every ``every_seconds`` when
    there are new ones, and a heartbeat every ``heartbeat_seconds`` when there are none (so an
    idle installation's checkpoint does not go stale). 0 turns a rule off."""

    def __init__(
        self,
        path: Path,
        key: bytes,
        *,
        every_events: int,
        every_seconds: float,
        heartbeat_seconds: float,
        syslog: logging.Logger | None = None,
    ) -> None:
        self.path = path
        self.key = key
        self.every_events = every_events
        self.every_seconds = every_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.syslog = syslog
        self._warned = False
        self._next_check = 0.0
        self._restore_seen: str | None = None

    def due(self, last: Entry | None, seq: int) -> bool:
        if last is None:
            return True
        new = seq - last.event_id
        age = last.age().total_seconds()
        if self.every_events and new >= self.every_events:
            return True
        if self.every_seconds and new > 0 and age >= self.every_seconds:
            return True
        return bool(self.heartbeat_seconds and age >= self.heartbeat_seconds)

    def tick(self, session: Session, *, now: float | None = None) -> Entry | None:
        """One round (the sealer calls it after sealing): at most one file check a second."""
        now = time.monotonic() if now is None else now
        if now < self._next_check:
            return None
        self._next_check = now + 1.0
        try:
            latest = session.scalar(
                select(AuditEvent.uid)
                .where(AuditEvent.action == RESTORE_ACTION)
                .order_by(AuditEvent.id.desc())
                .limit(1)
            )
            if latest is not None and latest != self._restore_seen:
                reconcile(self.path, self.key, session, syslog=self.syslog)
                self._restore_seen = latest
            return append(self.path, self.key, session, due=self.due, syslog=self.syslog)
        except NoCheckpointFile as exc:
            if not self._warned:  # said once per process, not every second
                log.warning("audit: %s; the server writes no checkpoints until then", exc)
                self._warned = True
            return None


def checkpointer_for(settings: Settings, key: bytes) -> Checkpointer:
    """The server's writer, as configured (``SMARTUNION_AUDIT_CHECKPOINT_*``)."""
    max_age = settings.audit_checkpoint_max_age_hours * 3600
    return Checkpointer(
        settings.audit_checkpoint_file,
        key,
        every_events=settings.audit_checkpoint_every_events,
        every_seconds=settings.audit_checkpoint_every_minutes * 60,
        # Idle: a heartbeat at half the age limit, so the limit is never reached by idling.
        heartbeat_seconds=max_age / 2,
        syslog=syslog_logger(settings.audit_checkpoint_syslog),
    )


# --- what verify says about the checkpoints ------------------------------------------------


@dataclass(frozen=True)
class Freshness:
    """``level``: ok, warn (no checkpoint yet, young trail) or fail (missing or too old)."""

    level: Literal["ok", "warn", "fail"]
    message: str


def _hours(delta: dt.timedelta) -> str:
    seconds = delta.total_seconds()
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def freshness(
    log_: CheckpointLog,
    path: Path,
    *,
    trail_began: dt.datetime | None,
    max_age_hours: float,
    now: dt.datetime | None = None,
) -> Freshness:
    now = now or utcnow()
    limit = dt.timedelta(hours=max_age_hours) if max_age_hours > 0 else None
    setting = f"SMARTUNION_AUDIT_CHECKPOINT_MAX_AGE_HOURS={max_age_hours:g}"
    latest = log_.latest
    if latest is None:
        if limit is not None and trail_began is not None and now - trail_began > limit:
            return Freshness(
                "fail",
                f"no audit checkpoint at {path}, and the trail began {_hours(now - trail_began)} "
                f"ago ({setting}): without its checkpoints a removed tail of the trail cannot be "
                "seen. If the file was moved, point SMARTUNION_AUDIT_CHECKPOINT_PATH at it; if "
                "it is lost, `smartunion audit checkpoint` starts a new one from today",
            )
        return Freshness(
            "warn",
            f"no audit checkpoint yet ({path} does not exist): verify cannot see a removed tail "
            "of the trail. Start one with `smartunion audit checkpoint` (`smartunion init` does "
            "on a new installation)",
        )
    age = now - latest.at
    where = f"event {latest.event_id}, epoch {latest.epoch}, line {latest.n} of {path}"
    if limit is not None and age > limit:
        return Freshness(
            "fail",
            f"the latest audit checkpoint ({where}) is {_hours(age)} old ({setting}): "
            "checkpoints stopped being written (no server, no cron), or the file's last lines "
            "were removed. Find out which; `smartunion audit checkpoint` writes a new one",
        )
    return Freshness(
        "ok",
        f"latest checkpoint: {where}, written {latest.at:%Y-%m-%d %H:%M} UTC ({_hours(age)} ago)",
    )


def describe_restores(log_: CheckpointLog) -> list[str]:
    out = []
    for r in log_.restores:
        gone = (
            f"events {r.discarded[0]}–{r.discarded[1]} of the replaced trail discarded"
            if r.discarded
            else "nothing discarded"
        )
        out.append(
            f"epoch {r.epoch}: restore of {r.at:%Y-%m-%d %H:%M} UTC, the trail continues from "
            f"event {r.event_id}; {gone}"
        )
    return out
