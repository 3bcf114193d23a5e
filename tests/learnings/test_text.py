"""Tokenization for the keyword index, and the fusion of rankings."""

import pytest

from trw_platform.learnings.fusion import Ranking, fuse
from trw_platform.learnings.keyword import fts5_match, org_token, ts_query
from trw_platform.learnings.text import index_text, parse_query, tokenize

pytestmark = pytest.mark.learnings


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        (
            "psycopg.errors.UniqueViolation",
            ["psycopg", "errors", "uniqueviolation", "unique", "violation"],
        ),
        ("E11000 duplicate", ["e11000", "duplicate"]),
        ("alembic/env.py", ["alembic", "env", "py"]),
        ("sync_seq", ["sync", "seq"]),
        ("HTTPServer", ["httpserver", "http", "server"]),
        ("SQLITE_BUSY", ["sqlite", "busy"]),
        ("ＦＵＬＬ width", ["full", "width"]),
        ("Größe 中文", ["größe", "中文"]),
        ("", []),
    ],
)
def test_tokenize(text: str, tokens: list[str]) -> None:
    assert tokenize(text) == tokens


def test_index_text_joins_tokens() -> None:
    assert index_text("Fix env.py!") == "fix env py"


def test_identifier_becomes_phrase() -> None:
    query = parse_query("why does alembic/env.py fail")

    assert query.phrases == (("alembic", "env", "py"),)
    assert query.terms == ("alembic", "env", "py", "fail")


def test_stopwords_dropped_unless_alone() -> None:
    assert parse_query("how to use the cache").terms == ("use", "cache")
    assert parse_query("the and").terms == ("the", "and")


def test_punctuation_only_query_is_empty() -> None:
    assert not parse_query('!!! "" ()')


def test_query_terms_are_capped() -> None:
    query = parse_query(" ".join(f"word{index}" for index in range(100)))

    assert len(query.terms) == 32


def test_fts5_match_quotes_every_term() -> None:
    match = fts5_match("org-1", parse_query("NEAR(a) OR env.py"))

    assert match == (
        f'org:"{org_token("org-1")}" AND ("near" OR "env" OR "py" OR "near a"'
        ' OR "env py")'
    )


def test_ts_query_uses_phrase_operator() -> None:
    assert ts_query(parse_query("alembic/env.py")) == (
        "'alembic' | 'env' | 'py' | ('alembic' <-> 'env' <-> 'py')"
    )


def test_org_token_is_digits() -> None:
    assert org_token("85524a758a2242a3a6823541ec803549").isdigit()
    assert org_token("a") != org_token("b")


def test_fuse_rewards_agreement() -> None:
    fused = fuse(
        [Ranking([1, 2, 3]), Ranking([3, 4])], {1: 0.5, 2: 0.5, 3: 0.5, 4: 0.5}
    )

    assert [pk for pk, _score in fused][:2] == [3, 1]
    assert all(0.0 <= score <= 1.0 for _pk, score in fused)


def test_fuse_top_of_both_scores_one() -> None:
    fused = fuse([Ranking([7]), Ranking([7])], {7: 1.0})

    assert fused == [(7, 1.0)]


def test_fuse_drops_filtered_and_recounts_ranks() -> None:
    fused = fuse([Ranking([1, 2])], {2: 0.0}, impact_weight=0.0)

    assert fused == [(2, 1.0)]


def test_fuse_scales_by_keyword_relevance() -> None:
    weak = Ranking([1], relevances=[1.0])
    strong = Ranking([2, 1], relevances=[10.0, 1.0])
    impacts = {1: 0.5, 2: 0.5}

    alone = dict(fuse([weak], impacts))
    beaten = dict(fuse([strong], impacts))

    assert beaten[2] > beaten[1]
    assert alone[1] > beaten[1]


def test_fuse_impact_breaks_ties() -> None:
    fused = fuse([Ranking([1]), Ranking([2])], {1: 0.1, 2: 0.9})

    assert [pk for pk, _score in fused] == [2, 1]


def test_fuse_empty() -> None:
    assert fuse([Ranking([]), Ranking([])], {}) == []


def test_fuse_equal_relevance_shares_rank() -> None:
    tied = Ranking([1, 2], relevances=[3.0, 3.0])

    fused = fuse([tied], {1: 0.1, 2: 0.9})

    assert [pk for pk, _score in fused] == [2, 1]
