"""Staff console and member portal pages (server-rendered)."""

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
