"""Keyword index and ranking: FTS5 on SQLite, tsvector with GIN on PostgreSQL.

Both index the pre-tokenized text from ``learnings.text``. Summaries weigh
most, then tags, then details: bm25 column weights on SQLite, setweight A, B
and C on PostgreSQL.

Both also hold back the common words of a long query. On SQLite the time of
a query grows with the learnings it matches, about 2 microseconds each on
the 2-core development machine, where a sentence of everyday words matched
6,500 of 10,000 learnings in 16 ms. So when some query words occur in at
most ``COMMON_ROWS`` learnings, only learnings that contain one of those
rare words, or a phrase, are ranked, and the common words still add to
their bm25 score. The counts come from the
``learnings_fts_terms`` vocabulary of the FTS5 index, over all
organizations, looked up by the Porter stem of each word, as the index
stores them. PostgreSQL, in ``postgres_rank``, also drops the common words
from the match, and from the score as well.
"""

import hashlib
import threading

import snowballstemmer
from sqlalchemy import (
    Select,
    column,
    delete,
    func,
    insert,
    literal,
    literal_column,
    select,
    table,
)
from sqlalchemy.dialects.postgresql import REGCONFIG
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from trw_platform.learnings import postgres_rank
from trw_platform.learnings.models import Learning
from trw_platform.learnings.repository import LearningFilters, filter_clauses
from trw_platform.learnings.text import KeywordQuery, index_text

FTS = table(
    "learnings_fts",
    *(column(name) for name in ("rowid", "org", "summary", "detail", "tags")),
)
FTS_TABLE = literal_column("learnings_fts")
FTS_TERMS = table("learnings_fts_terms", column("term"), column("doc"))
FTS_WEIGHTS = (0.0, 4.0, 1.0, 2.0)  # org, summary, detail, tags
TS_CONFIG = "english"
# Matches ranked in the FTS5 index before the join with learnings.
SQLITE_PREFILTER = 500
COMMON_ROWS = postgres_rank.COMMON_ROWS
FALLBACK_TERMS = postgres_rank.FALLBACK_TERMS

# Snowball's "porter" stemmer is the original Porter algorithm, as is FTS5's
# porter tokenizer. They gave the same stem for 5,017 of the 5,023 distinct
# words of 2,000 benchmark learnings. A stem that FTS5 did not produce is
# most likely not in the vocabulary, so its word counts as rare.
# Stemmer objects keep state, so each thread has its own.
_stemmers = threading.local()


def _stem(word: str) -> str:
    stemmer = getattr(_stemmers, "porter", None)
    if stemmer is None:
        stemmer = _stemmers.porter = snowballstemmer.stemmer("porter")
    stem: str = stemmer.stemWord(word)
    return stem


