"""Encryption and blind indexes for chunks of members, in this process or in a helper.

Encrypting and hashing two fields costs ≈ 7–8 s per million members (one AES-GCM call
and one keyed hash per value, in C, but called from Python). The SQLite load is bound to
one core anyway, so on a 2-core machine a second process encrypts chunk k+1 while the
main one inserts chunk k. The key ring goes to the helper once, at start-up, through a
spawned process (never inherited by fork from a process holding an open database
connection); per chunk only integers go over, and ciphertexts and hashes come back, so
plaintext ID numbers and phones exist only inside the process that encrypts them.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
from concurrent.futures import Future, ProcessPoolExecutor
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from smartunion.generate.people import id_number_strings, phone_strings
from smartunion.members.models import ID_NUMBER, PHONE
from smartunion.security.crypto import FieldCrypto
from smartunion.security.keys import KeyRing

IntArray = npt.NDArray[np.int64]
ID_FIELD = ID_NUMBER.name
PHONE_FIELD = PHONE.name


class Encrypted(NamedTuple):
    id_enc: list[bytes]
    id_bidx: list[str]
    phone_enc: list[bytes | None]
    phone_bidx: list[str | None]


def encrypt_chunk(crypto: FieldCrypto, id_bodies: IntArray, phone_numbers: IntArray) -> Encrypted:
    """Build the chunk's ID numbers and phones from their digits, then protect them.

    Only numbers cross the process boundary (cheap to pickle); the strings are made on
    the side that encrypts them, which takes that work off the inserting process too.
    """
    ids = id_number_strings(id_bodies)
    phones = phone_strings(phone_numbers)
    present = [i for i, p in enumerate(phones) if p is not None]
    values = [phones[i] or "" for i in present]
    phone_enc: list[bytes | None] = [None] * len(phones)
    phone_bidx: list[str | None] = [None] * len(phones)
    for i, blob, digest in zip(
        present,
        crypto.encrypt_many(values, PHONE_FIELD),
        crypto.blind_index_many(values, PHONE_FIELD),
        strict=True,
    ):
        phone_enc[i] = blob
        phone_bidx[i] = digest
    return Encrypted(
        crypto.encrypt_many(ids, ID_FIELD),
        crypto.blind_index_many(ids, ID_FIELD),
        phone_enc,
        phone_bidx,
    )


_worker_crypto: FieldCrypto | None = None


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(parent_pid: int) -> None:
    """Make this process end when ``parent_pid`` does, even by kill -9 (Linux: the kernel
    sends SIGKILL on the parent's death). A helper holds the key ring in memory and must not
    outlive the command that started it; nor must multiprocessing's resource tracker, which
    ends by itself once every process holding its pipe (this one included) is gone."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent_pid:  # the parent died before the line above
        os._exit(1)
    # Ctrl-C goes to the whole process group: the parent handles it and shuts this down.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _init_worker(ring: KeyRing, parent_pid: int) -> None:
    global _worker_crypto
    die_with_parent(parent_pid)
    _worker_crypto = FieldCrypto(ring)


def _encrypt_in_worker(id_bodies: IntArray, phone_numbers: IntArray) -> Encrypted:
    if _worker_crypto is None:  # pragma: no cover - the initializer always runs first
        raise RuntimeError("encryption worker was not initialised")
    return encrypt_chunk(_worker_crypto, id_bodies, phone_numbers)


def _ready() -> bool:
    return _worker_crypto is not None


class Encryptor:
    """Submits chunks for encryption; with ``workers=0`` does the work on ``result``."""

    def __init__(self, crypto: FieldCrypto, workers: int) -> None:
        self.crypto = crypto
        self._pool: ProcessPoolExecutor | None = None
        self._inline: dict[int, tuple[IntArray, IntArray]] = {}
        self._futures: dict[int, Future[Encrypted]] = {}
        if workers > 0:
            self._pool = ProcessPoolExecutor(
                max_workers=workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                initargs=(crypto.ring, os.getpid()),
            )
            # Executors start their processes on the first submit: do it now, so the
            # helper boots while the plan is drawn (and is forked while this process is
            # still small).
            self._pool.submit(_ready)

    def submit(
        self, key: int, id_bodies: IntArray, phone_numbers: IntArray, *, here: bool = False
    ) -> None:
        """Queue a chunk; ``here`` keeps it in this process (e.g. while the helper boots)."""
        if self._pool is None or here:
            self._inline[key] = (id_bodies, phone_numbers)
        else:
            self._futures[key] = self._pool.submit(_encrypt_in_worker, id_bodies, phone_numbers)

    def result(self, key: int) -> Encrypted:
        if key in self._inline:
            id_bodies, phone_numbers = self._inline.pop(key)
            return encrypt_chunk(self.crypto, id_bodies, phone_numbers)
        return self._futures.pop(key).result()

    def close(self) -> None:
        if self._pool is not None:
            for future in self._futures.values():
                future.cancel()
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
