"""Passwords: argon2id hashing and the password policy (口令复杂度, GB/T 22239 8.1.4.1).

Policy: at least 10 characters, three character classes, not containing the username,
zxcvbn strength score ≥ 3 (its bundled lists hold the most common leaked passwords and
words), and not on the shipped list of passwords common among Chinese users.
"""

from __future__ import annotations

import importlib.resources
import re
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from zxcvbn import zxcvbn

MIN_LENGTH = 10
MIN_SCORE = 3


class WeakPassword(ValueError):
    pass


@cache
def _hasher() -> PasswordHasher:
    # argon2-cffi's defaults are RFC 9106's low-memory recommendation for argon2id.
    return PasswordHasher()


@cache
def _weak_list() -> frozenset[str]:
    text = (
        importlib.resources.files("smartunion.security")
        .joinpath("data/weak-passwords-zh.txt")
        .read_text(encoding="utf-8")
    )
    return frozenset(
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


def hash_password(password: str, *, username: str | None = None) -> str:
    check_policy(password, username=username)
    return _hasher().hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher().verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher().check_needs_rehash(password_hash)


# Spent on unknown usernames so their timing matches a real verification.
_DUMMY_HASH = _hasher().hash("timing-equaliser-not-a-password")


def burn_verification(password: str) -> None:
    verify_password(_DUMMY_HASH, password)


def check_policy(password: str, *, username: str | None = None) -> None:
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"password must have at least {MIN_LENGTH} characters")
    classes = sum(
        [
            any(c.islower() for c in password),
            any(c.isupper() for c in password),
            any(c.isdigit() for c in password),
            any(not c.isalnum() for c in password),
        ]
    )
    if classes < 3:
        raise WeakPassword(
            "password must mix at least three of: lower case, upper case, digits, symbols"
        )
    lowered = password.lower()
    if username and len(username) >= 3 and username.lower() in lowered:
        raise WeakPassword("password must not contain the username")
    # "Woaini1314!" is "woaini1314" with decoration: strip it before the list check.
    core = re.sub(r"[^a-z0-9@]+$", "", lowered)
    if lowered in _weak_list() or core in _weak_list():
        raise WeakPassword("password is on the list of commonly used passwords")
    result = zxcvbn(password[:64], user_inputs=[username] if username else [])
    if result["score"] < MIN_SCORE:
        warning = result["feedback"].get("warning") or "too easy to guess"
        raise WeakPassword(f"password is too weak: {warning}")
