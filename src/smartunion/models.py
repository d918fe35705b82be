"""Every mapped class, imported once so that metadata (and Alembic) sees the whole schema."""

from smartunion.db import Base
from smartunion.members.models import ConsentRecord, Member
from smartunion.orgs.models import Department, Enterprise, UnionOrg
from smartunion.security.models import AuditEvent, AuthSession, User

__all__ = [
    "AuditEvent",
    "AuthSession",
    "Base",
    "ConsentRecord",
    "Department",
    "Enterprise",
    "Member",
    "UnionOrg",
    "User",
]
