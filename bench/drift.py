"""Docs checked against the code (indexes/drift.py) on real frameworks: findings per kind, the time the
check takes, and a sample of findings to judge by hand.

    python bench/drift.py                                # every case: counts per kind and timings
    python bench/drift.py --case openai-agents-0.2       # one case
    python bench/drift.py --case starlette-0.37 --sample 30      # and 30 findings drawn at random, to judge
    python bench/drift.py --score docs/drift-sample-openai-agents-0.2.md   # the share judged real

Each case is a KB of a framework's code and docs, ingested like any other (bench/.work/drift-<case>):
the docs and code of one release ("current": drift the maintainers left in), or the docs of an older
release against the code of a newer one (real drift to find). Translations (docs/ja, ko, zh) are
left out: they repeat the English pages' findings.
"""
from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import time
from pathlib import Path

from common import ROOT, WORK, fetch_sdist, make_index

AGENTS_CODE = ("openai-agents", "0.24.0", "openai_agents-0.24.0", ["src/*.py"], [])
TRANSLATIONS = ["docs/ja/**", "docs/ko/**", "docs/zh/**"]
CASES = {
    # an older release's docs against the newer code
    "openai-agents-0.2": {"code": AGENTS_CODE,
                          "docs": ("openai-agents", "0.2.11", "openai_agents-0.2.11", ["docs/*.md"], TRANSLATIONS)},
    "openai-agents-0.0": {"code": AGENTS_CODE,
                          "docs": ("openai-agents", "0.0.19", "openai_agents-0.0.19", ["docs/*.md"], TRANSLATIONS)},
    "starlette-0.37": {"code": ("starlette", "1.10.0", "starlette-1.10.0", ["starlette/*.py"], []),
                       "docs": ("starlette", "0.37.2", "starlette-0.37.2", ["docs/*.md"], [])},
    "click-7": {"code": ("click", "8.5.1", "click-8.5.1", ["src/*.py"], []),
                "docs": ("click", "7.1.2", "click-7.1.2", ["docs/*.rst"], [])},
    "instructor-1.7": {"code": ("instructor", "1.17.0", "instructor-1.17.0", ["instructor/*.py"], []),
                       "docs": ("instructor", "1.7.9", "instructor-1.7.9", ["docs/*.md"], [])},
    "mcp-1.20": {"code": ("mcp", "2.3.0", "mcp-2.3.0", ["src/*.py"], []),
                 "docs": ("mcp", "1.20.0", "mcp-1.20.0", ["*.md"], ["tests/**"])},
    # one release's own docs and code
    "openai-agents": {"code": AGENTS_CODE,
                      "docs": ("openai-agents", "0.24.0", "openai_agents-0.24.0", ["*.md"], TRANSLATIONS)},
    "click": {"code": ("click", "8.5.1", "click-8.5.1", ["src/*.py"], []),
              "docs": ("click", "8.5.1", "click-8.5.1", ["*.md"], [])},
    "starlette": {"code": ("starlette", "1.10.0", "starlette-1.10.0", ["starlette/*.py"], []),
                  "docs": ("starlette", "1.10.0", "starlette-1.10.0", ["*.md"], [])},
    "attrs": {"code": ("attrs", "26.1.0", "attrs-26.1.0", ["src/*.py"], []),
              "docs": ("attrs", "26.1.0", "attrs-26.1.0", ["*.md"], [])},
    "instructor": {"code": ("instructor", "1.17.0", "instructor-1.17.0", ["instructor/*.py"], []),
                   "docs": ("instructor", "1.17.0", "instructor-1.17.0", ["*.md"], [])},
    "mcp": {"code": ("mcp", "2.3.0", "mcp-2.3.0", ["src/*.py"], []),
            "docs": ("mcp", "2.3.0", "mcp-2.3.0", ["*.md"], ["i18n/**", "tests/**"])},
}
# Data dirs of the retrieval benches whose embedding caches hold the same chunks (saves re-embedding).
CACHES = {"openai_agents-0.24.0": "dev", "click-8.5.1": "click", "starlette-1.10.0": "starlette",
          "attrs-26.1.0": "attrs", "mcp-2.3.0": "mcp", "instructor-1.17.0": "instructor"}


