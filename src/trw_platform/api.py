"""Mount every domain router under /v1."""

from fastapi import APIRouter

from trw_platform.auth.router import router as auth_router
from trw_platform.learnings.router import router as learnings_router
from trw_platform.orgs.router import router as orgs_router
from trw_platform.public.router import router as public_router
from trw_platform.telemetry.router import public_router as telemetry_public_router
from trw_platform.telemetry.router import router as telemetry_router

api_router = APIRouter(prefix="/v1")
api_router.include_router(public_router)
api_router.include_router(auth_router)
api_router.include_router(orgs_router)
api_router.include_router(telemetry_public_router)
api_router.include_router(telemetry_router)
api_router.include_router(learnings_router)
