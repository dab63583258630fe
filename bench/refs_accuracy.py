"""Precision and recall of `devcopilot refs` (indexes/graph.py) against an independent reference, on two
real code bases.

    python bench/refs_accuracy.py [--only python|typescript] [--symbols 60] [--show 8]

- Python: openai-agents 0.24.0 (the dev corpus), its src/ files; the reference is jedi's
  `Script.get_references` (the `bench` extra: `pip install jedi`, or `pip install --target
  bench/.work/pylib jedi`, which this script puts on its path).
- TypeScript: zod 3.25.76 from npm (`npm pack`: its src/v4 sources, tests left out); the reference is
  the TypeScript compiler's language service (`findReferences`, bench/ts_references.js), installed
  with `npm install typescript` into bench/.work/ts.

Symbols: the KB's public functions, methods and classes (and TypeScript's interfaces, types and
enums), sorted by qualified name, every Nth so that about `--symbols` are taken: chosen from the
definitions alone, before any result is seen. A site is a (file, line); the symbol's own definition
line is left out of both sides. `refs` is asked for every reference (what `devcopilot refs SYMBOL`
prints): resolved ones and those matched by name only (flagged unresolved); the figures are given for
both and for the resolved ones alone. Misses and extras are sorted into causes by what the graph holds
on their line, with examples.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from pathlib import Path

from common import DEV_CORPUS, WORK, fetch_sdist, make_index

from indexes import graph
from indexes.build import ingest

PY_KINDS = ("function", "method", "class")
TS_KINDS = ("function", "method", "class", "interface", "type", "enum")
ZOD = {"package": "zod", "version": "3.25.76", "include": ["src/v4/*.ts"], "exclude": ["*/tests/*", "*.test.ts"]}


def indexed(name: str, root: Path, include: list[str], exclude: list[str]):
    index = make_index(WORK / f"refs-{name}")
    t = time.perf_counter()
    s = ingest(index, [str(root)], "default", include, exclude)
    print(f"{name}: {s.line()} ({time.perf_counter() - t:.0f} s)", flush=True)
    return index


def chosen(index, kinds: tuple[str, ...], want: int) -> list[graph.Symbol]:
    """Every Nth public definition, sorted by qualified name."""
    r = graph.resolver(index, "default")
    public = sorted((s for group in r.defs.values() for s in group
                     if s.kind in kinds and not any(p.startswith(("_", "#")) for p in s.symbol.split("."))),
                    key=lambda s: s.qualified)
    step = max(1, len(public) // want)
    return public[::step][:want]


def name_line(root: Path, s: graph.Symbol) -> int:
    """The line where the definition's name is written (after its decorators)."""
    lines = (root / s.path).read_text(encoding="utf-8", errors="replace").splitlines()
    name = re.escape(s.symbol.rsplit(".", 1)[-1])
    for n in range(s.start_line, min(s.end_line, len(lines)) + 1):
        if re.search(rf"\b(def|class|function|interface|type|enum|const|let)\s+{name}\b|^\s*(?:[\w\s]+\s)?"
                     rf"{name}\s*[(<=:]", lines[n - 1]):
            return n
    return s.start_line


def ours(index, s: graph.Symbol) -> tuple[set, set]:
    """(all sites, resolved sites) `refs` gives for the symbol."""
    answer = graph.references(index, ["default"], s.qualified, limit=100_000)
    return ({(x.path, x.line) for x in answer.sites}, {(x.path, x.line) for x in answer.resolved})


def our_kinds(index, s: graph.Symbol) -> dict:
    """(path, line) -> the kind of reference `refs` says is there."""
    answer = graph.references(index, ["default"], s.qualified, limit=100_000)
    return {(x.path, x.line): x.kind for x in answer.sites}


