"""Requests a member makes about their own data (个人信息主体请求)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from smartunion.db import Base, TimestampMixin, UTCDateTime
from smartunion.security.fields import encrypted_field


class SubjectRequest(TimestampMixin, Base):
    """Correction (更正) or deletion (删除) asked by a member, handled by their union's staff.

    The member's note may carry new personal values (a new phone number), so it is stored
    encrypted like any personal field.
    """

    __tablename__ = "subject_request"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("member.id"), index=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("union_org.id"), index=True)
    kind: Mapped[str] = mapped_column(String(12))  # correction | deletion
    field: Mapped[str] = mapped_column(String(40), default="")
    note_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(12), default="open")  # open|done|refused
    handled_by: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    handled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    response: Mapped[str] = mapped_column(String(300), default="")


NOTE = encrypted_field(SubjectRequest, "note_enc", None, "subject_request.note")
