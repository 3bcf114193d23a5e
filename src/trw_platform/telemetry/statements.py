"""The insert and upsert statements of telemetry ingest, built once per dialect.

Building an ON CONFLICT statement costs about as much as running it for a
small batch, so each is made once and reused. On SQLite each also comes as a
``DriverStatement``: the same SQL, run by the driver itself as multi-row
INSERTs with values converted here. SQLAlchemy's per-value bind processing
took about a fifth of a batch's time on SQLite.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from itertools import chain
from operator import itemgetter
from typing import Any

from sqlalchemy import JSON, Table, case, func
from sqlalchemy.dialects import postgresql, sqlite

from trw_platform.core.db import UTCDateTime, json_dumps, sqlite_timestamp
from trw_platform.telemetry.models import Installation, TelemetryEvent, TelemetryHourly

HOURLY_COUNTERS = ("event_count", "error_count", "duration_count", "duration_ms_sum")
# Bound parameters per statement: SQLite's default maximum since 3.32.
MAX_VARIABLES = 32766
_SQLITE = sqlite.dialect()


def _insert(dialect: str, table: Any) -> Any:
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


@dataclass(frozen=True)
class DriverStatement:
    """SQL for the SQLite driver, and how to turn a row into its parameters."""

    sql: str
    columns: tuple[str, ...]
    converters: tuple[tuple[int, Callable[[Any], Any]], ...]
    _pick: Callable[[dict[str, Any]], tuple[Any, ...]] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_pick", itemgetter(*self.columns))

    def values(self, row: dict[str, Any]) -> tuple[Any, ...]:
        """Return the row's values in column order, as SQLAlchemy would bind them."""
        values = list(self._pick(row))
        for position, convert in self.converters:
            values[position] = convert(values[position])
        return tuple(values)

    def chunks(
        self, rows: list[dict[str, Any]]
    ) -> Iterator[tuple[str, list[Any], list[dict[str, Any]]]]:
        """Yield (SQL, parameters, rows) for INSERTs of many rows each.

        One statement of many rows, rather than ``executemany``, lets the
        driver release the GIL once per statement instead of once per row.
        """
        per_statement = MAX_VARIABLES // len(self.columns)
        for start in range(0, len(rows), per_statement):
            chunk = rows[start : start + per_statement]
            parameters = list(chain.from_iterable(map(self.values, chunk)))
            yield _many_rows(self.sql, len(self.columns), len(chunk)), parameters, chunk


@cache
def _many_rows(sql: str, width: int, count: int) -> str:
    """Return ``sql`` with its one VALUES row repeated ``count`` times."""
    row = "(" + ", ".join("?" * width) + ")"
    return sql.replace(row, ", ".join([row] * count), 1)


def _sqlite_time(value: datetime | None) -> str | None:
    return None if value is None else sqlite_timestamp(value)


def _driver_statement(statement: Any, table: Table) -> DriverStatement:
    """Compile an INSERT of every column but an autoincrement id for SQLite."""
    columns = tuple(
        column.name
        for column in table.columns
        if not (column.primary_key and column.autoincrement is True)
    )
    compiled = statement.compile(dialect=_SQLITE, column_keys=list(columns))
    if tuple(compiled.positiontup) != columns:
        raise ValueError(f"{table.name}: the statement binds other values")

    converters = []
    for position, name in enumerate(columns):
        column_type = table.c[name].type
        if isinstance(column_type, UTCDateTime):
            converters.append((position, _sqlite_time))
        elif isinstance(column_type.dialect_impl(_SQLITE), JSON):
            # As SQLAlchemy's JSON type, None is stored as the JSON text null.
            converters.append((position, json_dumps))
    return DriverStatement(compiled.string, columns, tuple(converters))


def _skip_stored_events(dialect: str) -> Any:
    return _insert(dialect, TelemetryEvent.__table__).on_conflict_do_nothing(
        index_elements=["organization_id", "dedup_key"]
    )


@cache
def insert_events(dialect: str) -> Any:
    """Insert events, skip stored dedup keys, and return the keys inserted."""
    table = TelemetryEvent.__table__
    return _skip_stored_events(dialect).returning(
        table.c.organization_id, table.c.dedup_key
    )


@cache
def sqlite_insert_events() -> DriverStatement:
    """Insert events, skipping stored dedup keys, through the SQLite driver."""
    return _driver_statement(_skip_stored_events("sqlite"), TelemetryEvent.__table__)


@cache
def upsert_hourly(dialect: str) -> Any:
    """Add a batch's counts to the hourly rollup rows."""
    table = TelemetryHourly.__table__
    insert = _insert(dialect, table)
    return insert.on_conflict_do_update(
        index_elements=["organization_id", "hour", "event_type", "status", "tool_name"],
        set_={name: table.c[name] + insert.excluded[name] for name in HOURLY_COUNTERS},
    )


@cache
def sqlite_upsert_hourly() -> DriverStatement:
    return _driver_statement(upsert_hourly("sqlite"), TelemetryHourly.__table__)


@cache
def upsert_installations(dialect: str) -> Any:
    """Widen first and last seen, refresh versions and add to the event count."""
    table = Installation.__table__
    insert = _insert(dialect, table)
    new = insert.excluded
    return insert.on_conflict_do_update(
        index_elements=["organization_id", "installation_id"],
        set_={
            "first_seen_at": case(
                (
                    new.first_seen_at < table.c.first_seen_at,
                    new.first_seen_at,
                ),
                else_=table.c.first_seen_at,
            ),
            "last_seen_at": case(
                (new.last_seen_at > table.c.last_seen_at, new.last_seen_at),
                else_=table.c.last_seen_at,
            ),
            "framework_version": func.coalesce(
                new.framework_version, table.c.framework_version
            ),
            "os_platform": func.coalesce(new.os_platform, table.c.os_platform),
            "python_version": func.coalesce(new.python_version, table.c.python_version),
            "event_count": table.c.event_count + new.event_count,
        },
    )


@cache
def sqlite_upsert_installations() -> DriverStatement:
    return _driver_statement(upsert_installations("sqlite"), Installation.__table__)
