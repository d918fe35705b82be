"""Shared query parameters for list endpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

PageNo = Annotated[int, Query(ge=1, le=100_000, description="1-based page number")]
PageSize = Annotated[int, Query(ge=1, le=100, description="Items per page (max 100)")]
