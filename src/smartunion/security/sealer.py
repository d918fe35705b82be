"""The audit sealer: links committed events into the chain, in batches, off the request path.

One runs in every server process (a daemon thread), and after sealing writes the audit
checkpoints when due (``security/checkpoints.py``). Several sealers, in several processes,
are safe: each batch takes the sealers' lock (``audit.seal_pending``), and requests never
take it. If the server dies, the next sealer (or any ``smartunion audit`` command) seals
what was left: nothing is lost, it is only sealed later.
"""

from __future__ import annotations

import logging
import threading

from smartunion.db import Database
from smartunion.security import audit
from smartunion.security.checkpoints import Checkpointer

log = logging.getLogger("smartunion.audit")


class AuditSealer:
    def __init__(
        self,
        db: Database,
        key: bytes,
        *,
        interval: float,
        checkpointer: Checkpointer | None = None,
    ) -> None:
        self.db = db
        self.key = key
        self.interval = interval
        self.checkpointer = checkpointer
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def seal_now(self) -> int:
        """Seal everything committed so far; return how many events were linked."""
        return audit.seal_all(self.db.session, self.key)

    def tick(self) -> None:
        """One round: seal, then write a checkpoint if one is due."""
        self.seal_now()
        if self.checkpointer is not None:
            with self.db.session() as session:
                self.checkpointer.tick(session)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="audit-sealer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        try:
            self.seal_now()
        except Exception:  # shutting down: the next sealer picks these up
            log.exception("audit: final seal failed; events stay unsealed until the next run")

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.tick()
            except Exception:
                # A busy or briefly unreachable database: the events wait, unsealed but
                # committed with their own seals, for the next round.
                log.exception("audit: sealing failed; retrying")
