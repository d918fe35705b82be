"""Recognising personal identifiers in free text, so that they are never stored verbatim.

Staff type ID numbers and phone numbers into search boxes and export filters, and people
type passwords into the username field of a log-in. Whatever they typed would otherwise
end up in the audit trail, in backups and in front of auditors. The helpers here:

- :func:`classify` says whether a search term *is* an ID number or a phone number (shape
  only: a mistyped check digit is as personal as a correct one), so the search can go to
  the blind-index lookup instead of a name search;
- :func:`audit_term` is what the audit keeps of a search term: a masked form for people
  and a keyed digest to tell whether two events searched the same thing;
- :func:`redact_text` masks every identifier inside a longer text (a reason, a reply);
- :func:`redact_identifier` stands in for a log-in name that matches no account;
- :func:`audit_username` is the name an account appears under in the audit: a member
  account by its number only, so that the account row — scrubbed on deletion — is the one
  place that ties the trail to a person.

The digest is HMAC-SHA256 under a key derived from the audit key (the key file): without
the key file nobody can test guesses against it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Literal

from sqlalchemy.orm import Session

from smartunion.security.masking import mask_id_number, mask_phone
from smartunion.security.permissions import Role

Kind = Literal["id_number", "phone"]

_SEPARATORS = re.compile(r"[\s\-‐-―－]")  # blanks and every dash, full-width included
_ID = re.compile(r"\d{17}[\dXx]|\d{15}")
_PHONE = re.compile(r"(?:\+?86|0086)?(1\d{10})")
# Inside longer text: a run of digits (with separators) that is an ID number or a phone.
_EMBEDDED = re.compile(r"(?<![\dA-Za-z])(?:\+?86[\s\-]?)?\d[\d\s\-]{9,22}[\dXx](?![\dA-Za-z])")


def normalise(text: str) -> str:
    return _SEPARATORS.sub("", text).upper()


def classify(text: str) -> tuple[Kind, str] | None:
    """``("id_number" | "phone", normalised value)`` when the whole term is one, else None."""
    value = normalise(text)
    if _ID.fullmatch(value):
        return "id_number", value
    phone = _PHONE.fullmatch(value)
    if phone:
        return "phone", phone.group(1)
    return None


def _digest_key(session: Session) -> bytes:
    key = session.info.get("audit_key")
    if not key:
        raise RuntimeError("this session has no audit key: build Database with audit_key")
    return hmac.new(key, b"smartunion audit term digest v1", hashlib.sha256).digest()


def digest(session: Session, value: str) -> str:
    """Keyed, stable digest of a normalised value (hex, 24 characters)."""
    return hmac.new(_digest_key(session), normalise(value).encode(), hashlib.sha256).hexdigest()[
        :24
    ]


def mask_term(text: str) -> str:
    """An ID number or phone by its own mask (138****5678); anything else — a name, most
    often — by its length only (张三丰 → ***): even a surname is too much to keep once the
    person has asked to be deleted, and a search term is tied to no record to delete."""
    kind = classify(text)
    if kind is not None:
        return mask_id_number(kind[1]) if kind[0] == "id_number" else mask_phone(kind[1])
    return "*" * len(text.strip())


def audit_term(session: Session, text: str) -> dict[str, str]:
    """What the audit keeps of a search term: never the term itself."""
    kind = classify(text)
    return {
        "kind": kind[0] if kind else "text",
        "masked": mask_term(text),
        "digest": digest(session, kind[1] if kind else text),
    }


def redact_text(text: str) -> str:
    """``text`` with every ID number or phone number in it masked."""

    def mask(match: re.Match[str]) -> str:
        found = classify(match.group(0))
        if found is None:
            return match.group(0)
        return mask_id_number(found[1]) if found[0] == "id_number" else mask_phone(found[1])

    return _EMBEDDED.sub(mask, text)


def redact_identifier(session: Session, typed: str) -> str:
    """A log-in name that matches no account may be a password typed in the wrong field, or
    someone's phone: the audit keeps only ``?`` and a keyed digest (fits the 64-character
    username column)."""
    return "?" + digest(session, typed)


def audit_username(user_id: int | None, username: str, role: Role | str) -> str:
    """Members appear in the trail by account number (``member#12``), staff by username."""
    if str(role) == Role.MEMBER.value and user_id is not None:
        return f"member#{user_id}"
    return username
