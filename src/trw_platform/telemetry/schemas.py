from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class RejectedEventRead(BaseModel):
    index: int
    reason: str


class IngestRead(BaseModel):
    accepted: int
    duplicates: int
    rejected: list[RejectedEventRead]


class TelemetryLimitsRead(BaseModel):
    max_events_per_batch: int
    max_event_bytes: int
    max_body_bytes: int
    content_encodings: list[str]


class ToolStatsRead(BaseModel):
    tool_name: str
    count: int
    error_count: int
    avg_duration_ms: float | None


class TelemetryStatsRead(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: datetime = Field(alias="from")
    to: datetime
    total: int
    error_count: int
    by_event_type: dict[str, int]
    by_status: dict[str, int]
    by_tool: dict[str, int]
    tools: list[ToolStatsRead]


class HourlyBucketRead(BaseModel):
    hour: datetime
    count: int
    error_count: int
    avg_duration_ms: float | None


class HourlyRead(BaseModel):
    event_type: str | None
    buckets: list[HourlyBucketRead]


class TelemetryEventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    event_id: str | None
    event_type: str
    installation_id: str | None
    session_id: str | None
    framework_version: str | None
    python_version: str | None
    os_platform: str | None
    tool_name: str | None
    duration_ms: float | None
    status: str | None
    error_type: str | None
    phase: str | None
    ceremony_score: float | None
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None
    pytest_passed: bool | None
    test_count: int | None
    coverage_pct: float | None
    static_checks_passed: bool | None
    mypy_passed: bool | None
    attributes: dict[str, Any] | None
    payload: dict[str, Any]
    occurred_at: datetime
    received_at: datetime
    clock_clamped: bool


class TelemetryEventPage(BaseModel):
    items: list[TelemetryEventRead]
    next_cursor: str | None


class InstallationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    installation_id: str
    first_seen_at: datetime
    last_seen_at: datetime
    framework_version: str | None
    os_platform: str | None
    python_version: str | None
    event_count: int


class InstallationPage(BaseModel):
    items: list[InstallationRead]
    total: int
    page: int
    page_size: int
