"""Database engine, sessions and the column types shared by every domain."""

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
import structlog
from fastapi import Depends, Request
from sqlalchemy import JSON, DateTime, MetaData, String, TypeDecorator, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from trw_platform.core.write_gate import WriteGate

log = structlog.get_logger(__name__)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JSONType = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on both SQLite and PostgreSQL.

    SQLite keeps no offset, so values are normalised to UTC on the way in and
    given back their UTC tzinfo on the way out.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given for a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(
        self, value: datetime | None, dialect: Dialect
    ) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def new_id() -> str:
    return uuid.uuid4().hex


class IdMixin:
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)


def utc_now() -> datetime:
    return datetime.now(UTC)


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def sqlite_file(engine: AsyncEngine) -> str | None:
    """Return the engine's SQLite file, or None for PostgreSQL and ``:memory:``.

    A second connection, on another driver or thread, can open only a file.
    """
    url = engine.url
    if url.get_backend_name() != "sqlite":
        return None
    if not url.database or url.database == ":memory:":
        return None
    return url.database


def create_engine(url: str) -> AsyncEngine:
    """Create the async engine.

    On SQLite: WAL and foreign keys on, and writers that take turns.
    """
    if not is_sqlite(url):
        return create_async_engine(
            url,
            pool_size=10,
            max_overflow=10,
            pool_pre_ping=True,
            json_serializer=json_dumps,
        )

    engine = create_async_engine(
        url, connect_args={"timeout": 30}, json_serializer=json_dumps
    )
    event.listen(engine.sync_engine, "connect", on_sqlite_connect)
    WriteGate().install(engine)
    return engine


def json_dumps(value: Any) -> str:
    """Return the JSON text that JSON columns store.

    orjson is several times faster than json for the telemetry payloads, but
    only json writes integers beyond 64 bits.
    """
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value)


def sqlite_timestamp(value: datetime) -> str:
    """Return a UTC time as the text that a UTCDateTime column keeps on SQLite.

    The same text as SQLAlchemy's SQLite DATETIME, microseconds always
    included, so rows written through the driver compare and sort with rows
    written through SQLAlchemy.
    """
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    # Cut the "+00:00" of the offset rather than build a naive copy.
    return value.isoformat(" ", timespec="microseconds")[:-6]


def on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    """Configure each new connection of a SQLite engine; a ``connect`` listener."""
    configure_sqlite_connection(dbapi_connection)


def configure_sqlite_connection(dbapi_connection: Any) -> None:
    """Turn on WAL, NORMAL sync, foreign keys and a 30 s busy timeout."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def dialect_insert(session: AsyncSession) -> Any:
    """Return the dialect's ``insert`` so callers can use ON CONFLICT clauses."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert
    return sqlite.insert


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """Yield a session that commits after the handler and rolls back on error.

    The dependency uses the "function" scope, so the commit happens before the
    response is sent: what the client sees acknowledged is already stored.
    """
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with sessionmaker() as session:
        try:
            yield session
        except Exception:
            await session.rollback()
            raise
        await session.commit()


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
