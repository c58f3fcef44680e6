"""``/portal``: the sign-in flow and the pages, in that order (the pages end with a catch-all
404 page)."""

from __future__ import annotations

from fastapi import APIRouter

from gateway.portal import flow, mandates, pages

router = APIRouter(prefix="/portal", include_in_schema=False)
router.include_router(flow.router)
router.include_router(mandates.router)
router.include_router(pages.router)
