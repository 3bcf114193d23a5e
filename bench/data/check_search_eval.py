"""Validate bench/data/search_eval.json and print its statistics.

Usage: python bench/data/check_search_eval.py [PATH]

Exits with status 1 and lists every problem when the file breaks the learning
limits of the TRW platform API (summary <= 1000 chars, detail <= 10000 chars,
<= 20 tags, impact in [0, 1], a known type) or a query refers to a learning
key that does not exist.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path

DEFAULT_PATH = Path(__file__).with_name("search_eval.json")

LEARNING_TYPES = {
    "incident",
    "pattern",
    "convention",
    "hypothesis",
    "workaround",
    "decision",
}
QUERY_KINDS = {"exact", "paraphrase", "distractor", "mixed", "filter"}
GRADES = {1, 2, 3}
MAX_SUMMARY_CHARS = 1000
MAX_DETAIL_CHARS = 10_000
MAX_TAGS = 20
MIN_LEARNINGS = 220
MIN_QUERIES = 60
KEY_PATTERN = re.compile(r"^L\d{3}$")


def check_learnings(learnings: list[dict]) -> list[str]:
    """List the learnings that break an API limit or repeat a key, one message each."""
    problems = []
    seen: set[str] = set()
    for item in learnings:
        key = item.get("key", "<missing key>")
        if not KEY_PATTERN.match(str(key)):
            problems.append(f"{key}: key does not match L followed by three digits")
        if key in seen:
            problems.append(f"{key}: duplicate key")
        seen.add(key)
        summary = item.get("summary", "")
        detail = item.get("detail", "")
        tags = item.get("tags", [])
        if not summary or len(summary) > MAX_SUMMARY_CHARS:
            problems.append(
                f"{key}: summary is empty or longer than"
                f" {MAX_SUMMARY_CHARS} chars ({len(summary)})"
            )
        if len(detail) > MAX_DETAIL_CHARS:
            problems.append(
                f"{key}: detail is longer than {MAX_DETAIL_CHARS} chars ({len(detail)})"
            )
        if len(tags) > MAX_TAGS or len(set(tags)) != len(tags):
            problems.append(f"{key}: more than {MAX_TAGS} tags or a repeated tag")
        impact = item.get("impact")
        if not isinstance(impact, (int, float)) or not 0.0 <= impact <= 1.0:
            problems.append(f"{key}: impact {impact!r} is not a number in [0, 1]")
        if item.get("type") not in LEARNING_TYPES:
            problems.append(f"{key}: unknown type {item.get('type')!r}")
    return problems


def passes_filter(learning: dict, query_filter: dict) -> bool:
    """Return whether a learning survives a query's min_impact and types filter."""
    if learning["impact"] < query_filter.get("min_impact", 0.0):
        return False
    types = query_filter.get("types")
    return types is None or learning["type"] in types


def check_grades(query_id: str, field: str, grades: dict, by_key: dict) -> list[str]:
    """List the grades that name an unknown key or are not 1, 2 or 3."""
    problems = []
    for key, grade in grades.items():
        if key not in by_key:
            problems.append(f"{query_id}: {field} names unknown learning {key}")
        if grade not in GRADES:
            problems.append(
                f"{query_id}: {field} grade {grade!r} for {key} is not 1, 2 or 3"
            )
    return problems


def check_queries(queries: list[dict], by_key: dict) -> list[str]:
    """List queries with an unknown key, an invalid grade or a grade off its filter."""
    problems = []
    seen_text: set[str] = set()
    for query in queries:
        query_id = query.get("id", query.get("query", "<missing query>"))
        text = query.get("query", "")
        if not text.strip():
            problems.append(f"{query_id}: empty query text")
        if text in seen_text:
            problems.append(f"{query_id}: duplicate query text {text!r}")
        seen_text.add(text)
        if query.get("kind") not in QUERY_KINDS:
            problems.append(f"{query_id}: unknown kind {query.get('kind')!r}")
        relevant = query.get("relevant", {})
        problems += check_grades(query_id, "relevant", relevant, by_key)
        if 3 not in relevant.values():
            problems.append(f"{query_id}: no learning graded 3")
        query_filter = query.get("filter")
        if query_filter is None:
            continue
        for key in relevant:
            if key in by_key and not passes_filter(by_key[key], query_filter):
                problems.append(
                    f"{query_id}: relevant learning {key} does not pass"
                    " the query's own filter"
                )
        unfiltered = query.get("relevant_without_filter", {})
        problems += check_grades(
            query_id, "relevant_without_filter", unfiltered, by_key
        )
        missing = set(relevant) - set(unfiltered)
        if unfiltered and missing:
            problems.append(
                f"{query_id}: relevant_without_filter lacks {sorted(missing)}"
            )
    return problems


def print_stats(learnings: list[dict], queries: list[dict]) -> None:
    """Print counts of learnings and queries by type, kind and grade."""
    print(f"learnings: {len(learnings)}")
    print(
        "  by type:", dict(sorted(Counter(item["type"] for item in learnings).items()))
    )
    low_impact = sum(1 for item in learnings if item["impact"] < 0.3)
    print(f"  impact < 0.3: {low_impact}")
    print(f"queries: {len(queries)}")
    print(
        "  by kind:", dict(sorted(Counter(query["kind"] for query in queries).items()))
    )
    grades = Counter(grade for query in queries for grade in query["relevant"].values())
    print("  judgements by grade:", dict(sorted(grades.items())))
    judged = {key for query in queries for key in query["relevant"]}
    print(f"  learnings judged relevant to at least one query: {len(judged)}")


def main(argv: list[str]) -> int:
    path = Path(argv[1]) if len(argv) > 1 else DEFAULT_PATH
    document = json.loads(path.read_text(encoding="utf-8"))
    learnings = document["learnings"]
    queries = document["queries"]
    by_key = {item["key"]: item for item in learnings}

    problems = check_learnings(learnings) + check_queries(queries, by_key)
    if len(learnings) < MIN_LEARNINGS:
        problems.append(
            f"only {len(learnings)} learnings, expected at least {MIN_LEARNINGS}"
        )
    if len(queries) < MIN_QUERIES:
        problems.append(f"only {len(queries)} queries, expected at least {MIN_QUERIES}")

    print_stats(learnings, queries)
    if problems:
        print(f"{len(problems)} problems:", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
