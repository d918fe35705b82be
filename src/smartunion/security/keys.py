"""Key file: versioned data keys, versioned blind-index keys and the signing key.

The file is JSON, created with mode 0600 on first use and never committed. Keys are
versioned so that ``smartunion keys rotate`` can move data to a new key while old
ciphertexts stay readable. Two algorithm profiles:

- ``aes-256-gcm``: AES-256-GCM data keys, keyed BLAKE2b blind indexes (the default);
- ``sm4-gcm``: SM4-GCM data keys (GB/T 32907), HMAC-SM3 blind indexes (GB/T 32905), for
  deployments that must use the national algorithms.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

Cipher = Literal["aes-256-gcm", "sm4-gcm"]
BlindAlgorithm = Literal["blake2b", "hmac-sm3"]
KEY_FILE_FORMAT = 1
CIPHERS: tuple[Cipher, ...] = ("aes-256-gcm", "sm4-gcm")
_KEY_BYTES: dict[Cipher, int] = {"aes-256-gcm": 32, "sm4-gcm": 16}
_BLIND_FOR: dict[Cipher, BlindAlgorithm] = {"aes-256-gcm": "blake2b", "sm4-gcm": "hmac-sm3"}


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
class BlindKey:
    version: int
    algorithm: BlindAlgorithm
    key: bytes = field(repr=False)


@dataclass(frozen=True)
class KeyRing:
    data_keys: dict[int, DataKey]
    current: int
    blind_keys: dict[int, BlindKey]
    blind_current: int
    signing_key: bytes = field(repr=False)

    @property
    def current_key(self) -> DataKey:
        return self.data_keys[self.current]

    @property
    def blind_key(self) -> BlindKey:
        return self.blind_keys[self.blind_current]

    def derive(self, purpose: bytes, length: int = 32) -> bytes:
        """A key for one purpose (CSRF, audit chain, backups), independent of the others."""
        return HKDF(hashes.SHA256(), length, salt=None, info=purpose).derive(self.signing_key)

    @cached_property
    def audit_key(self) -> bytes:
        return self.derive(b"smartunion-audit-chain-v1")

    @classmethod
    def generate(cls, cipher: Cipher = "aes-256-gcm") -> KeyRing:
        return cls(
            data_keys={1: DataKey(1, cipher, secrets.token_bytes(_KEY_BYTES[cipher]))},
            current=1,
            blind_keys={1: BlindKey(1, _BLIND_FOR[cipher], secrets.token_bytes(32))},
            blind_current=1,
            signing_key=secrets.token_bytes(32),
        )

    def with_new_version(self, cipher: Cipher) -> KeyRing:
        """A new current data key and blind-index key; old versions stay for decryption."""
        version = max(self.data_keys) + 1
        blind_version = max(self.blind_keys) + 1
        return replace(
            self,
            data_keys={
                **self.data_keys,
                version: DataKey(version, cipher, secrets.token_bytes(_KEY_BYTES[cipher])),
            },
            current=version,
            blind_keys={
                **self.blind_keys,
                blind_version: BlindKey(blind_version, _BLIND_FOR[cipher], secrets.token_bytes(32)),
            },
            blind_current=blind_version,
        )

    def without_versions(self, data_versions: set[int], blind_versions: set[int]) -> KeyRing:
        if self.current in data_versions or self.blind_current in blind_versions:
            raise KeyFileError("the current key cannot be retired")
        return replace(
            self,
            data_keys={v: k for v, k in self.data_keys.items() if v not in data_versions},
            blind_keys={v: k for v, k in self.blind_keys.items() if v not in blind_versions},
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "format": KEY_FILE_FORMAT,
            "data_keys": {
                str(k.version): {"cipher": k.cipher, "key": _b64(k.key)}
                for k in self.data_keys.values()
            },
            "current": self.current,
            "blind_keys": {
                str(k.version): {"algorithm": k.algorithm, "key": _b64(k.key)}
                for k in self.blind_keys.values()
            },
            "blind_current": self.blind_current,
            "signing_key": _b64(self.signing_key),
        }

    @classmethod
    def from_json(cls, data: Any) -> KeyRing:
        if not isinstance(data, dict):
            raise KeyFileError("key file is damaged: not a JSON object")
        if data.get("format") != KEY_FILE_FORMAT:
            raise KeyFileError(f"unsupported key file format {data.get('format')!r}")
        try:
            ring = cls(
                data_keys={
                    int(v): DataKey(int(v), k["cipher"], _unb64(k["key"]))
                    for v, k in data["data_keys"].items()
                },
                current=int(data["current"]),
                blind_keys={
                    int(v): BlindKey(int(v), k["algorithm"], _unb64(k["key"]))
                    for v, k in data["blind_keys"].items()
                },
                blind_current=int(data["blind_current"]),
                signing_key=_unb64(data["signing_key"]),
            )
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            raise KeyFileError(f"key file is damaged: {type(exc).__name__} {exc}") from exc
        if ring.current not in ring.data_keys:
            raise KeyFileError("key file names a current data key it does not hold")
        if ring.blind_current not in ring.blind_keys:
            raise KeyFileError("key file names a current blind-index key it does not hold")
        for key in ring.data_keys.values():
            if key.cipher not in CIPHERS or len(key.key) != _KEY_BYTES[key.cipher]:
                raise KeyFileError(f"data key {key.version} is damaged")
        for blind in ring.blind_keys.values():
            if blind.algorithm not in _BLIND_FOR.values() or len(blind.key) != 32:
                raise KeyFileError(
                    f"blind-index key {blind.version} is damaged or has an unknown algorithm "
                    f"{blind.algorithm!r} (known: blake2b, hmac-sm3)"
                )
        return ring


def save_keyring(ring: KeyRing, path: Path) -> None:
    """Write atomically with 0600 permissions: the file never exists world-readable."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(ring.to_json(), fh, indent=2)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def load_keyring(path: Path, *, create: bool = False, cipher: Cipher = "aes-256-gcm") -> KeyRing:
    """The key ring in ``path``; ``create`` only for ``smartunion init`` on an empty database."""
    if not path.exists():
        if not create:
            raise KeyFileError(
                f"key file {path} does not exist: set SMARTUNION_SECRET_KEY_FILE to the "
                "installation's key file, or restore it from its backup (`smartunion init` "
                "creates one only for an empty database)"
            )
        ring = KeyRing.generate(cipher)
        save_keyring(ring, path)
        return ring
    if path.is_dir():
        raise KeyFileError(f"key file {path} is a folder, not a file")
    if path.stat().st_mode & 0o077:
        raise KeyFileError(f"key file {path} is readable by others; run: chmod 600 {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise KeyFileError(f"key file {path} is not valid JSON") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"key file {path} cannot be read: {exc}") from exc
    return KeyRing.from_json(data)


# --- retired keys: kept apart, for restoring backups made before a retirement -------------

RETIRED_SUFFIX = ".retired"


def retired_file(key_file: Path) -> Path:
    """``secret.key`` → ``secret.key.retired``, beside it (back both up)."""
    return key_file.with_name(key_file.name + RETIRED_SUFFIX)


def load_retired(path: Path) -> tuple[dict[int, DataKey], dict[int, BlindKey]]:
    """The archive of retired keys (empty if there is none)."""
    if not path.exists():
        return {}, {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return (
            {
                int(v): DataKey(int(v), k["cipher"], _unb64(k["key"]))
                for v, k in data["data_keys"].items()
            },
            {
                int(v): BlindKey(int(v), k["algorithm"], _unb64(k["key"]))
                for v, k in data["blind_keys"].items()
            },
        )
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError):
        raise KeyFileError(f"retired-key archive {path} is damaged or unreadable") from None


def archive_retired(path: Path, data_keys: list[DataKey], blind_keys: list[BlindKey]) -> None:
    """Add keys to the archive (0600, written whole); nothing already in it is dropped."""
    old_data, old_blind = load_retired(path)
    old_data.update({k.version: k for k in data_keys})
    old_blind.update({k.version: k for k in blind_keys})
    payload = {
        "format": KEY_FILE_FORMAT,
        "note": "retired SmartUnion keys: needed to restore backups made before their "
        "retirement; keep with the key file's backups, never commit",
        "data_keys": {
            str(k.version): {"cipher": k.cipher, "key": _b64(k.key)} for k in old_data.values()
        },
        "blind_keys": {
            str(k.version): {"algorithm": k.algorithm, "key": _b64(k.key)}
            for k in old_blind.values()
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(payload, fh, indent=2)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def with_retired(ring: KeyRing, path: Path, data_versions: set[int]) -> KeyRing | None:
    """``ring`` with the archived keys put back, if the archive holds every data key version
    in ``data_versions`` (with the blind keys of their time); otherwise ``None``."""
    data, blind = load_retired(path)
    if not data_versions <= set(data) | set(ring.data_keys):
        return None
    return replace(
        ring,
        data_keys={**data, **ring.data_keys},
        blind_keys={**blind, **ring.blind_keys},
    )
