"""Roles and permissions as data: a role is a set of permissions, nothing more."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    SYSTEM_ADMIN = "system_admin"
    ORG_ADMIN = "org_admin"
    STAFF = "staff"
    ANALYST = "analyst"
    AUDITOR = "auditor"
    SECURITY_OFFICER = "security_officer"  # 安全管理员: alerts, suspensions
    MEMBER = "member"


class Permission(StrEnum):
    ORG_READ = "org:read"
    ORG_WRITE = "org:write"
    ENTERPRISE_READ = "enterprise:read"
    ENTERPRISE_WRITE = "enterprise:write"
    MEMBER_READ = "member:read"
    MEMBER_WRITE = "member:write"
    MEMBER_REVEAL = "member:reveal"
    USER_READ = "user:read"
    USER_MANAGE = "user:manage"
    STATS_READ = "stats:read"
    AUDIT_READ = "audit:read"
    EXPORT_REQUEST = "export:request"
    EXPORT_APPROVE = "export:approve"
    SECURITY_ALERTS = "security:alerts"
    SELF_READ = "self:read"


_STAFF = {
    Permission.ORG_READ,
    Permission.ENTERPRISE_READ,
    Permission.ENTERPRISE_WRITE,
    Permission.MEMBER_READ,
    Permission.MEMBER_WRITE,
    Permission.MEMBER_REVEAL,
    Permission.STATS_READ,
    Permission.EXPORT_REQUEST,
}

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.SYSTEM_ADMIN: frozenset(Permission) - {Permission.SELF_READ},
    Role.ORG_ADMIN: frozenset(
        _STAFF
        | {
            Permission.ORG_WRITE,
            Permission.USER_READ,
            Permission.USER_MANAGE,
            Permission.EXPORT_APPROVE,
        }
    ),
    Role.STAFF: frozenset(_STAFF),
    # Analysts see aggregates and the organisation tree, never a member record.
    Role.ANALYST: frozenset({Permission.ORG_READ, Permission.STATS_READ}),
    Role.AUDITOR: frozenset({Permission.AUDIT_READ, Permission.ORG_READ, Permission.USER_READ}),
    Role.SECURITY_OFFICER: frozenset(
        {
            Permission.SECURITY_ALERTS,
            Permission.AUDIT_READ,
            Permission.ORG_READ,
            Permission.USER_READ,
        }
    ),
    Role.MEMBER: frozenset({Permission.SELF_READ}),
}

STAFF_ROLES = frozenset(set(Role) - {Role.MEMBER})
