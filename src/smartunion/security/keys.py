"""Key file: versioned data keys, blind-index keys and the signing key.

The file is JSON, created with mode 0600 on first use and never committed. Keys are
versioned so that ``smartunion keys rotate`` can move data to a new key while old
ciphertexts stay readable.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Cipher = Literal["aes-256-gcm", "sm4-gcm"]
KEY_FILE_FORMAT = 1


class KeyFileError(RuntimeError):
    pass


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


@dataclass(frozen=True)
class DataKey:
    version: int
    cipher: Cipher
    key: bytes = field(repr=False)


@dataclass(frozen=True)
class KeyRing:
    data_keys: dict[int, DataKey]
    current: int
    blind_index_keys: dict[int, bytes] = field(repr=False)
    blind_index_current: int
    signing_key: bytes = field(repr=False)

    @property
    def current_key(self) -> DataKey:
        return self.data_keys[self.current]

    @property
    def blind_index_key(self) -> bytes:
        return self.blind_index_keys[self.blind_index_current]

    @classmethod
    def generate(cls, cipher: Cipher = "aes-256-gcm") -> KeyRing:
        key_len = 32 if cipher == "aes-256-gcm" else 16
        return cls(
            data_keys={1: DataKey(1, cipher, secrets.token_bytes(key_len))},
            current=1,
            blind_index_keys={1: secrets.token_bytes(32)},
            blind_index_current=1,
            signing_key=secrets.token_bytes(32),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "format": KEY_FILE_FORMAT,
            "data_keys": {
                str(k.version): {"cipher": k.cipher, "key": _b64(k.key)}
                for k in self.data_keys.values()
            },
            "current": self.current,
            "blind_index_keys": {str(v): _b64(k) for v, k in self.blind_index_keys.items()},
            "blind_index_current": self.blind_index_current,
            "signing_key": _b64(self.signing_key),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> KeyRing:
        if data.get("format") != KEY_FILE_FORMAT:
            raise KeyFileError(f"unsupported key file format {data.get('format')!r}")
        try:
            data_keys = {
                int(v): DataKey(int(v), k["cipher"], _unb64(k["key"]))
                for v, k in data["data_keys"].items()
            }
            ring = cls(
                data_keys=data_keys,
                current=int(data["current"]),
                blind_index_keys={int(v): _unb64(k) for v, k in data["blind_index_keys"].items()},
                blind_index_current=int(data["blind_index_current"]),
                signing_key=_unb64(data["signing_key"]),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise KeyFileError(f"key file is damaged: {exc}") from exc
        if ring.current not in ring.data_keys:
            raise KeyFileError("key file names a current data key it does not hold")
        if ring.blind_index_current not in ring.blind_index_keys:
            raise KeyFileError("key file names a current blind-index key it does not hold")
        return ring


def save_keyring(ring: KeyRing, path: Path) -> None:
    """Write atomically with 0600 permissions: the file never exists world-readable."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(ring.to_json(), fh, indent=2)
    os.replace(tmp, path)


def load_keyring(path: Path, *, create: bool = True) -> KeyRing:
    if not path.exists():
        if not create:
            raise KeyFileError(f"key file {path} does not exist")
        ring = KeyRing.generate()
        save_keyring(ring, path)
        return ring
    if path.stat().st_mode & 0o077:
        raise KeyFileError(f"key file {path} is readable by others; run: chmod 600 {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise KeyFileError(f"key file {path} is not valid JSON") from exc
    return KeyRing.from_json(data)
