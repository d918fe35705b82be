"""Synthetic province generator: union tree, employers, departments and members.

``generate_province(engine, crypto, members=..., seed=..., province=...)`` fills an
empty, migrated operational store (SQLite or PostgreSQL) in one transaction. See
:mod:`smartunion.generate.province` for the phases and :mod:`smartunion.generate.profiles`
for the industry assumptions behind the data.
"""

from smartunion.generate.plan import ProvinceError
from smartunion.generate.province import (
    GenerationReport,
    ProvinceExistsError,
    generate_province,
)

__all__ = ["GenerationReport", "ProvinceError", "ProvinceExistsError", "generate_province"]
