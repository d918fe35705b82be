"""TOTP second factor (RFC 6238, 30-second steps, 6 digits) with replay protection."""

from __future__ import annotations

import io
import time

import pyotp
import segno

ISSUER = "SmartUnion"
VALID_WINDOW = 1  # accept the neighbouring step: phones drift


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, username: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=ISSUER)


def qr_svg(uri: str) -> str:
    """Inline SVG of the enrolment QR code, drawn locally (no image service)."""
    buffer = io.BytesIO()
    segno.make(uri, error="m").save(buffer, kind="svg", scale=5, xmldecl=False, svgns=True)
    return buffer.getvalue().decode()


def matching_step(secret: str, code: str, *, now: float | None = None) -> int | None:
    """The time step the code belongs to, or None. Callers reject steps already used."""
    code = code.strip().replace(" ", "")
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    at = time.time() if now is None else now
    step = int(at // totp.interval)
    for candidate in range(step - VALID_WINDOW, step + VALID_WINDOW + 1):
        if totp.verify(code, for_time=candidate * totp.interval):
            return candidate
    return None
