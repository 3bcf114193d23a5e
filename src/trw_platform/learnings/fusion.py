"""Reciprocal rank fusion of the keyword and vector rankings, blended with impact.

Each ranking contributes ``weight * strength / (k + rank)`` for every
learning it lists, with ``rank`` counted from 1 (Cormack, Clarke and
Buettcher, SIGIR 2009). ``strength`` is 1 unless the ranking carries
relevance scores, as keyword ranking does. Then it is the learning's relevance
divided by the best one in that ranking, so a learning that matched only one
common word of the query adds little, even when few learnings matched at all.
The sum is divided by the largest possible sum, so a learning ranked first by
every ranking scores 1.0 before the blend with impact, and the final score
stays in [0, 1].

The constants were chosen on bench/data/search_eval.json with
bench/search_quality.py: k=5, the value trw-memory 5.4.0 ships, beat k=60 by
nine points of recall@5, and scaling by keyword relevance added about four.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

RRF_K = 5
IMPACT_WEIGHT = 0.15


@dataclass(frozen=True)
class Ranking:
    """Learning pks best first, optionally with their relevance scores."""

    pks: Sequence[int]
    weight: float = 1.0
    relevances: Sequence[float] | None = None

    def strengths(self) -> list[float]:
        if self.relevances is None or not self.relevances:
            return [1.0] * len(self.pks)
        best = max(self.relevances)
        if best <= 0:
            return [1.0] * len(self.pks)
        return [max(0.0, relevance / best) for relevance in self.relevances]


def _ranked(
    ranking: Ranking, impacts: Mapping[int, float]
) -> list[tuple[int, int, float]]:
    """Return (pk, rank, strength) for the pks that passed the filters.

    Equal relevance scores share a rank (1, 1, 3), so impact decides between
    learnings that matched the query equally well.
    """
    ranked = []
    relevances = ranking.relevances or [None] * len(ranking.pks)
    position, rank, previous = 0, 0, object()
    for pk, relevance, strength in zip(
        ranking.pks, relevances, ranking.strengths(), strict=True
    ):
        if pk not in impacts:
            continue
        position += 1
        if relevance is None or relevance != previous:
            rank = position
        previous = relevance
        ranked.append((pk, rank, strength))
    return ranked


def fuse(
    rankings: Sequence[Ranking],
    impacts: Mapping[int, float],
    *,
    k: int = RRF_K,
    impact_weight: float = IMPACT_WEIGHT,
) -> list[tuple[int, float]]:
    """Return (pk, score) pairs, best first, for every pk with a known impact.

    Learnings missing from ``impacts`` were filtered out after ranking and are
    dropped before ranks are counted.
    """
    active = [ranking for ranking in rankings if ranking.pks]
    if not active:
        return []

    best_possible = sum(ranking.weight / (k + 1) for ranking in active)
    sums: dict[int, float] = {}
    for ranking in active:
        for pk, rank, strength in _ranked(ranking, impacts):
            contribution = ranking.weight * strength / (k + rank)
            sums[pk] = sums.get(pk, 0.0) + contribution

    scores = [
        (pk, (1 - impact_weight) * total / best_possible + impact_weight * impacts[pk])
        for pk, total in sums.items()
    ]
    scores.sort(key=lambda item: item[1], reverse=True)
    return [(pk, min(1.0, max(0.0, score))) for pk, score in scores]
