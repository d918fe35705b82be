"""JSON API v1: the contract the union's app, mini-program and partners build on."""

from fastapi import APIRouter

from smartunion.web.api import (
    auth,
    enterprises,
    exports,
    members,
    notifications,
    orgs,
    privacy,
    security,
    stats,
    users,
)

router = APIRouter(prefix="/api/v1")
router.include_router(auth.router)
router.include_router(orgs.router)
router.include_router(enterprises.router)
router.include_router(members.router)
router.include_router(security.router)
router.include_router(exports.router)
router.include_router(stats.router)
router.include_router(privacy.router)
router.include_router(notifications.router)
router.include_router(users.router)
