"""Read what a live trw-platform server stored, for the end-to-end client tests."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import httpx

MAX_PAGES = 1000


class LiveServer(Protocol):
    """What the ``live_server`` fixture provides."""

    #: Base URL without ``/v1``, such as ``http://127.0.0.1:8123``.
    url: str
    #: A ``trw_live_...`` key with every scope, for a fresh organization.
    api_key: str
    #: A client with ``base_url=url`` that sends the key as a bearer token.
    http: httpx.Client


def list_telemetry_events(http: httpx.Client, **params: str) -> list[dict[str, Any]]:
    """Return every telemetry event of the organization, following ``next_cursor``.

    The next page is requested with ``cursor=<next_cursor>``.
    """
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        query: dict[str, str | int] = {"limit": 100, **params}
        if cursor:
            query["cursor"] = cursor
        response = http.get("/v1/telemetry/events", params=query)
        assert response.status_code == 200, (
            f"GET /v1/telemetry/events returned {response.status_code}: {response.text}"
        )
        body = response.json()
        items.extend(body["items"])
        cursor = body.get("next_cursor")
        if not cursor:
            return items
    raise AssertionError(
        f"GET /v1/telemetry/events returned more than {MAX_PAGES} pages"
    )


def get_telemetry_stats(http: httpx.Client) -> dict[str, Any]:
    response = http.get("/v1/telemetry/stats")
    assert response.status_code == 200, (
        f"GET /v1/telemetry/stats returned {response.status_code}: {response.text}"
    )
    stats: dict[str, Any] = response.json()
    return stats


def counter_increase(
    after: Mapping[str, int], before: Mapping[str, int]
) -> Counter[str]:
    """Return how much each count grew; keys that did not grow are left out."""
    grown = Counter(after)
    grown.subtract(Counter(before))
    return Counter({key: count for key, count in grown.items() if count > 0})


def named_counts(counts: Iterable[tuple[str | None, int]]) -> Counter[str]:
    """Drop the bucket for events without a value, however the server spells it."""
    return Counter(
        {key: count for key, count in counts if key not in (None, "", "null", "None")}
    )


def search_learnings(
    http: httpx.Client, query: str, limit: int = 10
) -> list[dict[str, Any]]:
    """POST /v1/learnings/search and return its items.

    The body may be a list or an object with ``results`` or ``items``.
    """
    response = http.post("/v1/learnings/search", json={"query": query, "limit": limit})
    assert response.status_code == 200, (
        f"POST /v1/learnings/search returned {response.status_code}: {response.text}"
    )
    body = response.json()
    if isinstance(body, list):
        return body
    rows = body.get("results", body.get("items"))
    assert isinstance(rows, list), f"search response has no results list: {body!r}"
    return rows
