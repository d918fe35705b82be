"""Labels for domain values shown on both console and portal pages (personal-data fields,
consent purposes, audit actions, roles), looked up in the language catalogs with a
readable fallback.
"""

from __future__ import annotations

from smartunion import i18n
from smartunion.privacy.register import Purpose
from smartunion.reference import industries
from smartunion.security.permissions import Role
from smartunion.web.pagekit import Page


def field_label(page: Page, field: str) -> str:
    if not field:
        return "—"
    if field == "other":
        return page.t("privacy.field.other")
    key = f"field.{field}"
    return page.t(key) if page.t.has(key) else field


def purpose_title(page: Page, purpose: Purpose) -> str:
    key = f"privacy.purpose.{purpose.key}"
    return page.t(key) if page.t.has(key) else purpose.title


def action_label(t: i18n.Translator, action: str) -> str:
    """An audit action ("member.read") in words; the code itself if it has no name."""
    key = f"audit.action.{action}"
    return t(key) if t.has(key) else action


def role_label(t: i18n.Translator, value: str) -> str:
    try:
        return t.enum(Role(value))
    except ValueError:
        return value or "—"


def industry_label(code: str) -> str:
    """A GB/T 4754-2017 section ("B 采矿业") or division ("06 煤炭开采和洗选业") by its code."""
    found = industries.section(code) or industries.division(code)
    return f"{code} {found.name}" if found else code
