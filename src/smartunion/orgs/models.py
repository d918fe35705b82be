"""Organisation tree, enterprises and departments."""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from smartunion.db import Base, TimestampMixin, str_enum


class OrgLevel(StrEnum):
    """Levels of the territorial line: 全总 → 省总 → 市总 → 县/区总 → 基层工会."""

    NATIONAL = "national"
    PROVINCE = "province"
    CITY = "city"
    COUNTY = "county"
    GRASSROOTS = "grassroots"


class OrgKind(StrEnum):
    FEDERATION = "federation"  # 地方总工会
    ENTERPRISE = "enterprise"  # 企业/单位基层工会
    JOINT = "joint"  # 区域性、行业性联合工会 (small firms, new-form workers)
    INDUSTRY = "industry"  # 产业工会


class UnionOrg(TimestampMixin, Base):
    """A union organisation (工会组织).

    ``path`` is the subtree key: the ids from the root down, ``/1/7/42/``. A caller whose
    organisation has path ``p`` sees every organisation whose path starts with ``p``.
    """

    __tablename__ = "union_org"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(18), unique=True)  # USCC starting 81/89
    name: Mapped[str] = mapped_column(String(120))
    level: Mapped[OrgLevel] = mapped_column(str_enum(OrgLevel, "org_level"))
    kind: Mapped[OrgKind] = mapped_column(str_enum(OrgKind, "org_kind"))
    region_code: Mapped[str] = mapped_column(String(6), index=True)  # GB/T 2260
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("union_org.id"), index=True)
    path: Mapped[str] = mapped_column(String(255), index=True)
    enterprise_id: Mapped[int | None] = mapped_column(
        ForeignKey("enterprise.id", use_alter=True), index=True
    )


class Ownership(StrEnum):
    """Registration type (登记注册类型), simplified to the groups staff report by."""

    STATE = "state"  # 国有
    COLLECTIVE = "collective"  # 集体
    PRIVATE = "private"  # 私营
    SHAREHOLDING = "shareholding"  # 股份制
    FOREIGN = "foreign"  # 外商投资
    HMT = "hmt"  # 港澳台投资
    INSTITUTION = "institution"  # 机关事业单位
    OTHER = "other"


class SizeClass(StrEnum):
    """Enterprise size (统计上大中小微型企业划分办法), as recorded by the union."""

    LARGE = "large"
    MEDIUM = "medium"
    SMALL = "small"
    MICRO = "micro"


class Enterprise(TimestampMixin, Base):
    """An employer (企业/单位) whose workers the union organises."""

    __tablename__ = "enterprise"
    __table_args__ = (Index("ix_enterprise_org_id_id", "org_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uscc: Mapped[str] = mapped_column(String(18), unique=True)  # GB 32100
    name: Mapped[str] = mapped_column(String(160), index=True)
    industry_division: Mapped[str] = mapped_column(String(2), index=True)  # GB/T 4754-2017
    ownership: Mapped[Ownership] = mapped_column(str_enum(Ownership, "ownership"))
    size_class: Mapped[SizeClass] = mapped_column(str_enum(SizeClass, "size_class"))
    region_code: Mapped[str] = mapped_column(String(6), index=True)
    employee_count: Mapped[int] = mapped_column(Integer, default=0)
    is_platform: Mapped[bool] = mapped_column(Boolean, default=False)  # 平台企业
    # The union organisation that covers this employer (its own or a joint union).
    org_id: Mapped[int] = mapped_column(ForeignKey("union_org.id"))


class Department(TimestampMixin, Base):
    """A department or workshop (部门/车间); union groups (工会小组) follow them."""

    __tablename__ = "department"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprise.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
