"""Field encryption (authenticated, versioned) and keyed blind indexes.

Ciphertext layout: ``b"\\x01" | key version (2 bytes, big endian) | nonce (12) | ciphertext+tag``.
The associated data binds a ciphertext to its field (e.g. ``member.id_number``) so that a
value copied into another column fails to decrypt.

Blind index: keyed BLAKE2b (a MAC by RFC 7693, 128-bit output, hex) over the field name and
the normalised value. It allows exact lookup (``WHERE id_number_bidx = :h``) without storing or
logging the plaintext. BLAKE2b rather than HMAC-SHA256 because it is ~4x faster per value in
CPython, which matters when a million members are indexed or re-indexed on key rotation.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Sequence
from functools import cached_property

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from smartunion.security.keys import DataKey, KeyRing

_FORMAT = 1
_HEADER = struct.Struct(">BH")
_NONCE = 12


class DecryptionError(RuntimeError):
    pass


class FieldCrypto:
    def __init__(self, ring: KeyRing) -> None:
        self.ring = ring

    @cached_property
    def _aeads(self) -> dict[int, AESGCM]:
        return {v: _aead(k) for v, k in self.ring.data_keys.items()}

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
        if len(blob) < _HEADER.size + _NONCE + 16:
            raise DecryptionError(f"{field}: ciphertext too short")
        fmt, version = _HEADER.unpack_from(blob)
        if fmt != _FORMAT:
            raise DecryptionError(f"{field}: unknown ciphertext format {fmt}")
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
        return _bidx(self.ring.blind_index_key, normalised, field)

    def blind_index_many(self, values: Sequence[str], field: str) -> list[str]:
        base = _bidx_state(self.ring.blind_index_key, field)
        out = []
        for value in values:
            h = base.copy()
            h.update(value.encode())
            out.append(h.hexdigest())
        return out


def _bidx_state(key: bytes, field: str) -> hashlib.blake2b:
    # The field name is mixed in so equal values in different fields do not share a hash.
    state = hashlib.blake2b(key=key, digest_size=16)
    state.update(field.encode() + b"\x00")
    return state


def _bidx(key: bytes, value: str, field: str) -> str:
    state = _bidx_state(key, field)
    state.update(value.encode())
    return state.hexdigest()


def _aead(key: DataKey) -> AESGCM:
    if key.cipher == "aes-256-gcm":
        return AESGCM(key.key)
    raise NotImplementedError(f"cipher {key.cipher} is not available yet")
