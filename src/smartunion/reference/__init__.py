"""Reference data shared by every domain: GB/T 2260 divisions, ethnic groups, GB/T 4754."""

from smartunion.reference.industries import (
    IndustryDivision,
    IndustrySection,
    division,
    divisions,
    is_division_code,
    section_of,
    sections,
)
from smartunion.reference.regions import (
    ETHNIC_GROUPS,
    Region,
    children,
    counties_of,
    is_region_code,
    province_of,
    provinces,
    region,
)

__all__ = [
    "ETHNIC_GROUPS",
    "IndustryDivision",
    "IndustrySection",
    "Region",
    "children",
    "counties_of",
    "division",
    "divisions",
    "is_division_code",
    "is_region_code",
    "province_of",
    "provinces",
    "region",
    "section_of",
    "sections",
]
