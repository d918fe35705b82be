"""Industry profiles for the synthetic province: who works where, and how.

A :class:`Sector` groups GB/T 4754-2017 divisions whose employers look alike (coal
mines, schools, delivery platforms …). It fixes the size distribution of its employers,
their ownership and location, the departments they have and, per department, the
occupations, gender mix, education, skill and employment forms of the people working
there. The figures are plausible round numbers drawn from public statistics (China
Labour Statistical Yearbook, provincial yearbooks, ACFTU reports), not measurements:
their job is to make the data look like a province, with the contrasts staff expect
(coal mines nearly all men, nurses nearly all women, riders young, sanitation workers
old).

Scales used by :mod:`smartunion.generate.people`:

* ``edu`` — the mean of a latent education score, 0 primary … 5 postgraduate, before the
  age effect (younger people studied longer).
* ``skill`` — the mean of a latent skill score, 0 none … 5 senior technician, before the
  tenure effect; negative means "mostly no vocational grade".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from smartunion.members.models import EmploymentForm as F
from smartunion.orgs.models import Ownership as O


@dataclass(frozen=True, slots=True)
class Dept:
    """A department template. ``{n}`` in the name numbers teams: 采煤{n}队 → 采煤二队."""

    name: str
    weight: float
    occupations: tuple[tuple[str, float], ...]
    male: float
    edu: float
    skill: float
    team: int = 0  # with {n}: one team per about this many members
    min_size: int = 0  # only employers with at least this many employees have it
    forms: tuple[tuple[F, float], ...] = ()  # overrides the sector's employment mix
    age: float = 0.0  # shift of the sector's mean age
    only: tuple[str, ...] = ()  # restrict to employers in these divisions
    new_form_union: bool = False  # members join a county 新就业形态 joint union


@dataclass(frozen=True, slots=True)
class Pattern:
    """How an employer of one division is named, and what kind of body it is.

    Placeholders: ``{place}`` short place name (county, city or province), ``{prov}`` the
    province's short name, ``{county}``/``{city}`` full names, ``{brand}`` two brand
    characters, ``{word}`` one of ``words``, ``{suffix}`` 有限公司 etc., ``{n}`` an ordinal
    that makes the name unique (第{n}中学).
    """

    division: str
    weight: float
    text: str = "{place}{brand}{word}{suffix}"
    words: tuple[str, ...] = ()
    ownership: O | None = None  # None: drawn from the sector's mix
    authority: str = "91"  # USCC authority + type: 91 company, 12 public institution, 11 organ


@dataclass(frozen=True, slots=True)
class Sector:
    key: str
    share: float  # of the province's members, before province adjustments
    patterns: tuple[Pattern, ...]
    size: tuple[float, float, int, int]  # employees: lognormal median, sigma, min, max
    bands: tuple[int, int, int]  # employees from which an employer is large, medium, small
    ownership: tuple[tuple[O, float], ...]
    urban: float  # > 0 prefers city districts, < 0 rural counties
    age: tuple[float, float]  # mean, standard deviation
    depts: tuple[Dept, ...]
    dispatched: float = 0.05
    part_time: float = 0.02
    joint: str = "regional"  # joint union for employers too small for their own union
    platform: bool = False
    independent: bool = False  # members without an employer (self-employed new-form)
    mean_tenure: float = 12.0  # years of union membership for a mid-career member
    divisions: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "divisions", tuple(dict.fromkeys(p.division for p in self.patterns))
        )


INDUSTRY_BANDS = (1000, 300, 20)  # 工业: employees ≥1000 large, ≥300 medium, ≥20 small
SERVICE_BANDS = (300, 100, 10)  # 软件、餐饮、租赁商务等
RETAIL_BANDS = (300, 50, 10)
PROPERTY_BANDS = (1000, 300, 100)

OFFICE = Dept(
    "综合办公室", 0.05, (("行政管理人员", 0.5), ("文员", 0.35), ("司机", 0.15)), 0.5, 3.3, -1.5
)
FINANCE = Dept("财务部", 0.02, (("会计", 0.7), ("出纳", 0.3)), 0.3, 3.6, -1.5, min_size=40)
SALES = Dept("销售部", 0.05, (("销售员", 0.7), ("客户经理", 0.3)), 0.6, 3.2, -1.0, min_size=40)
HR = Dept("人力资源部", 0.015, (("人力资源专员", 1.0),), 0.35, 3.8, -1.5, min_size=200)
STORES = Dept(
    "仓储物流部",
    0.06,
    (("仓库管理员", 0.35), ("装卸搬运工", 0.35), ("叉车司机", 0.3)),
    0.85,
    1.6,
    1.0,
    min_size=80,
)
CANTEEN = Dept(
    "后勤服务中心",
    0.04,
    (("炊事员", 0.4), ("保洁员", 0.3), ("保安员", 0.3)),
    0.45,
    1.2,
    0.0,
    min_size=150,
    age=6,
)
MAINTENANCE = Dept(
    "设备动力部",
    0.1,
    (("维修电工", 0.45), ("钳工", 0.35), ("焊工", 0.2)),
    0.92,
    2.0,
    2.4,
    min_size=50,
)
QUALITY = Dept("质检部", 0.05, (("质检员", 0.7), ("化验员", 0.3)), 0.4, 2.8, 1.5, min_size=60)
SAFETY = Dept(
    "安全环保部", 0.03, (("安全员", 0.7), ("环保监测员", 0.3)), 0.75, 3.0, 1.5, min_size=100
)
RND = Dept("技术中心", 0.05, (("工程师", 0.7), ("技术员", 0.3)), 0.7, 4.2, 0.5, min_size=200)

NEW_FORM = (F.DELIVERY_RIDER, F.RIDE_HAILING, F.COURIER, F.TRUCK_DRIVER)

_STATE_HEAVY = ((O.STATE, 0.55), (O.SHAREHOLDING, 0.3), (O.PRIVATE, 0.15))
_MIXED = (
    (O.PRIVATE, 0.55),
    (O.SHAREHOLDING, 0.2),
    (O.STATE, 0.12),
    (O.FOREIGN, 0.07),
    (O.HMT, 0.06),
)
_PRIVATE = ((O.PRIVATE, 0.82), (O.SHAREHOLDING, 0.1), (O.COLLECTIVE, 0.03), (O.STATE, 0.05))

SECTORS: tuple[Sector, ...] = (
    Sector(
        "coal",
        0.0,  # set per province (COAL_SHARE)
        (Pattern("06", 1.0, words=("煤业", "煤业", "煤矿", "能源", "煤炭", "矿业")),),
        (700, 0.8, 80, 9000),
        INDUSTRY_BANDS,
        _STATE_HEAVY,
        -1.0,
        (42, 8),
        (
            # Underground work is closed to women (女职工劳动保护特别规定, 附录).
            Dept(
                "采煤{n}队",
                0.26,
                (
                    ("采煤工", 0.55),
                    ("液压支架工", 0.2),
                    ("采煤机司机", 0.15),
                    ("综采维修电工", 0.1),
                ),
                1.0,
                1.4,
                2.0,
                team=250,
                age=-1,
            ),
            Dept(
                "掘进{n}队",
                0.18,
                (("掘进工", 0.55), ("锚杆支护工", 0.25), ("爆破工", 0.1), ("掘进机司机", 0.1)),
                1.0,
                1.3,
                2.0,
                team=200,
                age=-2,
            ),
            Dept(
                "机电科",
                0.09,
                (("矿井维修电工", 0.45), ("机电维修工", 0.35), ("钳工", 0.2)),
                0.92,
                2.2,
                2.6,
                min_size=50,
            ),
            Dept(
                "通风科",
                0.06,
                (("通风工", 0.4), ("瓦斯检查工", 0.4), ("测风测尘工", 0.2)),
                1.0,
                2.0,
                2.4,
                min_size=50,
            ),
            Dept(
                "运输{n}队",
                0.08,
                (("井下运输工", 0.4), ("绞车司机", 0.3), ("带式输送机司机", 0.3)),
                1.0,
                1.3,
                1.8,
                team=300,
                min_size=100,
            ),
            Dept(
                "安全监察科",
                0.04,
                (("安全检查工", 0.6), ("安全员", 0.4)),
                0.95,
                2.6,
                2.6,
                min_size=100,
            ),
            Dept(
                "洗煤厂",
                0.08,
                (("选煤工", 0.6), ("装卸工", 0.2), ("煤质化验工", 0.2)),
                0.75,
                1.6,
                1.8,
                min_size=200,
            ),
            Dept("调度室", 0.03, (("调度员", 1.0),), 0.8, 2.8, 1.8, min_size=100),
            Dept(
                "地测科", 0.03, (("测量工", 0.5), ("地质技术员", 0.5)), 0.85, 3.3, 2.0, min_size=200
            ),
            Dept(
                "综合办公室",
                0.06,
                (("行政管理人员", 0.5), ("文员", 0.3), ("司机", 0.2)),
                0.5,
                3.2,
                -1.0,
            ),
            Dept("财务科", 0.02, (("会计", 0.7), ("出纳", 0.3)), 0.3, 3.5, -1.5, min_size=100),
            Dept(
                "后勤服务中心",
                0.05,
                (("炊事员", 0.35), ("保洁员", 0.3), ("浴室服务员", 0.15), ("保安员", 0.2)),
                0.45,
                1.2,
                0.5,
                min_size=100,
                age=4,
            ),
        ),
        dispatched=0.04,
        part_time=0.0,
        mean_tenure=16,
    ),
    Sector(
        "metallurgy",
        0.03,
        (
            Pattern("25", 0.45, words=("焦化", "焦化", "煤化工", "焦煤化工")),
            Pattern("31", 0.4, words=("钢铁", "特钢", "冶金", "铸造")),
            Pattern("32", 0.15, words=("铝业", "镁业", "有色金属")),
        ),
        (250, 1.3, 20, 12000),
        INDUSTRY_BANDS,
        ((O.STATE, 0.3), (O.SHAREHOLDING, 0.35), (O.PRIVATE, 0.35)),
        -0.3,
        (41, 9),
        (
            Dept(
                "炼焦{n}车间",
                0.5,
                (("炼焦工", 0.45), ("化工操作工", 0.25), ("推焦车司机", 0.15), ("配煤工", 0.15)),
                0.88,
                1.8,
                2.0,
                team=200,
                only=("25",),
            ),
            Dept(
                "炼钢{n}车间",
                0.5,
                (("炼钢工", 0.35), ("炉前工", 0.25), ("轧钢工", 0.25), ("天车工", 0.15)),
                0.9,
                1.8,
                2.1,
                team=200,
                only=("31",),
            ),
            Dept(
                "电解{n}车间",
                0.5,
                (("电解工", 0.5), ("铸造工", 0.3), ("天车工", 0.2)),
                0.88,
                1.8,
                2.0,
                team=200,
                only=("32",),
            ),
            MAINTENANCE,
            QUALITY,
            SAFETY,
            STORES,
            SALES,
            OFFICE,
            FINANCE,
            CANTEEN,
        ),
        dispatched=0.08,
        part_time=0.0,
        mean_tenure=14,
    ),
    Sector(
        "chemicals",
        0.025,
        (
            Pattern("26", 0.6, words=("化工", "化学", "新材料")),
            Pattern("27", 0.3, words=("药业", "制药", "生物医药")),
            Pattern("28", 0.1, words=("化纤", "化学纤维")),
        ),
        (120, 1.2, 10, 5000),
        INDUSTRY_BANDS,
        _MIXED,
        -0.2,
        (38, 9),
        (
            Dept(
                "生产{n}车间",
                0.55,
                (("化工操作工", 0.5), ("制剂工", 0.2), ("包装工", 0.15), ("配料工", 0.15)),
                0.68,
                2.1,
                1.8,
                team=150,
            ),
            MAINTENANCE,
            Dept("质检中心", 0.08, (("化验员", 0.7), ("质检员", 0.3)), 0.35, 3.0, 1.5, min_size=40),
            Dept(
                "研发中心",
                0.06,
                (("研发工程师", 0.7), ("化验员", 0.3)),
                0.55,
                4.4,
                0.5,
                min_size=200,
            ),
            SAFETY,
            STORES,
            SALES,
            OFFICE,
            FINANCE,
        ),
        dispatched=0.08,
    ),
    Sector(
        "machinery",
        0.06,
        (
            Pattern("33", 0.1, words=("金属制品", "五金", "钢结构")),
            Pattern("34", 0.2, words=("机械", "重工", "机械制造")),
            Pattern("35", 0.2, words=("矿山机械", "装备制造", "煤机装备")),
            Pattern("36", 0.2, words=("汽车", "汽车零部件", "新能源汽车")),
            Pattern("37", 0.05, words=("轨道交通装备", "机车车辆")),
            Pattern("38", 0.25, words=("电气", "电力设备", "电缆", "电器")),
        ),
        (150, 1.3, 10, 8000),
        INDUSTRY_BANDS,
        _MIXED,
        0.0,
        (39, 9),
        (
            Dept(
                "机加工{n}车间",
                0.3,
                (("车工", 0.3), ("铣工", 0.2), ("数控机床操作工", 0.3), ("磨工", 0.2)),
                0.86,
                2.0,
                2.3,
                team=150,
            ),
            Dept(
                "装配{n}车间",
                0.3,
                (("装配钳工", 0.6), ("电工", 0.25), ("调试工", 0.15)),
                0.78,
                2.0,
                2.1,
                team=150,
            ),
            Dept("焊接车间", 0.1, (("焊工", 0.8), ("铆工", 0.2)), 0.95, 1.7, 2.3, min_size=50),
            RND,
            QUALITY,
            STORES,
            SALES,
            OFFICE,
            FINANCE,
            HR,
            CANTEEN,
        ),
        dispatched=0.08,
    ),
    Sector(
        "electronics",
        0.03,
        (
            Pattern("39", 0.8, words=("电子", "光电", "智能科技", "半导体")),
            Pattern("40", 0.2, words=("仪器仪表", "智能仪表")),
        ),
        (200, 1.3, 15, 20000),
        INDUSTRY_BANDS,
        ((O.PRIVATE, 0.45), (O.FOREIGN, 0.2), (O.HMT, 0.2), (O.SHAREHOLDING, 0.15)),
        0.6,
        (32, 8),
        (
            Dept(
                "装配{n}车间",
                0.6,
                (("电子装配工", 0.6), ("检验员", 0.2), ("物料员", 0.2)),
                0.45,
                2.2,
                1.3,
                team=200,
                age=-3,
            ),
            Dept(
                "工程部",
                0.08,
                (("电子工程师", 0.5), ("设备维修工", 0.5)),
                0.8,
                3.6,
                2.0,
                min_size=40,
            ),
            Dept("品质部", 0.06, (("质检员", 1.0),), 0.4, 2.6, 1.3, min_size=40),
            Dept(
                "研发中心",
                0.06,
                (("硬件工程师", 0.5), ("软件工程师", 0.5)),
                0.75,
                4.4,
                0.0,
                min_size=200,
            ),
            STORES,
            OFFICE,
            FINANCE,
            HR,
            CANTEEN,
        ),
        dispatched=0.15,
        part_time=0.02,
        mean_tenure=6,
    ),
    Sector(
        "food",
        0.03,
        (
            Pattern("13", 0.35, words=("粮油", "食品", "肉类食品", "农产品加工")),
            Pattern("14", 0.25, words=("食品", "乳业", "面业")),
            Pattern("15", 0.4, words=("酒业", "醋业", "饮品", "酿造")),
        ),
        (60, 1.3, 5, 6000),
        INDUSTRY_BANDS,
        _PRIVATE,
        -0.3,
        (40, 10),
        (
            Dept(
                "生产{n}车间",
                0.55,
                (("食品加工工", 0.45), ("包装工", 0.3), ("酿造工", 0.25)),
                0.45,
                1.6,
                1.5,
                team=150,
            ),
            Dept("品控部", 0.06, (("质检员", 0.6), ("化验员", 0.4)), 0.35, 3.0, 1.2, min_size=30),
            MAINTENANCE,
            STORES,
            SALES,
            OFFICE,
            FINANCE,
        ),
        dispatched=0.06,
        part_time=0.05,
    ),
    Sector(
        "textiles",
        0.02,
        (
            Pattern("17", 0.5, words=("纺织", "棉纺", "毛纺织")),
            Pattern("18", 0.4, words=("服饰", "服装", "制衣")),
            Pattern("19", 0.1, words=("鞋业", "皮革制品")),
        ),
        (90, 1.2, 8, 5000),
        INDUSTRY_BANDS,
        _PRIVATE,
        -0.2,
        (40, 9),
        (
            Dept(
                "生产{n}车间",
                0.6,
                (("纺纱工", 0.25), ("织布工", 0.2), ("缝纫工", 0.4), ("整烫工", 0.15)),
                0.2,
                1.4,
                1.6,
                team=120,
            ),
            Dept("裁剪车间", 0.08, (("裁剪工", 1.0),), 0.4, 1.5, 1.8, min_size=60),
            Dept("质检部", 0.05, (("质检员", 1.0),), 0.2, 2.2, 1.4, min_size=60),
            Dept("设备部", 0.04, (("机修工", 0.7), ("电工", 0.3)), 0.85, 1.8, 2.2, min_size=60),
            STORES,
            SALES,
            OFFICE,
            FINANCE,
        ),
        dispatched=0.06,
        part_time=0.04,
    ),
    Sector(
        "materials",
        0.025,
        (
            Pattern("30", 0.6, words=("建材", "水泥", "陶瓷", "玻璃")),
            Pattern("29", 0.15, words=("塑料制品", "橡胶制品")),
            Pattern("22", 0.1, words=("纸业", "包装材料")),
            Pattern("21", 0.15, words=("家具", "木业")),
        ),
        (70, 1.2, 6, 4000),
        INDUSTRY_BANDS,
        _PRIVATE,
        -0.5,
        (42, 9),
        (
            Dept(
                "生产{n}车间",
                0.6,
                (("生产操作工", 0.4), ("窑炉工", 0.2), ("成型工", 0.2), ("包装工", 0.2)),
                0.78,
                1.5,
                1.6,
                team=150,
            ),
            MAINTENANCE,
            QUALITY,
            STORES,
            SALES,
            OFFICE,
            FINANCE,
        ),
        dispatched=0.06,
        part_time=0.03,
    ),
    Sector(
        "utilities",
        0.035,
        (
            Pattern("44", 0.7, words=("电力", "发电", "热电", "新能源", "供电")),
            Pattern("45", 0.15, words=("燃气", "天然气")),
            Pattern("46", 0.15, words=("水务", "供水", "自来水")),
        ),
        (200, 1.1, 20, 6000),
        INDUSTRY_BANDS,
        ((O.STATE, 0.75), (O.SHAREHOLDING, 0.18), (O.PRIVATE, 0.07)),
        0.0,
        (41, 9),
        (
            Dept(
                "运行{n}值",
                0.35,
                (("集控值班员", 0.5), ("电气值班员", 0.3), ("锅炉运行值班员", 0.2)),
                0.85,
                2.8,
                2.4,
                team=60,
                only=("44",),
            ),
            Dept(
                "管网运行{n}班",
                0.35,
                (("管道工", 0.5), ("仪表工", 0.3), ("巡线工", 0.2)),
                0.88,
                2.2,
                2.2,
                team=60,
                only=("45", "46"),
            ),
            Dept(
                "检修部",
                0.2,
                (("电气检修工", 0.4), ("热工仪表检修工", 0.3), ("管道工", 0.3)),
                0.92,
                2.5,
                2.6,
            ),
            Dept(
                "营销服务中心",
                0.12,
                (("抄表核算收费员", 0.5), ("客户服务员", 0.5)),
                0.4,
                3.0,
                1.0,
                min_size=40,
            ),
            SAFETY,
            OFFICE,
            FINANCE,
            CANTEEN,
        ),
        dispatched=0.07,
        part_time=0.0,
        mean_tenure=15,
    ),
    Sector(
        "construction",
        0.09,
        (
            Pattern("47", 0.45, words=("建筑工程", "建设", "建工", "建设工程")),
            Pattern("48", 0.3, words=("路桥", "市政工程", "交通工程", "水利工程")),
            Pattern("49", 0.15, words=("安装工程", "机电安装", "电力安装")),
            Pattern("50", 0.1, words=("装饰工程", "装饰", "建筑装饰")),
        ),
        (45, 1.5, 4, 15000),
        INDUSTRY_BANDS,
        ((O.PRIVATE, 0.65), (O.STATE, 0.2), (O.SHAREHOLDING, 0.12), (O.COLLECTIVE, 0.03)),
        0.0,
        (44, 10),
        (
            Dept(
                "项目{n}部",
                0.65,
                (
                    ("钢筋工", 0.18),
                    ("混凝土工", 0.15),
                    ("架子工", 0.12),
                    ("砌筑工", 0.12),
                    ("木工", 0.1),
                    ("电焊工", 0.1),
                    ("施工员", 0.08),
                    ("测量员", 0.05),
                    ("塔式起重机司机", 0.05),
                    ("普工", 0.05),
                ),
                0.93,
                1.2,
                1.5,
                team=120,
                age=2,
            ),
            Dept(
                "工程技术部",
                0.08,
                (("建造师", 0.3), ("技术员", 0.5), ("造价员", 0.2)),
                0.7,
                3.8,
                0.5,
                min_size=50,
            ),
            Dept(
                "安全质量部", 0.05, (("安全员", 0.6), ("质检员", 0.4)), 0.85, 3.0, 1.5, min_size=50
            ),
            Dept(
                "物资设备部",
                0.05,
                (("材料员", 0.6), ("机械管理员", 0.4)),
                0.8,
                2.5,
                1.0,
                min_size=80,
            ),
            OFFICE,
            FINANCE,
        ),
        dispatched=0.15,
        part_time=0.05,
        joint="construction",
        mean_tenure=8,
    ),
    Sector(
        "retail",
        0.08,
        (
            Pattern("51", 0.35, words=("商贸", "贸易", "物资")),
            Pattern("52", 0.65, words=("超市", "百货", "购物中心", "便利店", "商业连锁")),
        ),
        (12, 1.4, 3, 6000),
        RETAIL_BANDS,
        (
            (O.PRIVATE, 0.8),
            (O.SHAREHOLDING, 0.08),
            (O.STATE, 0.05),
            (O.COLLECTIVE, 0.03),
            (O.FOREIGN, 0.04),
        ),
        0.8,
        (35, 10),
        (
            Dept(
                "第{n}门店",
                0.7,
                (("营业员", 0.5), ("收银员", 0.25), ("理货员", 0.2), ("商场信息员", 0.05)),
                0.28,
                1.9,
                0.0,
                team=40,
                age=-3,
            ),
            Dept("采购部", 0.06, (("采购员", 1.0),), 0.5, 2.8, -1.0, min_size=30),
            Dept(
                "仓储配送部",
                0.1,
                (("仓库管理员", 0.4), ("配送员", 0.6)),
                0.8,
                1.8,
                0.0,
                min_size=30,
            ),
            Dept("客服部", 0.03, (("客服专员", 1.0),), 0.2, 2.8, -1.0, min_size=80),
            Dept("综合办公室", 0.05, (("行政管理人员", 0.5), ("文员", 0.5)), 0.4, 3.2, -1.5),
            FINANCE,
        ),
        dispatched=0.05,
        part_time=0.08,
        joint="commerce",
        mean_tenure=6,
    ),
    Sector(
        "bus",
        0.015,
        (Pattern("54", 1.0, words=("公共交通", "公交", "客运", "旅游客运")),),
        (200, 1.0, 15, 6000),
        INDUSTRY_BANDS,
        ((O.STATE, 0.6), (O.PRIVATE, 0.25), (O.SHAREHOLDING, 0.15)),
        0.5,
        (43, 8),
        (
            Dept(
                "第{n}车队",
                0.65,
                (("公交车驾驶员", 0.75), ("长途客车驾驶员", 0.15), ("乘务员", 0.1)),
                0.85,
                1.8,
                1.6,
                team=120,
            ),
            Dept("调度中心", 0.06, (("调度员", 1.0),), 0.55, 2.6, 1.0, min_size=40),
            Dept(
                "维修车间", 0.1, (("汽车维修工", 0.8), ("钣金工", 0.2)), 0.95, 1.8, 2.2, min_size=60
            ),
            Dept("安全管理部", 0.03, (("安全员", 1.0),), 0.8, 2.8, 1.0, min_size=80),
            OFFICE,
            FINANCE,
        ),
        dispatched=0.05,
        part_time=0.0,
        joint="logistics",
        mean_tenure=12,
    ),
    Sector(
        "freight",
        0.03,
        (
            Pattern("54", 0.6, words=("物流", "运输", "货运", "汽车运输")),
            Pattern("59", 0.4, words=("仓储", "仓储物流", "供应链管理", "冷链物流")),
        ),
        (25, 1.3, 3, 5000),
        INDUSTRY_BANDS,
        _PRIVATE,
        0.0,
        (40, 9),
        (
            Dept(
                "货运{n}队",
                0.5,
                (("货车司机", 0.85), ("押运员", 0.15)),
                0.97,
                1.4,
                1.2,
                team=80,
                forms=((F.TRUCK_DRIVER, 0.6), (F.STANDARD, 0.35), (F.DISPATCHED, 0.05)),
                only=("54",),
            ),
            Dept(
                "仓储中心",
                0.45,
                (("仓库管理员", 0.3), ("装卸搬运工", 0.5), ("叉车司机", 0.2)),
                0.78,
                1.5,
                1.0,
            ),
            Dept("调度中心", 0.06, (("调度员", 1.0),), 0.6, 2.6, 0.5, min_size=30),
            Dept(
                "维修车间", 0.05, (("汽车维修工", 1.0),), 0.95, 1.6, 2.0, min_size=60, only=("54",)
            ),
            OFFICE,
            FINANCE,
        ),
        dispatched=0.1,
        part_time=0.05,
        joint="logistics",
        mean_tenure=7,
    ),
    Sector(
        "courier",
        0.025,
        (Pattern("60", 1.0, words=("快递服务", "速递", "快运", "供应链管理")),),
        (30, 1.2, 4, 4000),
        INDUSTRY_BANDS,
        ((O.PRIVATE, 0.75), (O.SHAREHOLDING, 0.15), (O.STATE, 0.1)),
        0.6,
        (33, 8),
        (
            Dept(
                "第{n}营业部",
                0.7,
                (("快递员", 0.88), ("仓管员", 0.12)),
                0.85,
                1.7,
                0.0,
                team=40,
                forms=((F.COURIER, 0.75), (F.STANDARD, 0.15), (F.DISPATCHED, 0.1)),
                age=-1,
            ),
            Dept(
                "分拨中心",
                0.2,
                (("快件分拣员", 0.7), ("装卸搬运工", 0.3)),
                0.65,
                1.6,
                0.0,
                min_size=40,
                forms=((F.STANDARD, 0.6), (F.DISPATCHED, 0.3), (F.PART_TIME, 0.1)),
            ),
            Dept("客服部", 0.04, (("客服专员", 1.0),), 0.25, 2.8, -1.0, min_size=60),
            Dept("综合部", 0.04, (("行政管理人员", 0.5), ("文员", 0.5)), 0.45, 3.0, -1.5),
        ),
        dispatched=0.1,
        part_time=0.05,
        joint="courier",
        mean_tenure=4,
    ),
    Sector(
        "platform_delivery",
        0.025,
        (
            Pattern("60", 0.6, words=("即时配送", "同城配送", "跑腿服务")),
            Pattern("64", 0.4, words=("网络科技", "信息科技", "互联网科技")),
        ),
        (700, 0.8, 150, 8000),
        INDUSTRY_BANDS,
        ((O.PRIVATE, 0.8), (O.SHAREHOLDING, 0.15), (O.FOREIGN, 0.05)),
        1.5,
        (31, 7),
        (
            Dept(
                "配送{n}站",
                0.85,
                (("外卖骑手", 0.94), ("配送站长", 0.06)),
                0.9,
                1.8,
                -1.5,
                team=80,
                forms=((F.DELIVERY_RIDER, 0.92), (F.PART_TIME, 0.08)),
                new_form_union=True,
            ),
            Dept("运营中心", 0.06, (("运营专员", 0.7), ("站点管理员", 0.3)), 0.6, 3.5, -1.0),
            Dept("客服中心", 0.04, (("客服专员", 1.0),), 0.3, 2.8, -1.0, min_size=100),
            Dept("技术部", 0.02, (("软件工程师", 1.0),), 0.8, 4.2, -1.0, min_size=300),
            Dept("综合办公室", 0.03, (("行政管理人员", 0.5), ("文员", 0.5)), 0.45, 3.3, -1.5),
        ),
        dispatched=0.03,
        part_time=0.0,
        joint="new_form",
        platform=True,
        mean_tenure=2.5,
    ),
    Sector(
        "platform_ride",
        0.01,
        (Pattern("54", 1.0, words=("出行科技", "网约车服务", "汽车服务")),),
        (500, 0.8, 100, 6000),
        INDUSTRY_BANDS,
        ((O.PRIVATE, 0.85), (O.SHAREHOLDING, 0.15)),
        1.5,
        (38, 8),
        (
            Dept(
                "司机服务{n}部",
                0.88,
                (("网约车司机", 1.0),),
                0.93,
                2.0,
                -1.0,
                team=300,
                forms=((F.RIDE_HAILING, 0.95), (F.PART_TIME, 0.05)),
                new_form_union=True,
            ),
            Dept("运营部", 0.04, (("运营专员", 1.0),), 0.55, 3.5, -1.0),
            Dept(
                "安全管理部",
                0.03,
                (("安全员", 0.5), ("车辆审核员", 0.5)),
                0.7,
                3.0,
                0.0,
                min_size=80,
            ),
            Dept("客服中心", 0.03, (("客服专员", 1.0),), 0.3, 2.8, -1.0, min_size=100),
            Dept("综合办公室", 0.02, (("行政管理人员", 0.5), ("文员", 0.5)), 0.45, 3.3, -1.5),
        ),
        dispatched=0.02,
        part_time=0.0,
        joint="new_form",
        platform=True,
        mean_tenure=2.5,
    ),
    Sector(
        "platform_freight",
        0.006,
        (Pattern("54", 1.0, words=("网络货运", "物流科技", "供应链科技")),),
        (400, 0.8, 80, 5000),
        INDUSTRY_BANDS,
        ((O.PRIVATE, 0.85), (O.SHAREHOLDING, 0.15)),
        1.2,
        (41, 8),
        (
            Dept(
                "运力{n}部",
                0.88,
                (("货车司机", 1.0),),
                0.98,
                1.5,
                0.5,
                team=300,
                forms=((F.TRUCK_DRIVER, 0.95), (F.STANDARD, 0.05)),
                new_form_union=True,
            ),
            Dept("调度中心", 0.05, (("调度员", 1.0),), 0.6, 2.8, 0.0),
            Dept("运营部", 0.04, (("运营专员", 1.0),), 0.55, 3.5, -1.0),
            Dept("综合办公室", 0.03, (("行政管理人员", 0.5), ("文员", 0.5)), 0.45, 3.3, -1.5),
        ),
        dispatched=0.0,
        part_time=0.0,
        joint="new_form",
        platform=True,
        mean_tenure=3,
    ),
    Sector(
        "catering",
        0.05,
        (
            Pattern("61", 0.3, words=("大酒店", "酒店管理", "宾馆")),
            Pattern("62", 0.7, words=("餐饮管理", "餐饮服务", "面食", "饮食服务")),
        ),
        (14, 1.1, 4, 2000),
        SERVICE_BANDS,
        ((O.PRIVATE, 0.85), (O.STATE, 0.05), (O.SHAREHOLDING, 0.05), (O.COLLECTIVE, 0.05)),
        0.7,
        (36, 10),
        (
            Dept(
                "厨房部",
                0.35,
                (("中式烹调师", 0.45), ("中式面点师", 0.25), ("厨工", 0.3)),
                0.62,
                1.5,
                1.2,
            ),
            Dept(
                "前厅部",
                0.4,
                (("餐厅服务员", 0.75), ("传菜员", 0.15), ("收银员", 0.1)),
                0.3,
                1.7,
                -0.5,
                age=-5,
            ),
            Dept(
                "客房部",
                0.25,
                (("客房服务员", 0.9), ("洗衣工", 0.1)),
                0.12,
                1.4,
                0.0,
                only=("61",),
                age=4,
            ),
            Dept("采购部", 0.03, (("采购员", 1.0),), 0.6, 2.2, -1.0, min_size=40),
            Dept(
                "综合办公室",
                0.03,
                (("行政管理人员", 0.5), ("文员", 0.5)),
                0.45,
                3.0,
                -1.5,
                min_size=20,
            ),
            FINANCE,
        ),
        dispatched=0.04,
        part_time=0.12,
        joint="catering",
        mean_tenure=5,
    ),
    Sector(
        "it",
        0.03,
        (
            Pattern("63", 0.25, words=("通信", "通信工程", "信息通信")),
            Pattern("64", 0.25, words=("网络科技", "互联网信息服务")),
            Pattern("65", 0.5, words=("软件", "信息技术", "数据科技", "智能科技")),
        ),
        (40, 1.3, 5, 5000),
        SERVICE_BANDS,
        (
            (O.PRIVATE, 0.6),
            (O.STATE, 0.15),
            (O.SHAREHOLDING, 0.15),
            (O.FOREIGN, 0.05),
            (O.HMT, 0.05),
        ),
        1.5,
        (32, 6),
        (
            Dept(
                "研发{n}部",
                0.55,
                (
                    ("软件工程师", 0.55),
                    ("测试工程师", 0.15),
                    ("前端开发工程师", 0.15),
                    ("运维工程师", 0.1),
                    ("算法工程师", 0.05),
                ),
                0.72,
                4.1,
                -0.5,
                team=60,
            ),
            Dept(
                "产品部", 0.08, (("产品经理", 0.6), ("UI设计师", 0.4)), 0.5, 4.2, -1.0, min_size=30
            ),
            Dept(
                "网络维护部",
                0.15,
                (("通信线务员", 0.6), ("网络维护工程师", 0.4)),
                0.9,
                2.8,
                1.5,
                min_size=40,
                only=("63",),
            ),
            Dept(
                "技术服务部",
                0.1,
                (("实施工程师", 0.5), ("技术支持工程师", 0.5)),
                0.75,
                3.6,
                -0.5,
                min_size=30,
            ),
            Dept("市场销售部", 0.08, (("销售经理", 0.5), ("客户经理", 0.5)), 0.6, 3.6, -1.5),
            Dept(
                "综合管理部", 0.04, (("行政管理人员", 0.5), ("人力资源专员", 0.5)), 0.35, 3.8, -1.5
            ),
            FINANCE,
        ),
        dispatched=0.06,
        part_time=0.01,
        mean_tenure=5,
    ),
    Sector(
        "finance",
        0.03,
        (
            Pattern("66", 0.35, "{county}农村商业银行股份有限公司"),
            Pattern("66", 0.35, "{place}{brand}村镇银行股份有限公司"),
            Pattern("66", 0.1, "{place}{brand}小额贷款有限公司"),
            Pattern("67", 0.05, "{place}{brand}证券投资咨询有限公司"),
            Pattern("68", 0.1, "{place}{brand}保险代理有限公司"),
            Pattern("69", 0.05, "{place}{brand}融资担保有限公司"),
        ),
        (60, 1.1, 8, 4000),
        SERVICE_BANDS,
        ((O.SHAREHOLDING, 0.55), (O.STATE, 0.3), (O.PRIVATE, 0.15)),
        0.8,
        (37, 9),
        (
            Dept(
                "第{n}营业部",
                0.6,
                (("银行柜员", 0.45), ("客户经理", 0.35), ("理财经理", 0.2)),
                0.38,
                3.9,
                -1.0,
                team=25,
            ),
            Dept("信贷部", 0.1, (("信贷员", 1.0),), 0.6, 4.0, -1.0, min_size=30),
            Dept("风险管理部", 0.06, (("风险管理员", 1.0),), 0.5, 4.2, -1.0, min_size=30),
            Dept("运营管理部", 0.06, (("运营专员", 1.0),), 0.4, 3.8, -1.0, min_size=60),
            Dept("科技部", 0.04, (("软件工程师", 1.0),), 0.75, 4.3, -1.0, min_size=150),
            Dept(
                "综合办公室",
                0.06,
                (("行政管理人员", 0.5), ("文员", 0.3), ("司机", 0.2)),
                0.5,
                3.6,
                -1.5,
            ),
            FINANCE,
        ),
        dispatched=0.1,
        part_time=0.0,
        mean_tenure=12,
    ),
    Sector(
        "property",
        0.04,
        (
            Pattern("70", 0.65, words=("物业管理", "物业服务")),
            Pattern("70", 0.2, words=("房地产开发", "置业")),
            Pattern("70", 0.15, words=("房产经纪", "房地产经纪")),
        ),
        (40, 1.3, 4, 5000),
        PROPERTY_BANDS,
        _PRIVATE,
        0.9,
        (42, 11),
        (
            Dept(
                "第{n}物业服务中心",
                0.7,
                (
                    ("保安员", 0.35),
                    ("保洁员", 0.3),
                    ("物业维修工", 0.15),
                    ("绿化工", 0.1),
                    ("客服专员", 0.1),
                ),
                0.55,
                1.5,
                0.3,
                team=60,
                age=5,
            ),
            Dept(
                "工程部",
                0.1,
                (("水电维修工", 0.6), ("电梯维修工", 0.4)),
                0.95,
                2.0,
                2.0,
                min_size=40,
            ),
            Dept("营销部", 0.12, (("置业顾问", 0.5), ("房地产经纪人", 0.5)), 0.45, 3.0, -1.0),
            OFFICE,
            FINANCE,
        ),
        dispatched=0.12,
        part_time=0.05,
        mean_tenure=6,
    ),
    Sector(
        "business",
        0.035,
        (
            Pattern("72", 0.5, words=("保安服务", "安保服务")),
            Pattern("72", 0.35, words=("人力资源服务", "劳务服务", "企业管理咨询")),
            Pattern("71", 0.15, words=("设备租赁", "汽车租赁")),
        ),
        (35, 1.3, 4, 4000),
        SERVICE_BANDS,
        _PRIVATE,
        0.7,
        (40, 11),
        (
            Dept(
                "保安{n}大队",
                0.75,
                (("保安员", 0.93), ("保安队长", 0.07)),
                0.88,
                1.5,
                0.3,
                team=100,
                age=6,
            ),
            Dept("业务部", 0.12, (("业务员", 0.6), ("人力资源专员", 0.4)), 0.5, 3.0, -1.0),
            Dept("综合办公室", 0.06, (("行政管理人员", 0.5), ("文员", 0.5)), 0.45, 3.0, -1.5),
            FINANCE,
        ),
        dispatched=0.05,
        part_time=0.04,
        mean_tenure=5,
    ),
    Sector(
        "education",
        0.08,
        (
            Pattern("83", 0.28, "{county}第{n}中学", ownership=O.INSTITUTION, authority="12"),
            Pattern("83", 0.3, "{county}第{n}小学", ownership=O.INSTITUTION, authority="12"),
            Pattern("83", 0.05, "{county}实验小学", ownership=O.INSTITUTION, authority="12"),
            Pattern("83", 0.05, "{county}实验中学", ownership=O.INSTITUTION, authority="12"),
            Pattern("83", 0.1, "{county}第{n}幼儿园", ownership=O.INSTITUTION, authority="12"),
            Pattern("83", 0.03, "{county}职业中学", ownership=O.INSTITUTION, authority="12"),
            Pattern("83", 0.03, "{city}第{n}中学", ownership=O.INSTITUTION, authority="12"),
            Pattern("83", 0.01, "{city}职业技术学院", ownership=O.INSTITUTION, authority="12"),
            Pattern(
                "83",
                0.15,
                "{place}{brand}{word}{suffix}",
                words=("教育科技", "培训学校"),
                ownership=O.PRIVATE,
            ),
        ),
        (70, 0.8, 12, 3000),
        SERVICE_BANDS,
        ((O.INSTITUTION, 1.0),),
        0.2,
        (40, 10),
        (
            Dept("语文教研组", 0.2, (("教师", 1.0),), 0.2, 4.0, -2.0),
            Dept("数学教研组", 0.2, (("教师", 1.0),), 0.35, 4.0, -2.0),
            Dept("英语教研组", 0.12, (("教师", 1.0),), 0.15, 4.0, -2.0, min_size=30),
            Dept("理科教研组", 0.12, (("教师", 1.0),), 0.45, 4.1, -2.0, min_size=40),
            Dept("文科教研组", 0.1, (("教师", 1.0),), 0.3, 4.0, -2.0, min_size=40),
            Dept("体育艺术教研组", 0.08, (("教师", 1.0),), 0.5, 3.8, -2.0, min_size=40),
            Dept("教务处", 0.04, (("教务员", 0.6), ("教师", 0.4)), 0.4, 4.0, -2.0, min_size=60),
            Dept(
                "后勤处",
                0.06,
                (("后勤管理员", 0.3), ("保安员", 0.3), ("保洁员", 0.2), ("炊事员", 0.2)),
                0.5,
                1.6,
                0.0,
                min_size=30,
                age=6,
            ),
            Dept("办公室", 0.04, (("行政人员", 0.7), ("会计", 0.3)), 0.4, 3.8, -2.0, min_size=20),
        ),
        dispatched=0.02,
        part_time=0.02,
        mean_tenure=15,
    ),
    Sector(
        "health",
        0.065,
        (
            Pattern("84", 0.2, "{county}人民医院", ownership=O.INSTITUTION, authority="12"),
            Pattern("84", 0.1, "{county}中医医院", ownership=O.INSTITUTION, authority="12"),
            Pattern("84", 0.08, "{county}妇幼保健院", ownership=O.INSTITUTION, authority="12"),
            Pattern(
                "84", 0.05, "{county}疾病预防控制中心", ownership=O.INSTITUTION, authority="12"
            ),
            Pattern("84", 0.15, "{city}第{n}人民医院", ownership=O.INSTITUTION, authority="12"),
            Pattern("84", 0.12, "{place}{brand}医院有限公司", ownership=O.PRIVATE),
            Pattern("84", 0.05, "{place}{brand}口腔医院有限公司", ownership=O.PRIVATE),
            Pattern("85", 0.05, "{county}社会福利院", ownership=O.INSTITUTION, authority="12"),
            Pattern("85", 0.1, "{place}{brand}养老服务有限公司", ownership=O.PRIVATE),
            Pattern("85", 0.1, "{place}{brand}护理院有限公司", ownership=O.PRIVATE),
        ),
        (150, 1.1, 15, 6000),
        SERVICE_BANDS,
        ((O.INSTITUTION, 1.0),),
        0.5,
        (38, 10),
        (
            Dept(
                "内科",
                0.2,
                (("医生", 0.35), ("护士", 0.55), ("护理员", 0.1)),
                0.3,
                3.7,
                -2.0,
                only=("84",),
            ),
            Dept(
                "外科",
                0.18,
                (("医生", 0.4), ("护士", 0.5), ("护理员", 0.1)),
                0.45,
                3.7,
                -2.0,
                only=("84",),
            ),
            Dept(
                "妇产科",
                0.08,
                (("医生", 0.35), ("护士", 0.6), ("护理员", 0.05)),
                0.06,
                3.7,
                -2.0,
                min_size=40,
                only=("84",),
            ),
            Dept(
                "儿科",
                0.07,
                (("医生", 0.35), ("护士", 0.65)),
                0.2,
                3.7,
                -2.0,
                min_size=60,
                only=("84",),
            ),
            Dept(
                "急诊科",
                0.07,
                (("医生", 0.4), ("护士", 0.6)),
                0.4,
                3.6,
                -2.0,
                min_size=80,
                only=("84",),
            ),
            Dept(
                "医技科",
                0.12,
                (("医学检验技师", 0.4), ("医学影像技师", 0.35), ("药剂师", 0.25)),
                0.4,
                3.7,
                -1.0,
                min_size=40,
                only=("84",),
            ),
            Dept(
                "护理部",
                0.06,
                (("护士", 0.9), ("护理员", 0.1)),
                0.03,
                3.3,
                -2.0,
                min_size=120,
                only=("84",),
            ),
            Dept(
                "护理{n}区",
                0.7,
                (("养老护理员", 0.8), ("护工", 0.2)),
                0.15,
                1.3,
                0.5,
                team=40,
                age=9,
                only=("85",),
            ),
            Dept(
                "医务科",
                0.05,
                (("医生", 0.7), ("社会工作者", 0.3)),
                0.4,
                3.8,
                -2.0,
                min_size=30,
                only=("85",),
            ),
            Dept(
                "行政后勤科",
                0.08,
                (("行政人员", 0.4), ("保安员", 0.2), ("保洁员", 0.2), ("司机", 0.2)),
                0.5,
                2.4,
                -0.5,
                min_size=30,
                age=4,
            ),
        ),
        dispatched=0.06,
        part_time=0.03,
        mean_tenure=13,
    ),
    Sector(
        "sanitation",
        0.02,
        (
            Pattern(
                "78", 0.35, "{county}环境卫生服务中心", ownership=O.INSTITUTION, authority="12"
            ),
            Pattern("78", 0.35, words=("环境服务", "环境卫生管理", "保洁服务")),
            Pattern("78", 0.15, words=("园林绿化工程", "市政设施管理")),
            Pattern("77", 0.15, words=("环保科技", "环境治理")),
        ),
        (60, 1.1, 8, 3000),
        SERVICE_BANDS,
        ((O.PRIVATE, 0.6), (O.STATE, 0.3), (O.COLLECTIVE, 0.1)),
        0.5,
        (47, 8),
        (
            Dept(
                "环卫{n}队",
                0.75,
                (("环卫工", 0.85), ("垃圾清运车司机", 0.15)),
                0.45,
                0.9,
                -0.5,
                team=60,
                age=3,
            ),
            Dept("绿化队", 0.12, (("绿化工", 1.0),), 0.5, 1.0, 0.0, min_size=30),
            Dept("设备维修班", 0.05, (("机修工", 1.0),), 0.95, 1.6, 1.6, min_size=60),
            OFFICE,
        ),
        dispatched=0.2,
        part_time=0.05,
        mean_tenure=8,
    ),
    Sector(
        "resident",
        0.02,
        (
            Pattern("80", 0.6, words=("家政服务", "保洁服务", "母婴护理")),
            Pattern("81", 0.4, words=("汽车维修服务", "家电维修服务")),
        ),
        (15, 1.1, 3, 1500),
        SERVICE_BANDS,
        ((O.PRIVATE, 0.9), (O.COLLECTIVE, 0.05), (O.OTHER, 0.05)),
        0.6,
        (42, 10),
        (
            Dept(
                "家政服务部",
                0.85,
                (("家政服务员", 0.6), ("育婴员", 0.2), ("护工", 0.2)),
                0.08,
                1.3,
                0.5,
                age=4,
                only=("80",),
            ),
            Dept(
                "维修车间",
                0.85,
                (("汽车维修工", 0.7), ("钣金工", 0.15), ("汽车美容工", 0.15)),
                0.92,
                1.6,
                1.5,
                only=("81",),
            ),
            Dept("客服部", 0.08, (("客服专员", 1.0),), 0.25, 2.5, -1.0, min_size=20),
            Dept(
                "综合办公室",
                0.05,
                (("行政管理人员", 0.5), ("文员", 0.5)),
                0.4,
                3.0,
                -1.5,
                min_size=10,
            ),
        ),
        dispatched=0.05,
        part_time=0.25,
        mean_tenure=5,
    ),
    Sector(
        "agriculture",
        0.01,
        (
            Pattern("01", 0.45, words=("农业开发", "农业科技", "种植")),
            Pattern("03", 0.35, words=("牧业", "养殖", "畜牧")),
            Pattern("05", 0.2, words=("农机服务", "农业服务")),
        ),
        (40, 1.2, 5, 3000),
        (1000, 300, 20),
        ((O.PRIVATE, 0.55), (O.COLLECTIVE, 0.25), (O.STATE, 0.2)),
        -1.5,
        (46, 9),
        (
            Dept(
                "生产{n}队",
                0.8,
                (("农业工人", 0.5), ("畜牧工", 0.3), ("农机驾驶员", 0.2)),
                0.62,
                1.2,
                0.8,
                team=60,
            ),
            Dept("技术服务部", 0.08, (("农艺师", 0.5), ("兽医", 0.5)), 0.6, 3.6, 0.5, min_size=40),
            Dept("销售部", 0.06, (("销售员", 1.0),), 0.6, 2.6, -1.0, min_size=40),
            OFFICE,
        ),
        dispatched=0.03,
        part_time=0.1,
        mean_tenure=10,
    ),
    Sector(
        "culture",
        0.01,
        (
            Pattern("86", 0.35, words=("文化传媒", "传媒", "出版")),
            Pattern("87", 0.2, "{city}广播电视台", ownership=O.INSTITUTION, authority="12"),
            Pattern("88", 0.25, "{city}艺术剧院", ownership=O.INSTITUTION, authority="12"),
            Pattern("88", 0.1, words=("文化艺术", "演艺")),
            Pattern("89", 0.1, words=("体育文化", "健身服务")),
        ),
        (40, 1.0, 5, 1500),
        SERVICE_BANDS,
        ((O.PRIVATE, 0.6), (O.STATE, 0.3), (O.SHAREHOLDING, 0.1)),
        1.2,
        (37, 9),
        (
            Dept("编辑部", 0.35, (("编辑", 0.6), ("记者", 0.4)), 0.4, 4.1, -1.5),
            Dept(
                "制作部",
                0.3,
                (("摄像师", 0.4), ("后期制作员", 0.3), ("演员", 0.3)),
                0.55,
                3.5,
                -0.5,
            ),
            Dept("运营推广部", 0.15, (("运营专员", 1.0),), 0.45, 3.8, -1.5, min_size=20),
            OFFICE,
        ),
        dispatched=0.05,
        part_time=0.05,
    ),
    Sector(
        "public_admin",
        0.045,
        tuple(
            Pattern(division, weight, "{county}" + body, ownership=O.INSTITUTION, authority="11")
            for division, weight, body in (
                ("92", 0.1, "人力资源和社会保障局"),
                ("92", 0.1, "市场监督管理局"),
                ("92", 0.08, "自然资源局"),
                ("92", 0.08, "交通运输局"),
                ("92", 0.08, "住房和城乡建设局"),
                ("92", 0.08, "农业农村局"),
                ("92", 0.06, "财政局"),
                ("92", 0.06, "民政局"),
                ("92", 0.06, "教育局"),
                ("92", 0.06, "卫生健康局"),
                ("92", 0.05, "应急管理局"),
                ("92", 0.05, "人民法院"),
                ("92", 0.04, "人民检察院"),
                ("94", 0.05, "社会保险中心"),
                ("94", 0.05, "医疗保障局"),
            )
        ),
        (60, 0.6, 15, 800),
        SERVICE_BANDS,
        ((O.INSTITUTION, 1.0),),
        0.0,
        (42, 9),
        (
            Dept("办公室", 0.2, (("科员", 0.6), ("办事员", 0.4)), 0.5, 4.0, -2.0),
            Dept("业务{n}科", 0.5, (("科员", 0.8), ("办事员", 0.2)), 0.55, 4.1, -2.0, team=25),
            Dept("政策法规科", 0.1, (("科员", 1.0),), 0.5, 4.3, -2.0, min_size=30),
            Dept("综合执法大队", 0.2, (("执法人员", 1.0),), 0.72, 3.6, -2.0, min_size=50),
        ),
        dispatched=0.03,
        part_time=0.0,
        mean_tenure=15,
    ),
    Sector(
        "independent",
        0.02,
        (Pattern("54", 1.0),),  # not used: these members have no employer
        (1, 0.0, 1, 1),
        SERVICE_BANDS,
        ((O.OTHER, 1.0),),
        0.8,
        (39, 9),
        (
            Dept(
                "网约车",
                0.35,
                (("网约车司机", 1.0),),
                0.93,
                2.0,
                -1.0,
                forms=((F.RIDE_HAILING, 1.0),),
            ),
            Dept(
                "货运",
                0.33,
                (("货车司机", 1.0),),
                0.98,
                1.4,
                0.5,
                age=3,
                forms=((F.TRUCK_DRIVER, 1.0),),
            ),
            Dept(
                "众包配送",
                0.2,
                (("外卖骑手", 1.0),),
                0.88,
                1.8,
                -1.5,
                age=-7,
                forms=((F.DELIVERY_RIDER, 1.0),),
            ),
            Dept(
                "家政护理",
                0.12,
                (("家政服务员", 0.6), ("护工", 0.4)),
                0.1,
                1.2,
                0.0,
                age=6,
                forms=((F.PART_TIME, 1.0),),
            ),
        ),
        joint="new_form",
        independent=True,
        mean_tenure=2.5,
    ),
)

SECTOR_BY_KEY: Mapping[str, Sector] = {s.key: s for s in SECTORS}

# Coal mining's share of union members by province (first two digits). Shanxi, Inner
# Mongolia, Shaanxi, Guizhou, Henan and Anhui are the big coal provinces; most coastal
# provinces mine almost none. Unlisted: no coal sector at all.
COAL_SHARE: Mapping[str, float] = {
    "14": 0.15,
    "15": 0.06,
    "61": 0.05,
    "52": 0.04,
    "41": 0.03,
    "34": 0.03,
    "23": 0.03,
    "64": 0.03,
    "37": 0.025,
    "65": 0.02,
    "13": 0.015,
    "62": 0.01,
    "53": 0.01,
    "51": 0.01,
    "21": 0.01,
    "22": 0.01,
    "50": 0.008,
    "36": 0.005,
    "43": 0.005,
    "32": 0.003,
    "35": 0.003,
    "45": 0.003,
}

# Other regional specialities, as multipliers of a sector's base share.
PROVINCE_BOOST: Mapping[str, Mapping[str, float]] = {
    "14": {"metallurgy": 2.0, "textiles": 0.5, "electronics": 0.6},  # 焦化、钢铁
    "13": {"metallurgy": 2.0},
    "44": {"electronics": 3.0, "textiles": 1.5, "machinery": 1.2},
    "32": {"electronics": 2.5, "machinery": 1.5, "textiles": 1.5},
    "33": {"textiles": 2.5, "machinery": 1.3},
    "35": {"textiles": 2.0, "electronics": 1.5},
    "11": {"it": 3.0, "finance": 2.0, "metallurgy": 0.1, "agriculture": 0.3},
    "31": {"it": 2.0, "finance": 2.5, "metallurgy": 0.3, "agriculture": 0.3},
    "54": {"agriculture": 3.0, "electronics": 0.1, "metallurgy": 0.2},
    "46": {"catering": 2.0, "agriculture": 2.0, "metallurgy": 0.1},
}


def sector_shares(province_prefix: str) -> dict[str, float]:
    """Each sector's share of the province's members (summing to 1)."""
    boost = PROVINCE_BOOST.get(province_prefix, {})
    raw = {s.key: s.share * boost.get(s.key, 1.0) for s in SECTORS if s.key != "coal"}
    total = sum(raw.values())
    coal = COAL_SHARE.get(province_prefix, 0.0)
    shares = {key: value / total * (1.0 - coal) for key, value in raw.items()}
    if coal > 0:
        shares["coal"] = coal
    return shares


# Joint unions (区域性/行业性联合工会) set up in each county, by key.
JOINT_KINDS: Mapping[str, str] = {
    "regional": "小微企业联合工会",
    "new_form": "新就业形态劳动者联合工会",
    "courier": "快递行业联合工会",
    "logistics": "物流行业联合工会",
    "catering": "餐饮行业联合工会",
    "construction": "建筑行业联合工会",
    "commerce": "商贸流通行业联合工会",
}

_PLACEHOLDER = re.compile(r"\{(\w+)\}")
_KNOWN = {"place", "prov", "county", "city", "brand", "word", "suffix", "n"}


def check_profiles() -> None:
    """Internal consistency of the tables above (run by the tests)."""
    for sector in SECTORS:
        if sector.joint not in JOINT_KINDS:
            raise ValueError(f"{sector.key}: unknown joint union {sector.joint}")
        for pattern in () if sector.independent else sector.patterns:
            unknown = set(_PLACEHOLDER.findall(pattern.text)) - _KNOWN
            if unknown:
                raise ValueError(f"{sector.key}: unknown placeholders {unknown}")
            if "{word}" in pattern.text and not pattern.words:
                raise ValueError(f"{sector.key}: pattern {pattern.text} needs words")
        for division in sector.divisions:
            core = [
                d for d in sector.depts if d.min_size == 0 and (not d.only or division in d.only)
            ]
            if not core:
                raise ValueError(f"{sector.key}/{division}: no department for the smallest firms")
        for dept in sector.depts:
            if abs(sum(p for _, p in dept.occupations) - 1.0) > 1e-6:
                raise ValueError(f"{sector.key}/{dept.name}: occupation weights must sum to 1")
            if dept.forms and abs(sum(p for _, p in dept.forms) - 1.0) > 1e-6:
                raise ValueError(f"{sector.key}/{dept.name}: form weights must sum to 1")
            if ("{n}" in dept.name) != (dept.team > 0):
                raise ValueError(f"{sector.key}/{dept.name}: teams need {{n}} and team > 0")
