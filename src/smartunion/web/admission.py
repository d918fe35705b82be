"""Admission control: a bounded number of requests at work, a short queue, then 503.

Each request at work holds at most one worker thread and one pooled connection at a time.
Admitting no more requests than there are threads and connections means none of them can
wait for a connection while holding a thread that another needs (the wedge at 40 clients:
40 threads, 20 connections). Past the queue, or after ``wait`` seconds in it, the answer
is ``503`` with ``Retry-After`` at once, instead of a 30-second hang; probes
(``/healthz``) and static files never queue.
"""

from __future__ import annotations

import json
import math

import anyio
from starlette.types import ASGIApp, Receive, Scope, Send

EXEMPT_PREFIXES = ("/healthz", "/static/")


class Gate:
    """The counters and slots of one process, shared by the middleware and ``/readyz``."""

    def __init__(self, *, limit: int, queue: int, wait: float) -> None:
        self.limit = limit
        self.queue = queue
        self.wait = wait
        self.active = 0
        self.waiting = 0
        self.refused = 0
        self.slots = anyio.Semaphore(limit)

    def snapshot(self) -> dict[str, int]:
        return {
            "active": self.active,
            "waiting": self.waiting,
            "limit": self.limit,
            "refused": self.refused,
        }


class Admission:
    def __init__(self, app: ASGIApp, *, gate: Gate) -> None:
        self.app = app
        self.gate = gate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gate = self.gate
        if scope["type"] != "http" or scope["path"].startswith(EXEMPT_PREFIXES):
            await self.app(scope, receive, send)
            return
        if gate.waiting >= gate.queue:
            await self._busy(send)
            return
        admitted = False
        gate.waiting += 1
        try:
            with anyio.move_on_after(gate.wait):
                await gate.slots.acquire()
                admitted = True
        finally:
            gate.waiting -= 1
        if not admitted:
            await self._busy(send)
            return
        gate.active += 1
        try:
            await self.app(scope, receive, send)
        finally:
            gate.active -= 1
            gate.slots.release()

    async def _busy(self, send: Send) -> None:
        self.gate.refused += 1
        body = json.dumps({"detail": "server busy: retry shortly"}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 503,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"retry-after", str(max(1, math.ceil(self.gate.wait))).encode()),
                    (b"cache-control", b"no-store"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
