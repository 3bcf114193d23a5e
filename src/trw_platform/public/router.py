import asyncio

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from trw_platform import __version__

log = structlog.get_logger(__name__)

HEALTH_TIMEOUT_S = 5.0

router = APIRouter(tags=["public"])
root_router = APIRouter(tags=["public"])


@root_router.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
async def read_root() -> dict[str, str]:
    """Return service details; the client doctor probe expects 200 here."""
    return {"service": "trw-platform", "version": __version__, "docs": "/docs"}


@router.head("/health", include_in_schema=False)
@router.get("/health", responses={503: {"description": "Database unreachable"}})
async def read_health(request: Request) -> JSONResponse:
    """Health check: service status, version and database reachability."""
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT_S):
            async with request.app.state.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
    except Exception:
        log.exception("health.database_failed")
        body = {"status": "degraded", "version": __version__, "database": "unavailable"}
        return JSONResponse(body, status_code=503)
    return JSONResponse({"status": "ok", "version": __version__, "database": "ok"})
