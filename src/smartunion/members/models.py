"""Member records. ID number and phone are encrypted at rest with a blind index."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import Date, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from smartunion.db import Base, TimestampMixin, UTCDateTime, str_enum, utcnow
from smartunion.security.fields import encrypted_field


class Gender(StrEnum):
    MALE = "M"
    FEMALE = "F"


class Education(StrEnum):
    PRIMARY = "primary"  # 小学及以下
    JUNIOR = "junior"  # 初中
    SENIOR = "senior"  # 高中/中专/技校
    COLLEGE = "college"  # 大专
    BACHELOR = "bachelor"  # 本科
    POSTGRADUATE = "postgraduate"  # 研究生


class SkillLevel(StrEnum):
    """National vocational qualification levels (职业技能等级)."""

    NONE = "none"
    JUNIOR = "junior"  # 初级工 (五级)
    INTERMEDIATE = "intermediate"  # 中级工 (四级)
    SENIOR = "senior"  # 高级工 (三级)
    TECHNICIAN = "technician"  # 技师 (二级)
    SENIOR_TECHNICIAN = "senior_technician"  # 高级技师 (一级)


class EmploymentForm(StrEnum):
    STANDARD = "standard"  # 劳动合同制
    DISPATCHED = "dispatched"  # 劳务派遣
    PART_TIME = "part_time"  # 非全日制
    # 新就业形态劳动者 (new-form workers)
    DELIVERY_RIDER = "delivery_rider"  # 网约送餐员
    RIDE_HAILING = "ride_hailing"  # 网约车司机
    COURIER = "courier"  # 快递员
    TRUCK_DRIVER = "truck_driver"  # 货车司机

    @property
    def is_new_form(self) -> bool:
        return self in NEW_FORM_EMPLOYMENT


NEW_FORM_EMPLOYMENT = frozenset(
    {
        EmploymentForm.DELIVERY_RIDER,
        EmploymentForm.RIDE_HAILING,
        EmploymentForm.COURIER,
        EmploymentForm.TRUCK_DRIVER,
    }
)


class MemberStatus(StrEnum):
    ACTIVE = "active"
    TRANSFERRED_OUT = "transferred_out"  # 转出
    LEFT = "left"  # 退会
    DECEASED = "deceased"


class Member(TimestampMixin, Base):
    """A union member (会员).

    ``id_number`` (公民身份号码) and ``phone`` exist only as ciphertext plus a keyed blind
    index; name and birth date are stored plainly and masked on output.
    """

    __tablename__ = "member"
    __table_args__ = (
        Index("ix_member_org_id_id", "org_id", "id"),
        Index("ix_member_name", "name", postgresql_ops={"name": "text_pattern_ops"}),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_no: Mapped[str] = mapped_column(String(20), unique=True)
    name: Mapped[str] = mapped_column(String(60))
    gender: Mapped[Gender] = mapped_column(str_enum(Gender, "gender"))
    birth_date: Mapped[dt.date] = mapped_column(Date)
    id_number_enc: Mapped[bytes] = mapped_column(LargeBinary)
    id_number_bidx: Mapped[str] = mapped_column(String(32), unique=True)
    phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    phone_bidx: Mapped[str | None] = mapped_column(String(32), index=True)
    ethnicity: Mapped[str] = mapped_column(String(16))
    education: Mapped[Education] = mapped_column(str_enum(Education, "education"))
    org_id: Mapped[int] = mapped_column(ForeignKey("union_org.id"))
    enterprise_id: Mapped[int | None] = mapped_column(ForeignKey("enterprise.id"), index=True)
    department_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"))
    occupation: Mapped[str] = mapped_column(String(60))
    skill_level: Mapped[SkillLevel] = mapped_column(str_enum(SkillLevel, "skill_level"))
    employment_form: Mapped[EmploymentForm] = mapped_column(
        str_enum(EmploymentForm, "employment_form"), index=True
    )
    join_date: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[MemberStatus] = mapped_column(
        str_enum(MemberStatus, "member_status"), default=MemberStatus.ACTIVE
    )
    left_at: Mapped[dt.date | None] = mapped_column(Date)  # when membership ended
    # Set when the record was anonymised on request or by retention (PIPL 第四十七条).
    anonymised_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


ID_NUMBER = encrypted_field(Member, "id_number_enc", "id_number_bidx", "member.id_number")
PHONE = encrypted_field(Member, "phone_enc", "phone_bidx", "member.phone")


class ConsentRecord(Base):
    """A member's consent to one processing purpose, at one version of its text (PIPL 第十四条)."""

    __tablename__ = "consent_record"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("member.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(40))
    version: Mapped[str] = mapped_column(String(20))
    granted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    withdrawn_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    channel: Mapped[str] = mapped_column(String(20), default="console")
