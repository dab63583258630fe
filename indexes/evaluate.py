"""Retrieval figures over a QA set: file@5, sym@5, mrr@10, as defined by the shared eval README.

A question scores file@5 when a gold path is among the top 5 chunks, sym@5 when such a
chunk's text also names the gold symbol's last part (as a whole word), and mrr@10 by the
reciprocal rank of the first chunk from a gold path in the top 10. Beside them, top1 (the
top-1 file hit): the first chunk is from a gold path (not in the shared README; what a reader
who opens only the first result gets).
"""
from __future__ import annotations

import json
import re
from pathlib import Path


def load_qa(path: str | Path) -> list[dict]:
    p = Path(path)
    if p.is_dir():
        raise ValueError(f"Question file '{p}' is a folder; give a .jsonl file of questions.")
    if not p.is_file():
        raise ValueError(f"Question file '{p}' does not exist; give a .jsonl file of questions.")
    out = []
    for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                q = json.loads(line)
                q["question"], q["gold"]  # noqa: B018 - required fields
            except (json.JSONDecodeError, KeyError, TypeError):
                raise ValueError(f"Line {n} of '{p}' is not a question object with 'question' and 'gold'.") from None
            if not isinstance(q["gold"], list) or not all(isinstance(g, dict) and "path" in g for g in q["gold"]):
                raise ValueError(f"Line {n} of '{p}': 'gold' must be a list of objects with a 'path' (and an "
                                 "optional 'symbol'), like [{\"path\": \"src/app.py\", \"symbol\": \"App.run\"}].")
            out.append(q)
    if not out:
        raise ValueError(f"Question file '{p}' holds no questions; give one JSON object per line, with 'question' "
                         "and 'gold'.")
    return out


def _norm(p: str) -> str:
    p = p.replace("\\", "/")
    while p.startswith("./"):
        p = p[2:]
    return p


def _sym_ok(gold: dict, chunk: dict) -> bool:
    if _norm(chunk.get("path", "")) != _norm(gold["path"]):
        return False
    sym = gold.get("symbol")
    if not sym:
        return True
    last = sym.split(".")[-1]
    return re.search(r"\b" + re.escape(last) + r"\b", chunk.get("text", "")) is not None


def score_question(q: dict, hits: list[dict], k: int = 5) -> dict:
    gpaths = {_norm(g["path"]) for g in q["gold"]}
    top = hits[:k]
    rr = 0.0
    for i, c in enumerate(hits[:10]):
        if _norm(c.get("path", "")) in gpaths:
            rr = 1.0 / (i + 1)
            break
    return {"file": any(_norm(c.get("path", "")) in gpaths for c in top),
            "sym": any(_sym_ok(g, c) for g in q["gold"] for c in top), "rr": rr, "top1": rr == 1.0}


def score(qa: list[dict], results: list[list[dict]], k: int = 5) -> dict:
    n = len(qa) or 1
    per = [score_question(q, r, k) for q, r in zip(qa, results)]
    out = {"n": len(qa), "file@5": round(sum(p["file"] for p in per) / n, 3),
           "sym@5": round(sum(p["sym"] for p in per) / n, 3), "mrr@10": round(sum(p["rr"] for p in per) / n, 3),
           "top1": round(sum(p["top1"] for p in per) / n, 3)}
    groups: dict[str, list[bool]] = {}
    for q, p in zip(qa, per):
        for field, label in (("lang", "lang"), ("assistant", "asst")):
            if q.get(field):  # a question file need not say its language or assistant
                groups.setdefault(f"{label}_{q[field]}", []).append(p["file"])
    for key, vals in sorted(groups.items()):
        out[f"file@5_{key}"] = round(sum(vals) / len(vals), 3)
    return out


def where_lost(q: dict, deep: list[dict], gold_chunks: list[dict], k: int = 5) -> tuple[str, int | None]:
    """Where a question missed at k was lost, and the 0-based rank of its best gold chunk in `deep`
    (the fused hits read further down, e.g. 30):

    - "ranking": a gold chunk (one naming the symbol, for a symbol miss) is there, below the top k;
    - "retrieval": none is among the fused hits;
    - "chunking": no chunk of the gold files names the symbol at all (a symbol miss that no
      ranking could fix). `gold_chunks` are all the chunks of the gold files.
    """
    file_hit = score_question(q, deep[:k], k)["file"]
    if file_hit:  # a symbol miss
        def wanted(c):
            return any(_sym_ok(g, c) for g in q["gold"])
        if not any(wanted(c) for c in gold_chunks):
            return "chunking", None
    else:
        gpaths = {_norm(g["path"]) for g in q["gold"]}

        def wanted(c):
            return _norm(c.get("path", "")) in gpaths
    rank = next((i for i, c in enumerate(deep) if wanted(c)), None)
    return ("ranking" if rank is not None else "retrieval"), rank
