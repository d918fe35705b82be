"""Word lists for synthetic data: personal names, company-name words, ethnic mixes, places.

Personal names come from Faker's ``zh_CN`` person provider: its 399 surnames carry
frequency weights (percent of the population) and its given-name lists are split by
gender. They are read once from the provider class, never by calling Faker per row
(FACTS.md: one row at a time costs ≈ 180 s per million).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from faker.providers.person.zh_CN import Provider as _PersonProvider

from smartunion.reference.regions import ETHNIC_GROUPS


@dataclass(frozen=True, slots=True)
class NameLists:
    surnames: tuple[str, ...]
    surname_p: npt.NDArray[np.float64]
    male: tuple[str, ...]
    female: tuple[str, ...]


@functools.cache
def name_lists() -> NameLists:
    surnames: dict[str, float] = dict(_PersonProvider.last_names)
    weights = np.asarray(list(surnames.values()), dtype=np.float64)
    male = tuple(dict.fromkeys(_PersonProvider.first_names_male))
    female = tuple(dict.fromkeys(_PersonProvider.first_names_female))
    return NameLists(tuple(surnames), weights / weights.sum(), male, female)


# Characters of the "brand" part of a company name (字号): the auspicious words Chinese
# firms favour. Two are drawn and joined, giving ~2,500 distinct brands.
BRAND_CHARS = tuple(
    "鑫宏恒泰华盛隆昌兴源丰瑞德通达安康新远龙金鼎诚信和顺利嘉佳博睿汇祥福永宝晟弘凯锦荣海天晨光辉明正中宇"
)

# Short names of the provinces (简称), used as the first character of provincial brands
# (e.g. 晋能, 晋华) and for "<province short name><brand>..." company names.
PROVINCE_ABBREVIATIONS: Mapping[str, str] = {
    "11": "京",
    "12": "津",
    "13": "冀",
    "14": "晋",
    "15": "蒙",
    "21": "辽",
    "22": "吉",
    "23": "黑",
    "31": "沪",
    "32": "苏",
    "33": "浙",
    "34": "皖",
    "35": "闽",
    "36": "赣",
    "37": "鲁",
    "41": "豫",
    "42": "鄂",
    "43": "湘",
    "44": "粤",
    "45": "桂",
    "46": "琼",
    "50": "渝",
    "51": "川",
    "52": "黔",
    "53": "滇",
    "54": "藏",
    "61": "陕",
    "62": "甘",
    "63": "青",
    "64": "宁",
    "65": "新",
}

CHINESE_ORDINALS: tuple[str, ...] = (
    *"一二三四五六七八九十",
    *(f"十{d}" for d in "一二三四五六七八九"),
    "二十",
)


def ordinal(n: int) -> str:
    """Chinese numeral for 1..99 (一, 十二, 二十三), as in 采煤二队 or 第十五中学."""
    if 1 <= n <= len(CHINESE_ORDINALS):
        return CHINESE_ORDINALS[n - 1]
    tens, ones = divmod(n, 10)
    head = ("" if tens == 1 else CHINESE_ORDINALS[tens - 1]) + "十"
    return head + (CHINESE_ORDINALS[ones - 1] if ones else "")


# Ethnic composition of the workforce by province (first two digits): the share of
# members who are not 汉族 and how that share divides among groups. Rounded from the
# 2020 census provincial tables (第七次全国人口普查); provinces not listed get DEFAULT.
# Synthetic members of every group are given Han-style names, a known simplification.
_DEFAULT_MINORITIES: tuple[float, Mapping[str, float]] = (
    0.01,
    {"回族": 0.45, "满族": 0.3, "蒙古族": 0.1, "壮族": 0.1, "土家族": 0.05},
)
MINORITIES: Mapping[str, tuple[float, Mapping[str, float]]] = {
    "13": (0.04, {"满族": 0.7, "回族": 0.25, "蒙古族": 0.05}),
    "14": (0.003, {"回族": 0.5, "满族": 0.3, "蒙古族": 0.2}),
    "15": (0.21, {"蒙古族": 0.8, "满族": 0.1, "回族": 0.07, "达斡尔族": 0.03}),
    "21": (0.15, {"满族": 0.8, "蒙古族": 0.1, "回族": 0.05, "朝鲜族": 0.05}),
    "22": (0.08, {"朝鲜族": 0.5, "满族": 0.45, "回族": 0.05}),
    "23": (0.03, {"满族": 0.6, "朝鲜族": 0.2, "蒙古族": 0.1, "回族": 0.1}),
    "42": (0.04, {"土家族": 0.8, "苗族": 0.15, "回族": 0.05}),
    "43": (0.1, {"土家族": 0.4, "苗族": 0.3, "侗族": 0.15, "瑶族": 0.12, "白族": 0.03}),
    "45": (0.37, {"壮族": 0.85, "瑶族": 0.07, "苗族": 0.04, "侗族": 0.04}),
    "46": (0.15, {"黎族": 0.95, "苗族": 0.05}),
    "50": (0.065, {"土家族": 0.8, "苗族": 0.2}),
    "51": (0.06, {"彝族": 0.55, "藏族": 0.35, "羌族": 0.06, "回族": 0.04}),
    "52": (
        0.36,
        {"苗族": 0.35, "布依族": 0.25, "土家族": 0.12, "侗族": 0.12, "彝族": 0.08, "仡佬族": 0.08},
    ),
    "53": (
        0.33,
        {
            "彝族": 0.33,
            "哈尼族": 0.11,
            "白族": 0.1,
            "傣族": 0.08,
            "壮族": 0.08,
            "苗族": 0.07,
            "回族": 0.05,
            "傈僳族": 0.04,
            "拉祜族": 0.03,
            "佤族": 0.03,
            "纳西族": 0.03,
            "瑶族": 0.03,
            "藏族": 0.02,
        },
    ),
    "54": (0.88, {"藏族": 0.98, "回族": 0.01, "门巴族": 0.01}),
    "62": (
        0.1,
        {
            "回族": 0.45,
            "藏族": 0.2,
            "东乡族": 0.2,
            "土族": 0.05,
            "蒙古族": 0.04,
            "裕固族": 0.02,
            "保安族": 0.02,
            "撒拉族": 0.02,
        },
    ),
    "63": (0.49, {"藏族": 0.5, "回族": 0.35, "土族": 0.1, "撒拉族": 0.05}),
    "64": (0.36, {"回族": 0.98, "满族": 0.02}),
    "65": (0.55, {"维吾尔族": 0.8, "哈萨克族": 0.12, "回族": 0.08}),
}


def minorities(province_prefix: str) -> tuple[float, Mapping[str, float]]:
    share, groups = MINORITIES.get(province_prefix, _DEFAULT_MINORITIES)
    unknown = set(groups) - set(ETHNIC_GROUPS)
    if unknown:  # a typo here would silently create a 57th group
        raise ValueError(f"not among the 56 ethnic groups: {sorted(unknown)}")
    return share, groups


_AUTONOMOUS = re.compile(r"自治(?:区|州|县|旗)$")
_SUFFIXES = ("特别行政区", "地区", "省", "市", "区", "县", "旗", "盟")
_SPECIAL = {"神农架林区": "神农架"}  # the one 林区; 万柏林区 is 万柏林 + 区


def short_place_name(name: str) -> str:
    """The name a company would put in front of its brand: 太原市 → 太原, 古县 stays 古县.

    Autonomous areas drop their ethnic groups too: 恩施土家族苗族自治州 → 恩施. A suffix
    is only removed when at least two characters remain, as people say 古县, not 古.
    """
    if name in _SPECIAL:
        return _SPECIAL[name]
    if _AUTONOMOUS.search(name):
        cut = len(name)
        for group in ETHNIC_GROUPS:
            at = name.find(group.removesuffix("族"), 2)
            if at != -1:
                cut = min(cut, at)
        if cut < len(name):
            return name[:cut]
    for suffix in _SUFFIXES:
        if name.endswith(suffix) and len(name) - len(suffix) >= 2:
            return name[: -len(suffix)]
    return name
