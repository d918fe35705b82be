"""User-interface text in Simplified Chinese (the default) and English.

The catalogs are two small JSON files, ``locale/zh-CN.json`` and ``locale/en.json``, with
dotted keys (``"nav.members"``) and ``str.format`` placeholders (``"共 {n} 条"``). Why not
gettext or Babel: for two languages and a few hundred strings their extraction and
``.mo`` compilation would be an extra build step and an extra tool in CI, and a missing
``.mo`` file fails silently; a JSON catalog is read as it is written, and a test checks
that both catalogs carry the same keys and a label for every enum value.

Lookup falls back to zh-CN, then to the key itself, so a missing translation shows up
as a visible key rather than an error page.
"""

from __future__ import annotations

import importlib.resources
import json
from enum import StrEnum
from functools import cache
from typing import Final

from smartunion.members.models import (
    Education,
    EmploymentForm,
    Gender,
    MemberStatus,
    SkillLevel,
)
from smartunion.orgs.models import OrgKind, OrgLevel, Ownership, SizeClass
from smartunion.security.permissions import Role

DEFAULT_LANGUAGE: Final = "zh-CN"
LANGUAGES: Final = ("zh-CN", "en")

# Every enum shown on a page; each value needs "enum.<Class>.<value>" in both catalogs.
LABELLED_ENUMS: Final[tuple[type[StrEnum], ...]] = (
    OrgLevel,
    OrgKind,
    Gender,
    Education,
    SkillLevel,
    EmploymentForm,
    MemberStatus,
    Role,
    Ownership,
    SizeClass,
)


def normalise(code: str | None) -> str | None:
    """The supported language a code names (``zh``, ``zh-cn``, ``en-GB`` …), or None."""
    if not code:
        return None
    code = code.strip().lower().replace("_", "-")
    if code in ("zh", "zh-cn", "zh-hans", "zh-hans-cn"):
        return "zh-CN"
    if code == "en" or code.startswith("en-"):
        return "en"
    return None


@cache
def catalog(lang: str) -> dict[str, str]:
    """The catalog of one language, read once per process."""
    if lang not in LANGUAGES:
        raise ValueError(f"unsupported language {lang!r}")
    source = importlib.resources.files("smartunion") / "locale" / f"{lang}.json"
    data = json.loads(source.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise ValueError(f"locale/{lang}.json must be an object of strings")
    return data


def enum_key(value: StrEnum) -> str:
    return f"enum.{type(value).__name__}.{value.value}"


class Translator:
    """``t("nav.members")`` → the text; ``t("members.total", n=3)`` fills placeholders.

    Callable as ``Callable[[str], str]``; templates also use :meth:`enum` for labels.
    """

    def __init__(self, lang: str) -> None:
        self.lang = lang if lang in LANGUAGES else DEFAULT_LANGUAGE
        self._texts = catalog(self.lang)
        self._fallback = catalog(DEFAULT_LANGUAGE)

    def __call__(self, key: str, /, **params: object) -> str:
        text = self._texts.get(key) or self._fallback.get(key) or key
        if params:
            try:
                return text.format(**params)
            except (KeyError, IndexError, ValueError):
                # A translator's typo in a placeholder must not take the page down.
                return text
        return text

    def enum(self, value: StrEnum | None) -> str:
        """Label of an enum value; the empty string for None (an unset optional field)."""
        return "" if value is None else self(enum_key(value))

    def has(self, key: str) -> bool:
        return key in self._texts


def translator(lang: str) -> Translator:
    return Translator(lang)
