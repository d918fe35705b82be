"""Labels for domain values shown on both console and portal pages (personal-data fields,
consent purposes), looked up in the language catalogs with a readable fallback.
"""

from __future__ import annotations

from smartunion.privacy.register import Purpose
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
