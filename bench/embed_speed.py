"""Embedding speed: PyTorch against ONNX Runtime (fp32 fused, the default; int8) on the same real chunk
texts, in one run.

    python bench/embed_speed.py                     # 2,000 chunks of the dev corpus, 3 alternating rounds
    python bench/embed_speed.py --texts 500 --rounds 5
    python bench/embed_speed.py --profile           # then the ONNX graphs' time per operator: where it goes

ONNX embeds each text alone, the texts side by side on one thread per core (indexes/onnx_embedder.py).
Each round embeds the texts once with every configuration, in an order that rotates from round
to round, so a change of load on the machine falls on all of them alike. Prints texts/s (wall)
and texts per CPU-second (what this process's threads spent: steadier on a shared machine), the
median of each configuration's ratio to PyTorch within its round, and the load average. Then how
close the int8 vectors are to PyTorch's: cosine per text, and the overlap of the 10 nearest
neighbours of 200 texts among all of them (what retrieval sees).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
from pathlib import Path

from common import DEV_CORPUS, fetch_sdist

from indexes.embeddings import LocalEmbedder
from indexes.onnx_embedder import OnnxEmbedder, OnnxModel
from ingest.chunking import chunk_file
from ingest.files import WalkReport, walk


def chunk_texts(root: Path, include: list[str], exclude: list[str], n: int, seed: int = 0) -> list[str]:
    """`n` chunk texts, as ingest would embed them, drawn at random (fixed seed) from a corpus."""
    texts = []
    for f in walk(root, root, include, exclude, 1_000_000, WalkReport()):
        text = f.abspath.read_bytes().decode("utf-8", "replace")
        texts += [c.embed_text() for c in chunk_file(text, f.path, f.kind, f.language, 1200)]
    random.Random(seed).shuffle(texts)
    return texts[:n]


def timed(embed, texts):
    w, c = time.perf_counter(), time.process_time()
    v = embed(texts)
    return v, time.perf_counter() - w, time.process_time() - c


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--texts", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--corpus", help="a folder of .md and .py files (default: the dev corpus)")
    ap.add_argument("--profile", action="store_true", help="then time each ONNX graph per operator type")
    args = ap.parse_args()
    root = Path(args.corpus) if args.corpus else fetch_sdist(DEV_CORPUS["package"], DEV_CORPUS["version"],
                                                             DEV_CORPUS["dir"])
    texts = chunk_texts(root, ["*.md", "*.py"], ["tests/**"], args.texts)
    out: dict = {"texts": len(texts), "load_average_start": round(os.getloadavg()[0], 1), "cpus": os.cpu_count()}

    t = time.perf_counter()
    torch64 = LocalEmbedder(batch_size=64)
    torch64.embed(["warm up"])
    out["load_s"] = {"torch": round(time.perf_counter() - t, 2)}
    models = {v: OnnxModel.locate(variant=v) for v in ("fp32", "int8")}
    onnx = {}
    for v, model in models.items():
        model.ensure()
        t = time.perf_counter()
        onnx[v] = OnnxEmbedder(model)
        onnx[v].embed(["warm up"])
        out["load_s"][f"onnx_{v}"] = round(time.perf_counter() - t, 2)
    side = f"each text alone, {onnx['fp32'].threads} side by side"
    configs = {"torch fp32 batch 64 (before)": torch64.embed,
               "torch fp32 batch 16": LocalEmbedder(batch_size=16).embed,
               f"onnx fp32 fused ({side}; the default)": onnx["fp32"].embed,
               f"onnx int8 ({side}; runtime onnx-int8)": onnx["int8"].embed}
    names = list(configs)
    runs = {n: [] for n in names}
    vectors = {}
    for r in range(args.rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            v, wall, cpu = timed(configs[name], texts)
            vectors[name] = v
            runs[name].append((wall, cpu))
            print(f"round {r + 1} {name}: {len(texts) / wall:.1f} texts/s, {len(texts) / cpu:.1f} per CPU-s "
                  f"(load {os.getloadavg()[0]:.1f})", flush=True)
    base = names[0]
    table = {}
    for name in names:
        walls = [w for w, _ in runs[name]]
        cpus = [c for _, c in runs[name]]
        table[name] = {
            "texts_per_s": round(len(texts) / statistics.median(walls), 1),
            "texts_per_cpu_s": round(len(texts) / statistics.median(cpus), 1),
            "ratio_wall": round(statistics.median(bw / w for (bw, _), w in zip(runs[base], walls)), 2),
            "ratio_cpu": round(statistics.median(bc / c for (_, bc), c in zip(runs[base], cpus)), 2)}
    out["speed"] = table
    out["load_average_end"] = round(os.getloadavg()[0], 1)
    ref = vectors[base]
    out["closeness_to_torch"] = {name: closeness(ref, vectors[name]) for name in names[1:]}
    print(json.dumps(out, indent=1))
    if args.profile:
        for model in models.values():
            profile(model, texts)


def closeness(ref, v, queries: int = 200, k: int = 10) -> dict:
    import numpy as np

    cos = (ref * v).sum(1)
    q = min(queries, len(ref))
    top_ref = np.argsort(-(ref[:q] @ ref.T), axis=1)[:, 1:k + 1]
    top_v = np.argsort(-(v[:q] @ v.T), axis=1)[:, 1:k + 1]
    overlap = [len(set(a) & set(b)) / k for a, b in zip(top_ref, top_v)]
    return {"cosine_mean": round(float(cos.mean()), 4), "cosine_min": round(float(cos.min()), 4),
            "top10_overlap_mean": round(float(np.mean(overlap)), 3)}


def profile(model: OnnxModel, texts: list[str]) -> None:
    """Time per operator type of the int8 graph over the texts (onnxruntime's profiler)."""
    import collections

    import numpy as np
    import onnxruntime as ort
    from tokenizers import Tokenizer

    so = ort.SessionOptions()
    so.enable_profiling = True
    so.intra_op_num_threads = 1
    folder = model.ensure()
    sess = ort.InferenceSession(str(folder / "model.onnx"), so, providers=["CPUExecutionProvider"])
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(max_length=model.max_tokens)
    enc = tok.encode_batch(texts)
    for e in enc:
        ids = np.asarray([e.ids], np.int64)
        sess.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids)})
    trace_file = Path(sess.end_profiling())
    trace = json.loads(trace_file.read_text())
    trace_file.unlink()
    per_op = collections.Counter()
    for ev in trace:
        if ev.get("cat") == "Node" and ev["name"].endswith("_kernel_time"):
            per_op[ev["args"]["op_name"]] += ev["dur"]
    total = sum(per_op.values())
    print(f"{model.variant} graph, one thread, time per operator type:")
    for op, us in per_op.most_common(12):
        print(f"  {op:28s} {us / 1e6:7.2f} s  {100 * us / total:5.1f} %")
    lengths = [len(e.ids) for e in enc]
    cut = sum(n == model.max_tokens for n in lengths)
    print(f"word pieces per text: mean {sum(lengths) / len(lengths):.0f}; {cut} of {len(enc)} texts cut at "
          f"{model.max_tokens}")


if __name__ == "__main__":
    main()
