"""The per-organization vector matrix keeps the newest version of each row."""

import numpy as np

from trw_platform.learnings.repository import LearningFilters
from trw_platform.learnings.vector_index import OrgMatrix, RowChange, VectorIndex

DIMENSION = 4


def _vector(*values: float) -> np.ndarray:
    vector = np.array(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def _nearest(index: VectorIndex, matrix: OrgMatrix, query: np.ndarray) -> list[int]:
    hits = index.nearest(
        matrix,
        query,
        filters=LearningFilters(),
        eligible=None,
        limit=10,
        min_similarity=0.2,
    )
    return [pk for pk, _similarity, _impact in hits]


def test_older_change_does_not_overwrite_newer() -> None:
    index = VectorIndex(model_name="test", dimension=DIMENSION)
    matrix = OrgMatrix(DIMENSION)
    newer = RowChange(7, seq=5, vector=_vector(1, 0, 0, 0), impact=0.9, status="active")
    older = RowChange(7, seq=3, vector=_vector(0, 1, 0, 0), impact=0.1, status="active")

    matrix.put(newer)
    matrix.put(older)

    assert matrix.size == 1
    assert _nearest(index, matrix, _vector(1, 0, 0, 0)) == [7]
    assert _nearest(index, matrix, _vector(0, 1, 0, 0)) == []
    assert float(matrix.impacts[0]) == np.float32(0.9)


def test_change_without_vector_leaves_results() -> None:
    index = VectorIndex(model_name="test", dimension=DIMENSION)
    matrix = OrgMatrix(DIMENSION)
    matrix.put(
        RowChange(3, seq=1, vector=_vector(1, 1, 0, 0), impact=0.5, status="active")
    )

    matrix.put(RowChange(3, seq=2, vector=None, impact=0.5, status="active"))

    assert _nearest(index, matrix, _vector(1, 1, 0, 0)) == []


def test_matrix_grows_past_initial_capacity() -> None:
    index = VectorIndex(model_name="test", dimension=DIMENSION)
    matrix = OrgMatrix(DIMENSION)
    rng = np.random.default_rng(1)
    for pk in range(1, 601):
        vector = _vector(*rng.random(DIMENSION) + 0.01)
        matrix.put(RowChange(pk, seq=pk, vector=vector, impact=0.5, status="active"))
    target = _vector(9, 0.01, 0.01, 0.01)
    matrix.put(RowChange(601, seq=601, vector=target, impact=0.5, status="active"))

    assert matrix.size == 601
    assert _nearest(index, matrix, target)[0] == 601