def _is_postgresql(session: AsyncSession | Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def org_token(organization_id: str) -> str:
    """Return the organization's token in the FTS5 org column.

    Digits only, so the porter stemmer leaves it alone; the SQL filter on
    organization_id still guards tenancy if two ever collided.
    """
    digest = hashlib.sha256(organization_id.encode()).hexdigest()
    return str(int(digest[:15], 16))


def _ts_vector(summary: str, tags: str, detail: str) -> ColumnElement[object]:
    config = literal(TS_CONFIG, REGCONFIG)
    parts = [(summary, "'A'"), (tags, "'B'"), (detail, "'C'")]
    vectors = [
        func.setweight(func.to_tsvector(config, text), literal_column(weight))
        for text, weight in parts
    ]
    return vectors[0].op("||")(vectors[1]).op("||")(vectors[2])


async def index_learning(session: AsyncSession, learning: Learning) -> None:
    """Write the learning's keyword entry; call after it has a pk."""
    summary = index_text(learning.summary)
    tags = index_text(" ".join(learning.tags))
    detail = index_text(learning.detail)
    if _is_postgresql(session):
        await session.execute(
            Learning.__table__.update()
            .where(Learning.pk == learning.pk)
            .values(search_vector=_ts_vector(summary, tags, detail))
        )
        return

    await session.execute(delete(FTS).where(FTS.c.rowid == learning.pk))
    await session.execute(
        insert(FTS).values(
            rowid=learning.pk,
            org=org_token(learning.organization_id),
            summary=summary,
            detail=detail,
            tags=tags,
        )
    )


def _any_of(query: KeywordQuery) -> str:
    alternatives = [f'"{term}"' for term in query.terms]
    alternatives += ['"' + " ".join(phrase) + '"' for phrase in query.phrases]
    return " OR ".join(alternatives)


def fts5_match(
    organization_id: str, query: KeywordQuery, gate: KeywordQuery | None = None
) -> str:
    """Build an FTS5 MATCH expression: the org token AND any term or phrase.

    With a gate, a match must also contain one of the gate's terms or phrases.
    """
    expression = f'org:"{org_token(organization_id)}"'
    if gate is not None:
        expression += f" AND ({_any_of(gate)})"
    return f"{expression} AND ({_any_of(query)})"


def sqlite_gate(session: Session, query: KeywordQuery) -> KeywordQuery | None:
    """Return the rare terms and the phrases, or None when no term is common."""
    if len(query.terms) < 2:
        return None
    stems = {term: _stem(term) for term in query.terms}
    rows = session.execute(
        select(FTS_TERMS.c.term, FTS_TERMS.c.doc).where(
            FTS_TERMS.c.term.in_(sorted(set(stems.values())))
        )
    )
    counts: dict[str, int] = {term: doc for term, doc in rows}
    learnings = {term: counts.get(stem, 0) for term, stem in stems.items()}
    rare = tuple(term for term in query.terms if learnings[term] <= COMMON_ROWS)
    if not rare and not query.phrases:
        rarest = sorted(query.terms, key=lambda term: learnings[term])
        rare = tuple(rarest[:FALLBACK_TERMS])
    if len(rare) == len(query.terms):
        return None
    return KeywordQuery(rare, query.phrases)


def _ts_operands(query: KeywordQuery) -> list[str]:
    operands = [f"'{term}'" for term in query.terms]
    operands += [
        "(" + " <-> ".join(f"'{token}'" for token in phrase) + ")"
        for phrase in query.phrases
    ]
    return operands


def ts_query(query: KeywordQuery) -> str:
    """Build a to_tsquery expression: any term, or any phrase of adjacent terms."""
    return " | ".join(_ts_operands(query))


def _sqlite_statement(
    organization_id: str,
    query: KeywordQuery,
    gate: KeywordQuery | None,
    filters: LearningFilters,
    clauses: list[ColumnElement[bool]],
) -> Select[tuple[int, float, float]]:
    match = FTS_TABLE.op("MATCH")(fts5_match(organization_id, query, gate))
    score = func.bm25(FTS_TABLE, *FTS_WEIGHTS).label("score")
    if filters.needs_sql:
        return (
            select(Learning.pk, score, Learning.impact)
            .join_from(FTS, Learning, Learning.pk == FTS.c.rowid)
            .where(match, *clauses)
            .order_by("score", Learning.pk)
        )

    # NOTE: without type, tag, project or time filters, the best matches are
    # ranked in the index alone and only those are joined. Joining every
    # match doubled the time at 10,000 learnings; a status and impact filter
    # that rejects all of the best SQLITE_PREFILTER matches finds nothing.
    best = (
        select(FTS.c.rowid, score)
        .where(match)
        .order_by("score")
        .limit(SQLITE_PREFILTER)
        .subquery()
    )
    return (
        select(Learning.pk, best.c.score, Learning.impact)
        .join(best, Learning.pk == best.c.rowid)
        .where(*clauses)
        .order_by(best.c.score, Learning.pk)
    )


def rank(
    session: Session,
    *,
    organization_id: str,
    query: KeywordQuery,
    filters: LearningFilters,
    limit: int,
) -> list[tuple[int, float, float]]:
    """Return (pk, relevance, impact) of the best keyword matches, best first.

    Relevance is positive and larger for better matches on both databases:
    rarity-weighted matches on PostgreSQL, the negated bm25 on SQLite.
    """
    if not query:
        return []
    clauses = filter_clauses(organization_id, filters)
    if _is_postgresql(session):
        weighted = postgres_rank.weigh_query(session, query)
        if not weighted.operands:
            return []
        statement = postgres_rank.ranking_statement(weighted, clauses)
    else:
        gate = sqlite_gate(session, query)
        statement = _sqlite_statement(organization_id, query, gate, filters, clauses)
    rows = session.execute(statement.limit(limit))
    sign = 1.0 if _is_postgresql(session) else -1.0
    return [(pk, sign * float(score), impact) for pk, score, impact in rows]
