import math
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

MAX_SUMMARY_CHARS = 1000
MAX_DETAIL_CHARS = 10_000
MAX_TAGS = 20
MAX_TAG_CHARS = 100
MAX_METADATA_KEYS = 64
MAX_METADATA_VALUE_CHARS = 2000
MAX_SEARCH_LIMIT = 100
MAX_EMBEDDING_DIMENSIONS = 4096
UNKNOWN_PROJECT = "unknown"

Status = Literal["active", "resolved", "obsolete", "obsolete_poisoned", "archived"]
LearningType = Literal[
    "incident", "pattern", "convention", "hypothesis", "workaround", "decision"
]


def clean_text(value: str) -> str:
    """Replace what neither database can store: NUL and unpaired surrogates."""
    value = value.replace("\x00", "\ufffd")
    return value.encode("utf-8", "replace").decode("utf-8")


def _utc(value: datetime | None) -> datetime | None:
    """Return the time in UTC; raises ValueError when UTC cannot express it."""
    if value is None:
        return value
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError("the time in UTC is before year 1 or after 9999") from exc


def _finite(values: list[float] | None) -> list[float] | None:
    if values is not None and not all(math.isfinite(value) for value in values):
        raise ValueError("embedding values must be finite numbers")
    return values


CleanText = Annotated[str, AfterValidator(clean_text)]
Tag = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TAG_CHARS),
    AfterValidator(clean_text),
]
ShortText = Annotated[
    str, StringConstraints(max_length=128), AfterValidator(clean_text)
]
UtcDatetime = Annotated[datetime | None, AfterValidator(_utc)]
Embedding = Annotated[
    list[float] | None,
    Field(max_length=MAX_EMBEDDING_DIMENSIONS),
    AfterValidator(_finite),
]
MetadataValue = str | int | float | bool | None


class LearningCreate(BaseModel):
    """A published learning. Unknown fields are accepted and ignored."""

    model_config = ConfigDict(extra="ignore")

    summary: Annotated[
        CleanText, StringConstraints(min_length=1, max_length=MAX_SUMMARY_CHARS)
    ]
    detail: (
        Annotated[CleanText, StringConstraints(max_length=MAX_DETAIL_CHARS)] | None
    ) = None
    tags: Annotated[list[Tag], Field(max_length=MAX_TAGS)] = []
    impact: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5
    status: Status = "active"
    type: LearningType = "pattern"
    metadata: Annotated[
        dict[Annotated[str, StringConstraints(max_length=100)], MetadataValue],
        Field(max_length=MAX_METADATA_KEYS),
    ] = {}
    source_project: ShortText | None = None
    source_learning_id: ShortText | None = None
    embedding: Embedding = None
    valid_from: UtcDatetime = None
    invalid_from: UtcDatetime = None
    invalidated_by: ShortText | None = None

    @field_validator("tags")
    @classmethod
    def _unique_tags(cls, tags: list[str]) -> list[str]:
        return list(dict.fromkeys(tags))

    @field_validator("metadata")
    @classmethod
    def _string_values(cls, metadata: dict[str, MetadataValue]) -> dict[str, str]:
        values = {}
        for key, value in metadata.items():
            text = "" if value is None else clean_text(str(value))
            if len(text) > MAX_METADATA_VALUE_CHARS:
                raise ValueError(
                    f"metadata value of {key!r} is longer than "
                    f"{MAX_METADATA_VALUE_CHARS} characters"
                )
            values[clean_text(key)] = text
        return values


class LearningStatusUpdate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    status: Status


class LearningRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    source_project: str
    source_learning_id: str
    summary: str
    detail: str
    tags: list[str]
    impact: float
    status: str
    type: str
    metadata: dict[str, str] = Field(validation_alias="meta")
    valid_from: datetime | None
    invalid_from: datetime | None
    invalidated_by: str | None
    version: int
    sync_seq: int
    created_at: datetime
    updated_at: datetime
    status_changed_at: datetime | None
    status_changed_by: str | None
    embedding_model: str | None


class LearningPage(BaseModel):
    items: list[LearningRead]
    total: int
    page: int
    page_size: int


class LearningSearch(BaseModel):
    """A search request; unknown fields are ignored, a large limit is capped."""

    model_config = ConfigDict(extra="ignore")

    # NOTE: no length limit, so a long recall query still gets results;
    # search reads only the first 2,000 characters.
    query: CleanText | None = None
    limit: int = 10
    min_impact: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    embedding: Embedding = None
    tags: Annotated[list[Tag], Field(max_length=MAX_TAGS)] | None = None
    tags_match: Literal["any", "all"] = "any"
    type: LearningType | list[LearningType] | None = None
    status: Status | list[Status] | None = None
    source_project: ShortText | None = None
    created_after: UtcDatetime = None
    created_before: UtcDatetime = None
    updated_after: UtcDatetime = None
    updated_before: UtcDatetime = None

    @field_validator("limit")
    @classmethod
    def _cap_limit(cls, limit: int) -> int:
        return max(1, min(limit, MAX_SEARCH_LIMIT))


class SearchResultRead(BaseModel):
    """One search hit; the validity fields are strings or null, never objects."""

    id: str
    source_learning_id: str
    source_project: str
    summary: str
    detail: str
    tags: list[str]
    impact: float
    status: str
    type: str
    score: float
    created_at: str
    updated_at: str
    metadata: dict[str, str]
    valid_from: str | None
    invalid_from: str | None
    invalidated_by: str | None


class SearchResultsRead(BaseModel):
    results: list[SearchResultRead]


def as_list(value: Any) -> list[Any] | None:
    """Return a one-or-many filter value as a list, or None when unset."""
    if value is None:
        return None
    return value if isinstance(value, list) else [value]
