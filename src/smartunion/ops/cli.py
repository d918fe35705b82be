"""``smartunion backup`` and ``smartunion restore``, added to the main app by :func:`register`.

``smartunion.cli`` imports this module to register the commands, so its helpers are imported
inside the functions (a module-level import would be circular), and so is the backup code
(pyarrow and the whole schema would otherwise load for every ``smartunion`` command).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from smartunion.ops.backup import BackupManifest, Progress


@contextmanager
def _progress() -> Iterator[Progress]:
    from smartunion.cli import _bar

    with _bar() as bar:
        tasks: dict[str, Any] = {}

        def report(name: str, done: int, total: int) -> None:
            if name not in tasks:
                tasks[name] = bar.add_task(name, total=total)
            bar.update(tasks[name], completed=done, total=total)

        yield report


def _summary(manifest: BackupManifest) -> str:
    mb = manifest.file_bytes / 1e6
    rate = manifest.total_rows / manifest.seconds if manifest.seconds else 0.0
    return (
        f"{manifest.total_rows:,} rows in {len(manifest.tables)} tables, {mb:,.1f} MB, "
        f"{manifest.seconds:.1f} s ({rate:,.0f} rows/s); manifest sha256 {manifest.digest[:16]}…"
    )


def backup(
    out: Annotated[
        Path, typer.Option("--out", help="Backup file to write (never overwritten)", dir_okay=False)
    ],
) -> None:
    """Write an encrypted, checksummed backup of the whole database.

    The key file is not in the backup, and restoring needs it: keep a copy elsewhere.
    """
    from smartunion.cli import _db, _settings, console, fail, user_errors
    from smartunion.ops.backup import BackupError, create_backup
    from smartunion.security.keys import load_keyring

    settings = _settings()
    with user_errors():
        # Never create a key file here: a new key could not read anything.
        ring = load_keyring(settings.key_file, create=False)
        db = _db(settings)
        try:
            with _progress() as report:
                manifest = create_backup(
                    db.engine, ring, out, progress=report, audit_alg=db.audit_alg
                )
        except BackupError as exc:
            raise fail(str(exc)) from None
        finally:
            db.engine.dispose()
    console.print(f"backup written to {out}: {_summary(manifest)}")
    console.print(f"restoring it needs the key file {settings.key_file} (not in the backup)")
    if manifest.audit_break:
        console.print(
            "[yellow]warning:[/yellow] the audit chain was already broken at "
            f"{manifest.audit_break}"
        )


def restore(
    file: Annotated[
        Path, typer.Argument(help="Backup file made by `smartunion backup`", dir_okay=False)
    ],
    force: Annotated[
        bool, typer.Option("--force", help="Replace the contents of a non-empty database")
    ] = False,
) -> None:
    """Restore a backup into an empty database (run `smartunion init` first), all or nothing."""
    from smartunion.cli import _db, _settings, console, fail, user_errors
    from smartunion.ops.backup import BackupError, MissingDataKeys, WrongKey, restore_backup
    from smartunion.security import audit
    from smartunion.security import checkpoints as cps
    from smartunion.security.keys import load_keyring, retired_file, save_keyring, with_retired

    settings = _settings()
    with user_errors():
        ring = load_keyring(settings.key_file, create=False)
        db = _db(settings)
        brought_back: list[int] = []
        try:
            try:
                with _progress() as report:
                    manifest = restore_backup(
                        db.engine, ring, file, force=force, progress=report, audit_alg=db.audit_alg
                    )
            except MissingDataKeys as exc:
                # Keys retired after the backup: from the archive back into the key file
                # (before the data that needs them; an extra key never hurts), then again.
                archive = retired_file(settings.key_file)
                widened = with_retired(ring, archive, set(exc.versions))
                if widened is None:
                    raise
                save_keyring(widened, settings.key_file)
                ring, brought_back = widened, exc.versions
                with _progress() as report:
                    manifest = restore_backup(
                        db.engine, ring, file, force=force, progress=report, audit_alg=db.audit_alg
                    )
        except WrongKey as exc:
            raise fail(f"{exc} (key file used: {settings.key_file})") from None
        except BackupError as exc:
            db.engine.dispose()
            raise fail(f"{exc}; the database was not changed") from None
        # Committed. The restore is in the trail; its checkpoint line starts a new epoch from
        # the restored head (if this fails, the next checkpoint writer writes it).
        audit.seal_all(db.session, ring.audit_key)
        with db.session() as s:
            epoch = cps.reconcile(
                settings.audit_checkpoint_file,
                ring.audit_key,
                s,
                create=True,
                syslog=cps.syslog_logger(settings.audit_checkpoint_syslog),
            )
        db.engine.dispose()
    console.print(
        f"restored {file} (made {manifest.created_at:%Y-%m-%d %H:%M} UTC from "
        f"{manifest.dialect}): {_summary(manifest)}"
    )
    console.print(
        f"verified: every chunk tag, counts and checksums of all {len(manifest.tables)} "
        f"tables, audit chain ({manifest.audit_events} events)"
    )
    if brought_back:
        console.print(
            f"retired data key version(s) {brought_back} taken back from "
            f"{retired_file(settings.key_file)} into {settings.key_file}: back the key file "
            "up again",
            highlight=False,
        )
    if epoch is not None:
        console.print(
            "audit checkpoints: " + cps.describe_restores(cps.CheckpointLog([], [], [epoch]))[0],
            highlight=False,
        )
    if manifest.audit_break:
        console.print(
            "[yellow]warning:[/yellow] the audit chain was already broken when backed up, at "
            f"{manifest.audit_break}"
        )


def register(app: typer.Typer) -> None:
    """Add ``backup`` and ``restore`` to the ``smartunion`` command."""
    app.command("backup")(backup)
    app.command("restore")(restore)
