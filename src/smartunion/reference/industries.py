"""Industry classification: GB/T 4754-2017 《国民经济行业分类》, sections and divisions.

Only the 20 sections (门类, letters A-T) and 97 divisions (大类, two digits 01-97) are
shipped; groups and classes (中类/小类) are not. No package carries the table, so it is
kept as ``data/gbt4754-2017-divisions.csv`` (columns section, section_name, division,
division_name), transcribed from the standard.
"""

from __future__ import annotations

import csv
import functools
import importlib.resources
import io
from dataclasses import dataclass

__all__ = [
    "IndustryDivision",
    "IndustrySection",
    "division",
    "divisions",
    "is_division_code",
    "section",
    "section_of",
    "sections",
]

_DATA_FILE = "gbt4754-2017-divisions.csv"


@dataclass(frozen=True, slots=True)
class IndustrySection:
    """A section (门类), e.g. ``IndustrySection("B", "采矿业")``."""

    code: str
    name: str


@dataclass(frozen=True, slots=True)
class IndustryDivision:
    """A division (大类); ``section`` is the code of its section."""

    code: str
    name: str
    section: str


@dataclass(frozen=True, slots=True)
class _Tables:
    sections: dict[str, IndustrySection]
    divisions: dict[str, IndustryDivision]


@functools.cache
def _tables() -> _Tables:
    data = importlib.resources.files(__package__) / "data" / _DATA_FILE
    # utf-8-sig: tolerate a BOM if the file is ever re-saved by a spreadsheet.
    rows = csv.DictReader(io.StringIO(data.read_text(encoding="utf-8-sig")))
    section_map: dict[str, IndustrySection] = {}
    division_map: dict[str, IndustryDivision] = {}
    for row in rows:
        code = row["section"].strip()
        section_map.setdefault(code, IndustrySection(code, row["section_name"].strip()))
        div = row["division"].strip()
        division_map[div] = IndustryDivision(div, row["division_name"].strip(), code)
    return _Tables(
        sections=dict(sorted(section_map.items())),
        divisions=dict(sorted(division_map.items())),
    )


def sections() -> list[IndustrySection]:
    """The 20 sections, A to T."""
    return list(_tables().sections.values())


def divisions() -> list[IndustryDivision]:
    """The 97 divisions, 01 to 97."""
    return list(_tables().divisions.values())


def section(code: str) -> IndustrySection | None:
    """The section with this letter, or ``None``."""
    return _tables().sections.get(code) if isinstance(code, str) else None


def division(code: str) -> IndustryDivision | None:
    """The division with this two-digit code, or ``None``."""
    return _tables().divisions.get(code) if isinstance(code, str) else None


def section_of(division_code: str) -> IndustrySection | None:
    """The section a division belongs to, or ``None`` for an unknown division."""
    found = division(division_code)
    return None if found is None else _tables().sections[found.section]


def is_division_code(code: str) -> bool:
    """Whether ``code`` is one of the 97 two-digit division codes."""
    return division(code) is not None
