"""Domain errors the web layer maps to HTTP answers."""

from __future__ import annotations


class KeepsTransaction(Exception):
    """Mixin: the work done before raising (e.g. the audit event of a refusal) is committed."""


class NotFound(Exception):
    """The record does not exist *or lies outside the caller's scope* (never say which)."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} not found")
        self.what = what


class Conflict(Exception):
    pass


class InvalidInput(ValueError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class TooManyRequests(KeepsTransaction):
    pass
