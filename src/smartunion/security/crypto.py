"""Field encryption (authenticated, versioned) and keyed blind indexes.

Ciphertext layout: ``b"\\x01" | key version (2 bytes, big endian) | nonce (12) | ciphertext+tag``.
The associated data binds a ciphertext to its field (e.g. ``member.id_number``) so that a
value copied into another column fails to decrypt.

Blind index: a keyed hash over the field name and the normalised value, 128 bits, hex. It
allows exact lookup (``WHERE id_number_bidx = :h``) without storing or logging the
plaintext. The default is keyed BLAKE2b (a MAC by RFC 7693), ~4x faster per value than
HMAC-SHA256 in CPython, which matters when a million members are indexed or re-indexed on
key rotation; the national profile uses HMAC-SM3.

During a key rotation rows carry either the old or the new blind index, so lookups use
:meth:`FieldCrypto.blind_indexes` (one hash per key version still present).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from smartunion.security.keys import BlindKey, DataKey, KeyRing, load_keyring
from smartunion.security.keys import Cipher as CipherName

_FORMAT = 1
_HEADER = struct.Struct(">BH")
_NONCE = 12
_TAG = 16


class DecryptionError(RuntimeError):
    pass


class _Aead(Protocol):
    def encrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None) -> bytes: ...
    def decrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None) -> bytes: ...


class SM4GCM:
    """SM4 (GB/T 32907-2016) in GCM mode with AESGCM's interface (ciphertext || tag)."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 16:
            raise ValueError("SM4 keys are 128 bits")
        self._key = key

    def encrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None) -> bytes:
        enc = Cipher(algorithms.SM4(self._key), modes.GCM(nonce)).encryptor()
        if associated_data:
            enc.authenticate_additional_data(associated_data)
        return enc.update(data) + enc.finalize() + enc.tag

    def decrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None) -> bytes:
        if len(data) < _TAG:
            raise InvalidTag
        dec = Cipher(algorithms.SM4(self._key), modes.GCM(nonce, data[-_TAG:])).decryptor()
        if associated_data:
            dec.authenticate_additional_data(associated_data)
        return dec.update(data[:-_TAG]) + dec.finalize()


def _aead(key: DataKey) -> _Aead:
    if key.cipher == "aes-256-gcm":
        return AESGCM(key.key)
    return SM4GCM(key.key)


def _blind_state(key: BlindKey, field: str) -> Callable[[bytes], str]:
    # The field name is mixed in so equal values in different fields do not share a hash.
    prefix = field.encode() + b"\x00"
    if key.algorithm == "blake2b":
        base_b = hashlib.blake2b(key=key.key, digest_size=16)
        base_b.update(prefix)

        def digest_b(value: bytes) -> str:
            h = base_b.copy()
            h.update(value)
            return h.hexdigest()

        return digest_b
    base_h = hmac.new(key.key, prefix, "sm3")

    def digest_h(value: bytes) -> str:
        h = base_h.copy()
        h.update(value)
        return h.hexdigest()[:32]

    return digest_h


class FieldCrypto:
    """Encrypts, decrypts and blind-indexes personal fields with the current key ring.

    Built from a key file, it re-reads the file when it changes (checked at most every
    ``reload_seconds``), so a running server picks up a rotated key without a restart.
    """

    def __init__(
        self, ring: KeyRing, *, path: Path | None = None, reload_seconds: float = 2.0
    ) -> None:
        self._path = path
        self._reload_seconds = reload_seconds
        self._checked_at = time.monotonic()
        self._mtime = path.stat().st_mtime_ns if path else 0
        self._set(ring)

    @classmethod
    def from_file(
        cls, path: Path, *, cipher: CipherName = "aes-256-gcm", reload_seconds: float = 2.0
    ) -> FieldCrypto:
        """Load the key file (it must exist: see ``security.keycheck``) and follow its changes."""
        return cls(load_keyring(path), path=path, reload_seconds=reload_seconds)

    def _set(self, ring: KeyRing) -> None:
        self._ring = ring
        self._aeads = {v: _aead(k) for v, k in ring.data_keys.items()}

    @property
    def ring(self) -> KeyRing:
        if self._path is not None and time.monotonic() - self._checked_at > self._reload_seconds:
            self._checked_at = time.monotonic()
            mtime = self._path.stat().st_mtime_ns
            if mtime != self._mtime:
                self._mtime = mtime
                self._set(load_keyring(self._path, create=False))
        return self._ring

    def reload(self) -> None:
        if self._path is not None:
            self._mtime = self._path.stat().st_mtime_ns
            self._set(load_keyring(self._path, create=False))

    def encrypt(self, plaintext: str, field: str) -> bytes:
        return self.encrypt_many([plaintext], field)[0]

    def encrypt_many(self, plaintexts: Sequence[str], field: str) -> list[bytes]:
        version = self.ring.current
        aead = self._aeads[version]
        header = _HEADER.pack(_FORMAT, version)
        aad = field.encode()
        nonces = os.urandom(_NONCE * len(plaintexts))
        out = []
        for i, text in enumerate(plaintexts):
            nonce = nonces[i * _NONCE : (i + 1) * _NONCE]
            out.append(header + nonce + aead.encrypt(nonce, text.encode(), aad))
        return out

    def decrypt(self, blob: bytes, field: str) -> str:
        if len(blob) < _HEADER.size + _NONCE + _TAG:
            raise DecryptionError(f"{field}: ciphertext too short")
        fmt, version = _HEADER.unpack_from(blob)
        if fmt != _FORMAT:
            raise DecryptionError(f"{field}: unknown ciphertext format {fmt}")
        self.ring  # noqa: B018 (picks up a rotated key file before looking the version up)
        aead = self._aeads.get(version)
        if aead is None:
            raise DecryptionError(f"{field}: key version {version} is not in the key file")
        nonce = blob[_HEADER.size : _HEADER.size + _NONCE]
        try:
            return aead.decrypt(nonce, blob[_HEADER.size + _NONCE :], field.encode()).decode()
        except InvalidTag as exc:
            raise DecryptionError(f"{field}: ciphertext failed authentication") from exc

    @staticmethod
    def key_version(blob: bytes) -> int:
        return int(_HEADER.unpack_from(blob)[1])

    def blind_index(self, normalised: str, field: str) -> str:
        return self.blind_index_many([normalised], field)[0]

    def blind_index_many(
        self, values: Sequence[str], field: str, *, version: int | None = None
    ) -> list[str]:
        ring = self.ring
        digest = _blind_state(ring.blind_keys[version or ring.blind_current], field)
        return [digest(v.encode()) for v in values]

    def blind_indexes(self, normalised: str, field: str) -> list[str]:
        """The value's hash under every blind-index key present: lookups during rotation."""
        ring = self.ring
        return [
            _blind_state(key, field)(normalised.encode())
            for _, key in sorted(ring.blind_keys.items(), reverse=True)
        ]