# -- the references ----------------------------------------------------------------------------------------
def jedi_references(root: Path, symbols: list[graph.Symbol]) -> dict:
    sys.path.insert(0, str(WORK / "pylib"))
    try:
        import jedi
    except ImportError:
        raise SystemExit("jedi is not installed: pip install jedi (or pip install --target bench/.work/pylib jedi)") \
            from None
    project = jedi.Project(path=str(root), added_sys_path=[str(root / "src")], smart_sys_path=False)
    out = {}
    for s in symbols:
        line = name_line(root, s)
        text = (root / s.path).read_text(encoding="utf-8").splitlines()[line - 1]
        col = re.search(rf"\b{re.escape(s.symbol.rsplit('.', 1)[-1])}\b", text).start()
        script = jedi.Script(path=str(root / s.path), project=project)
        found = set()
        for r in script.get_references(line, col, scope="project"):
            if r.module_path is None:
                continue
            rel = Path(r.module_path).resolve().relative_to(root.resolve()).as_posix() \
                if str(Path(r.module_path).resolve()).startswith(str(root.resolve())) else None
            if rel and rel.startswith("src/"):
                found.add((rel, r.line))
        found.discard((s.path, line))
        out[s.qualified] = (found, line)
    return out


def typescript_references(root: Path, symbols: list[graph.Symbol], files: list[str]) -> dict:
    ts = WORK / "ts"
    if not (ts / "node_modules" / "typescript").is_dir():
        subprocess.run(["npm", "install", "--silent", "--prefix", str(ts), "typescript@5"], check=True)
    queries = [{"path": s.path, "line": name_line(root, s), "name": s.symbol.rsplit(".", 1)[-1], "id": s.qualified}
               for s in symbols]
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({"root": str(root), "files": files, "queries": queries}, f)
    try:
        done = subprocess.run(["node", str(Path(__file__).parent / "ts_references.js"), f.name], check=True,
                              capture_output=True, text=True, env={**os.environ, "TS_PATH": str(
                                  ts / "node_modules" / "typescript")})
    finally:
        os.unlink(f.name)
    out = {}
    for q in json.loads(done.stdout):
        found = {(p, line) for p, line in q["refs"]}
        found.discard((q["path"], q["line"]))
        out[q["id"]] = (found, q["line"])
    return out


def zod_root() -> Path:
    root = WORK / "corpus" / f"zod-{ZOD['version']}"
    if not root.is_dir():
        root.mkdir(parents=True)
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(["npm", "pack", "--silent", f"zod@{ZOD['version']}", "--pack-destination", tmp], check=True,
                           capture_output=True)
            with tarfile.open(next(Path(tmp).glob("*.tgz"))) as t:
                t.extractall(root, filter="data")
    return root / "package"


# -- comparing ---------------------------------------------------------------------------------------------
def cause(index, path: str, line: int, name: str, text: str, missed: bool, resolved: bool = False,
          kind: str = "") -> str:
    """Why a site is missed (or extra), from what the graph holds on its line."""
    rows = index.catalog.db.execute("SELECT kind, target, qualified FROM graph_refs WHERE kb='default' AND path=? "
                                    "AND line=? AND name=?", (path, line, name)).fetchall()
    if not missed:
        if not resolved:
            return "matched by name only (flagged unresolved): another object's member of that name"
        return f"resolved ({kind}), the reference disagrees"
    if rows:
        return "recorded, resolved to another definition or left external" if any(q for _, _, q in rows) else \
            "recorded by name only, not matched (a member against a top-level name, or the other way)"
    if re.search(rf"\.\s*{re.escape(name)}\s*\(", text):
        return "a method call not recorded (receiver's type unknown to the file)"
    if re.search(rf"\.\s*{re.escape(name)}\b", text):
        return "an attribute read on a receiver of unknown type (not a call: not recorded)"
    if re.search(rf"\b(const|let|var|interface|class|type|function|def)\s+{re.escape(name)}(?![\w$])", text):
        return "another definition of the name (an override in a subclass; TypeScript: an interface and a const)"
    if re.search(rf"[\"']\s*{re.escape(name)}", text):
        return "inside a string (a forward reference or a name in text)"
    return "a bare name the file does not bind, or a use in a form not read"


