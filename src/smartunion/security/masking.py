"""Masking of personal data on output (脱敏): what a screen or export shows by default."""

from __future__ import annotations

import datetime as dt


def mask_name(name: str) -> str:
    """张三 → 张*, 张三丰 → 张*丰, 欧阳娜娜 → 欧**娜: first and last character stay."""
    if len(name) <= 1:
        return name
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


def mask_id_number(value: str) -> str:
    """110105199001010022 → 110105********0022: region stays, birth date and sequence go."""
    if len(value) < 10:
        return "*" * len(value)
    return value[:6] + "*" * (len(value) - 10) + value[-4:]


def mask_phone(value: str) -> str:
    """13812341234 → 138****1234."""
    if len(value) < 7:
        return "*" * len(value)
    return value[:3] + "*" * (len(value) - 7) + value[-4:]


def mask_bank_account(value: str) -> str:
    return "*" * max(len(value) - 4, 0) + value[-4:]


def mask_birth_date(value: dt.date) -> str:
    """Year only: enough for age bands, not enough to identify."""
    return f"{value.year}-**-**"