def ingested(case: str):
    """The case's KB, ingested (incrementally) into bench/.work/drift-<case>."""
    from indexes.build import ingest

    spec = CASES[case]
    data = WORK / f"drift-{case}"
    seed = CACHES.get(spec["code"][2])
    if not (data / "embeddings.sqlite").exists() and seed and (WORK / seed / "embeddings.sqlite").exists():
        data.mkdir(parents=True, exist_ok=True)
        shutil.copy(WORK / seed / "embeddings.sqlite", data / "embeddings.sqlite")
    index = make_index(data)
    code, docs = spec["code"], spec["docs"]
    parts = [code, docs] if code[:3] != docs[:3] else [(*code[:3], code[3] + docs[3], code[4] + docs[4])]
    for package, version, folder, include, exclude in parts:  # one release's docs and code: one source
        root = fetch_sdist(package, version, folder)
        s = ingest(index, [str(root)], "default", include, exclude)
        print(f"{folder}: {s.line()}", flush=True)
    return index


def measure(case: str, sample: int, seed: int) -> dict:
    from indexes import doc_links, drift

    index = ingested(case)
    catalog = index.catalog
    catalog.set_meta("doc_links:default", "")  # the whole check again, to time it
    done = doc_links.refresh(catalog, "default")
    found = drift.findings(catalog, "default")
    docs = catalog.db.execute("SELECT COUNT(*) FROM chunks WHERE kb='default' AND kind='doc'").fetchone()[0]
    code = catalog.db.execute("SELECT COUNT(*) FROM chunks WHERE kb='default' AND kind='code'").fetchone()[0]
    links = catalog.db.execute("SELECT COUNT(*), COUNT(DISTINCT doc_id), COUNT(DISTINCT code_id) FROM doc_links "
                               "WHERE kb='default'").fetchone()
    figures = {"case": case, "doc_chunks": docs, "code_chunks": code, "findings": len(found),
               "per_kind": drift.counts(found), "flagged_passages": len({f.doc_id for f in found}),
               "links": links[0], "linked_doc_chunks": links[1], "linked_code_chunks": links[2],
               "check_seconds": round(done.seconds, 1),
               "timings": {k: round(v, 2) for k, v in done.timings.items()}, "unreadable": done.skipped}
    if sample:
        picked = random.Random(seed).sample(found, min(sample, len(found)))
        picked.sort(key=lambda f: (f.doc_path, f.doc_start))
        figures["sample"] = [show(index, f) for f in picked]
    return figures


def show(index, f) -> dict:
    """A finding with the doc line and the code's first lines (read from the source each was indexed from)."""
    roots = {s["id"]: Path(s["root"]) for s in index.catalog.sources("default")}
    db = index.catalog.db

    def lines(path: str, start: int, end: int) -> str:
        sid = db.execute("SELECT source_id FROM files WHERE kb='default' AND path=? ORDER BY source_id=? DESC",
                         (path, doc_source)).fetchone()
        p = roots[sid[0]] / path if sid else None
        if p is None or not p.is_file():
            return ""
        return "\n".join(p.read_text(encoding="utf-8", errors="replace").split("\n")[start - 1:end])

    row = db.execute("SELECT source_id FROM chunks WHERE kb='default' AND id=?", (f.doc_id,)).fetchone()
    doc_source = row[0] if row else ""
    return {**f.to_json(), "doc_line": lines(f.doc_path, f.doc_start, f.doc_end).strip(),
            "code_head": lines(f.code_path, f.code_start, min(f.code_end, f.code_start + 12)) if f.code_path else ""}


def score(path: Path) -> dict:
    """The share of a judged sample that is real: rows of the table whose verdict column says real / not real."""
    verdicts = re.findall(r"^\|[^|\n]*\|[^|\n]*\|[^|\n]*\|\s*\**(real|not real)\**\s*\|", path.read_text(),
                          re.MULTILINE | re.IGNORECASE)
    real = sum(1 for v in verdicts if v.lower() == "real")
    return {"sample": str(path.relative_to(ROOT)), "judged": len(verdicts), "real": real,
            "share_real": round(real / len(verdicts), 3) if verdicts else None}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--case", choices=sorted(CASES), action="append")
    ap.add_argument("--sample", type=int, default=0, help="draw this many findings at random, to judge by hand")
    ap.add_argument("--seed", type=int, default=27)
    ap.add_argument("--score", type=Path, action="append", help="a judged sample (docs/drift-sample-*.md)")
    args = ap.parse_args()
    if args.score:
        for p in args.score:
            print(json.dumps(score(p.resolve())))
        return
    for case in args.case or list(CASES):
        t = time.perf_counter()
        figures = measure(case, args.sample, args.seed)
        figures["bench_seconds"] = round(time.perf_counter() - t, 1)
        print(json.dumps(figures, indent=1, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
