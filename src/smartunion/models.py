"""Every mapped class, imported once so that metadata (and Alembic) sees the whole schema."""

from smartunion.db import Base
from smartunion.members.models import ConsentRecord, Member
from smartunion.notifications.models import Notification
from smartunion.orgs.models import Department, Enterprise, UnionOrg
from smartunion.privacy.models import SubjectRequest
from smartunion.security.models import (
    AccessCounter,
    AuditEvent,
    AuthSession,
    ExportRequest,
    KeyFingerprint,
    SecurityAlert,
    User,
)
from smartunion.stats.models import PrivacyRelease

__all__ = [
    "AccessCounter",
    "AuditEvent",
    "AuthSession",
    "Base",
    "ConsentRecord",
    "Department",
    "Enterprise",
    "ExportRequest",
    "KeyFingerprint",
    "Member",
    "Notification",
    "PrivacyRelease",
    "SecurityAlert",
    "SubjectRequest",
    "UnionOrg",
    "User",
]
