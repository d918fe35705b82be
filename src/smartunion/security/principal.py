"""Who is asking: the user, their role's permissions and the organisation subtree they see."""

from __future__ import annotations

from dataclasses import dataclass, field

from smartunion.security.permissions import ROLE_PERMISSIONS, Permission, Role


class PermissionDenied(Exception):
    def __init__(self, permission: Permission) -> None:
        super().__init__(f"permission {permission} required")
        self.permission = permission


@dataclass(frozen=True)
class Principal:
    user_id: int
    username: str
    role: Role
    org_id: int
    org_path: str
    member_id: int | None = None
    session_id: int | None = None
    permissions: frozenset[Permission] = field(default=frozenset())

    @classmethod
    def for_user(
        cls,
        *,
        user_id: int,
        username: str,
        role: Role,
        org_id: int,
        org_path: str,
        member_id: int | None = None,
        session_id: int | None = None,
    ) -> Principal:
        return cls(
            user_id=user_id,
            username=username,
            role=role,
            org_id=org_id,
            org_path=org_path,
            member_id=member_id,
            session_id=session_id,
            permissions=ROLE_PERMISSIONS[role],
        )

    def can(self, permission: Permission) -> bool:
        return permission in self.permissions

    def require(self, permission: Permission) -> None:
        if permission not in self.permissions:
            raise PermissionDenied(permission)

    def covers_path(self, path: str) -> bool:
        """True when an organisation with this subtree path lies inside the caller's scope."""
        return path.startswith(self.org_path)
