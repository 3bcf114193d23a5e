"""Application factory: middleware, error handlers, lifespan and routers."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from trw_platform import __version__
from trw_platform.api import api_router
from trw_platform.core.db import create_engine, create_sessionmaker
from trw_platform.core.errors import install_error_handlers
from trw_platform.core.logging import configure_logging
from trw_platform.core.mail import create_mailer
from trw_platform.core.mail_delivery import MailDelivery
from trw_platform.core.ratelimit import RateLimiter
from trw_platform.core.requests import RequestContextMiddleware
from trw_platform.core.settings import Settings, get_settings
from trw_platform.core.sqlite_reader import SqliteReader
from trw_platform.public.router import root_router
from trw_platform.telemetry.writer import BatchWriter
from trw_platform.web.router import router as web_router

log = structlog.get_logger(__name__)

DESCRIPTION = (
    "Self-hostable server for the TRW platform API. Organization routes take a "
    "platform API key as `Authorization: Bearer trw_live_...`."
)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.LOG_LEVEL, settings.LOG_FORMAT)
    engine = create_engine(settings.database_url)
    limiter = RateLimiter(settings)
    mail_delivery = MailDelivery(create_sessionmaker(engine), create_mailer(settings))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        log.info("server.started", version=__version__, database=engine.dialect.name)
        await mail_delivery.start()
        yield
        await mail_delivery.stop()
        await app.state.telemetry_writer.close()
        if app.state.sqlite_reader is not None:
            await app.state.sqlite_reader.close()
        await limiter.aclose()
        await engine.dispose()
        log.info("server.stopped")

    # FastAPIOffline serves the /docs and /redoc assets from the package, so
    # the docs work on machines without internet access.
    app = FastAPIOffline(
        title="trw-platform",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        redirect_slashes=False,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessionmaker = create_sessionmaker(engine)
    app.state.telemetry_writer = BatchWriter.for_engine(engine, app.state.sessionmaker)
    app.state.sqlite_reader = SqliteReader.for_engine(engine)
    app.state.limiter = limiter
    app.state.mail_delivery = mail_delivery

    install_error_handlers(app)
    app.add_middleware(
        RequestContextMiddleware,
        limiter=limiter,
        max_body_bytes=settings.MAX_BODY_BYTES,
    )
    app.include_router(root_router)
    app.include_router(api_router)
    app.include_router(web_router)
    return app
