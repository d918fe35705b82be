"""Ledger of differentially private releases (the ε budget)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from smartunion.db import Base, UTCDateTime, utcnow


class PrivacyRelease(Base):
    __tablename__ = "privacy_release"
    __table_args__ = (Index("ix_privacy_release_org_id_released_at", "org_id", "released_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("union_org.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    query: Mapped[str] = mapped_column(String(200))
    epsilon: Mapped[float] = mapped_column(Float)
    released_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
