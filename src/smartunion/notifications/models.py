"""One message to one member, kept until the member has seen it (and the retention rules)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from smartunion.db import Base, TimestampMixin, UTCDateTime


class Notification(TimestampMixin, Base):
    """A notice for a member, by kind (its text is in the locale files, ``notice.<kind>``).

    ``params`` fill the text's placeholders and never hold personal data: a member's name
    or number is never copied here, so deleting a member leaves nothing of theirs behind
    but the row itself (deleted with them).
    """

    __tablename__ = "notification"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("member.id"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # "portal" today; a delivery channel (SMS, WeChat) sets delivered_at when it has sent it.
    channel: Mapped[str] = mapped_column(String(12), default="portal", server_default="portal")
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    read_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