def compare(label: str, index, root: Path, symbols: list[graph.Symbol], reference: dict, show: int) -> dict:
    tp_all = fp_all = fn_all = tp_res = fp_res = 0
    misses, extras = Counter(), Counter()
    examples: dict[str, list[str]] = {}
    for s in symbols:
        want, _line = reference[s.qualified]
        got, got_resolved = ours(index, s)
        tp_all += len(got & want)
        fp_all += len(got - want)
        fn_all += len(want - got)
        tp_res += len(got_resolved & want)
        fp_res += len(got_resolved - want)
        name = s.symbol.rsplit(".", 1)[-1]
        kinds = our_kinds(index, s)
        for kind, sites, counter in (("miss", want - got, misses), ("extra", got - want, extras)):
            for path, line in sorted(sites):
                try:
                    text = (root / path).read_text(encoding="utf-8", errors="replace").splitlines()[line - 1].strip()
                except (OSError, IndexError):
                    text = ""
                why = cause(index, path, line, name, text, kind == "miss", (path, line) in got_resolved,
                            kinds.get((path, line), ""))
                counter[why] += 1
                bucket = examples.setdefault(f"{kind}: {why}", [])
                if len(bucket) < show:
                    bucket.append(f"{s.symbol} @ {path}:{line}: {text[:110]}")
    p_all = tp_all / ((tp_all + fp_all) or 1)
    r_all = tp_all / ((tp_all + fn_all) or 1)
    p_res = tp_res / ((tp_res + fp_res) or 1)
    r_res = tp_res / ((tp_all + fn_all) or 1)
    print(f"\n## {label}: {len(symbols)} symbols, {tp_all + fn_all} reference sites in the reference")
    print(f"refs (all, as printed):  precision {p_all:.3f}  recall {r_all:.3f}  ({tp_all + fp_all} sites)")
    print(f"refs (resolved only):    precision {p_res:.3f}  recall {r_res:.3f}  ({tp_res + fp_res} sites)")
    print("misses by cause:")
    for why, n in misses.most_common():
        print(f"  {n:5d}  {why}")
    print("extras by cause:")
    for why, n in extras.most_common():
        print(f"  {n:5d}  {why}")
    for key, lines in examples.items():
        print(f"  e.g. {key}")
        for ln in lines:
            print(f"      {ln}")
    return {"symbols": len(symbols), "reference_sites": tp_all + fn_all, "precision": round(p_all, 3),
            "recall": round(r_all, 3), "precision_resolved": round(p_res, 3), "recall_resolved": round(r_res, 3),
            "misses": dict(misses), "extras": dict(extras)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", choices=["python", "typescript"])
    ap.add_argument("--symbols", type=int, default=60)
    ap.add_argument("--show", type=int, default=4, help="examples per cause")
    args = ap.parse_args()
    figures = {}
    if args.only in (None, "python"):
        root = fetch_sdist(DEV_CORPUS["package"], DEV_CORPUS["version"], DEV_CORPUS["dir"])
        index = indexed("python", root, ["src/*.py"], [])
        symbols = chosen(index, PY_KINDS, args.symbols)
        t = time.perf_counter()
        reference = jedi_references(root, symbols)
        print(f"jedi: {time.perf_counter() - t:.0f} s", flush=True)
        figures["python"] = compare(f"Python, openai-agents {DEV_CORPUS['version']} (jedi)", index, root, symbols,
                                    reference, args.show)
    if args.only in (None, "typescript"):
        root = zod_root()
        index = indexed("typescript", root, ZOD["include"], ZOD["exclude"])
        symbols = chosen(index, TS_KINDS, args.symbols)
        files = [p for (p,) in index.catalog.db.execute("SELECT path FROM files WHERE kb='default' ORDER BY path")]
        t = time.perf_counter()
        reference = typescript_references(root, symbols, files)
        print(f"typescript language service: {time.perf_counter() - t:.0f} s", flush=True)
        figures["typescript"] = compare(f"TypeScript, zod {ZOD['version']} src/v4 (tsc findReferences)", index,
                                        root, symbols, reference, args.show)
    print("\n" + json.dumps(figures))


if __name__ == "__main__":
    main()
