"""`devcopilot changes` against independent references, on real release pairs: recall and precision of
the changed public symbols.

    .venv/bin/python bench/changes_accuracy.py                  # the three pairs
    .venv/bin/python bench/changes_accuracy.py --pair click     # one of them
    .venv/bin/python bench/changes_accuracy.py --show 20        # list more of what differs

Each pair's releases are fetched from the registries the machine's pip and npm use (`pip download
--no-deps --no-binary :all:`, `npm pack`) into bench/.work/releases, both versions indexed side by
side into one KB of a data dir of their own (bench/.work/changes-data/PAIR), and compared by the
product's `compare` (indexes/changes.py) as `devcopilot changes` does.

The references, written apart from the product's code:

- Python, reference A (what the issue names): griffe's breaking-change check run on its own over the
  two extracted releases (`griffe.find_breaking_changes`, griffe's defaults; an alias's removal
  counted at its target, `X.__init__` at X) plus the symbols added according to a plain `ast` listing
  of the package: its public modules (no `_` in the module path, no tests), their public top-level
  functions and classes (in `__all__` when the module defines it as a literal) and their public
  methods. Recall: the share of A the product lists as added, removed or changed. Precision: of what
  the product lists that A can confirm (symbols added; removed; signatures it calls breaking), the
  share in A.
- Python, reference B (this bench's own, to judge the non-breaking signature changes A leaves out):
  the same `ast` listing of both versions; a symbol is changed when it was added, removed, or its
  parameters (`ast.unparse` of the arguments), return annotation or (classes) bases and `__init__`
  (a dataclass's: its fields) differ. Compared with the product's functions, methods, properties and
  classes added, removed or changed.
- TypeScript: the TypeScript compiler's own parser (bench/ts_exports.js, `npm install typescript`
  in bench/.work/node) lists the exported declarations of the package's .d.ts files and their
  signatures; changed = added, removed, or signature differs. Compared with the product's changes
  read from its tree-sitter symbol chunks of the same files.
"""
from __future__ import annotations

import argparse
import ast
import json
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from common import ROOT, WORK, make_index

RELEASES = WORK / "releases"
NODE = WORK / "node"
PAIRS = {
    "openai-agents": {"registry": "pypi", "package": "openai-agents", "old": "0.23.1", "new": "0.24.0",
                      "import": "agents", "src": "src", "include": ["src", "*.md"]},
    "click": {"registry": "pypi", "package": "click", "old": "8.1.8", "new": "8.2.0", "import": "click", "src": "src",
              "include": ["src", "docs", "*.md", "*.rst"]},
    "agents-core": {"registry": "npm", "package": "@openai/agents-core", "old": "0.19.0", "new": "0.20.0",
                    "include": ["*.d.ts", "*.md"]},
}


# -- fetching ---------------------------------------------------------------------------------------------
def release(pair: dict, version: str) -> Path:
    """The extracted release (once): an sdist's folder, or an npm tarball's package/ folder."""
    RELEASES.mkdir(parents=True, exist_ok=True)
    if pair["registry"] == "pypi":
        name = pair["package"].replace("-", "_")
        folder = RELEASES / f"{name}-{version}"
        if not folder.is_dir():
            archive = RELEASES / f"{name}-{version}.tar.gz"
            if not archive.is_file():
                subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
                                f"{pair['package']}=={version}", "-d", str(RELEASES)], check=True)
            with tarfile.open(archive) as t:
                t.extractall(RELEASES, filter="data")
        return folder
    base = pair["package"].lstrip("@").replace("/", "-")
    folder = RELEASES / f"{base}-{version}"
    if not folder.is_dir():
        archive = RELEASES / f"{base}-{version}.tgz"
        if not archive.is_file():
            subprocess.run(["npm", "pack", f"{pair['package']}@{version}", "--silent", "--pack-destination",
                            str(RELEASES)], check=True, capture_output=True)
        folder.mkdir()
        with tarfile.open(archive) as t:
            t.extractall(folder, filter="data")
    return folder / "package"


# -- the product -------------------------------------------------------------------------------------------
def product(name: str, pair: dict, old_root: Path, new_root: Path) -> dict:
    """`compare` over both releases indexed into one KB: the report as JSON, and the seconds it took."""
    from indexes.build import ingest
    from indexes.changes import Version, compare

    index = make_index(WORK / "changes-data" / name)
    t = time.perf_counter()
    ingest(index, [str(old_root), str(new_root)], "default", include=pair["include"])
    ingested = time.perf_counter() - t
    rows = {r["root"]: r for r in index.catalog.sources("default")}

    def version(root: Path, v: str) -> Version:
        row = rows[str(root)]
        return Version(pair["package"], v, row["root"], row["id"], row["spec"], row["kind"], row["indexed_at"])

    t = time.perf_counter()
    report = compare(index, "default", version(old_root, pair["old"]), version(new_root, pair["new"]))
    return {"report": report.to_json(), "seconds": time.perf_counter() - t, "ingest_seconds": ingested}


# -- the Python references ---------------------------------------------------------------------------------
def griffe_breakages(old_src: Path, new_src: Path, package: str) -> set[str]:
    """The paths griffe's own breaking-change check reports (alias removals at their target)."""
    import logging

    import griffe

    logging.getLogger("griffe").setLevel(logging.CRITICAL)  # unresolvable annotations are logged as errors
    old = griffe.load(package, search_paths=[str(old_src)], try_relative_path=False, allow_inspection=False)
    new = griffe.load(package, search_paths=[str(new_src)], try_relative_path=False, allow_inspection=False)
    out = set()
    for b in griffe.find_breaking_changes(old, new):
        path = b.obj.target_path if getattr(b.obj, "is_alias", False) else b.obj.path
        out.add(path.removesuffix(".__init__"))
    return out


def ast_listing(src: Path, package: str) -> dict[str, str]:
    """Public top-level functions and classes of the package's public modules, and their public methods:
    qualified name -> signature text."""
    out: dict[str, str] = {}
    for py in sorted((src / package).rglob("*.py")):
        parts = list(py.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if any(p.startswith("_") or p in ("tests", "test") or p.startswith("test_") for p in parts):
            continue
        try:
            tree = ast.parse(py.read_text(encoding="utf-8"))
        except SyntaxError:
            continue
        module = ".".join(parts)
        exported = _all(tree)
        for node in tree.body:
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue
            if node.name.startswith("_") or (exported is not None and node.name not in exported):
                continue
            out[f"{module}.{node.name}"] = _signature(node)
            if isinstance(node, ast.ClassDef):
                for m in node.body:
                    if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef)) and not m.name.startswith("_"):
                        out[f"{module}.{node.name}.{m.name}"] = _signature(m)
    return out


def _all(tree: ast.Module) -> set[str] | None:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            try:
                return set(ast.literal_eval(node.value))
            except ValueError:
                return None
    return None


def _signature(node) -> str:
    if isinstance(node, ast.ClassDef):
        init = next((m for m in node.body if isinstance(m, ast.FunctionDef) and m.name == "__init__"), None)
        head = "(" + ", ".join(ast.unparse(b) for b in node.bases) + ")"
        return head + (_signature(init) if init else _dataclass_fields(node))
    args = node.args
    for a in args.posonlyargs + args.args + args.kwonlyargs + [args.vararg, args.kwarg]:
        if a is not None:
            a.annotation = _unquoted(a.annotation)
    returns = _unquoted(node.returns)
    return f"({ast.unparse(args)})" + (f" -> {ast.unparse(returns)}" if returns is not None else "")


def _dataclass_fields(node: ast.ClassDef) -> str:
    """A dataclass's fields (its generated __init__'s parameters): `name: annotation = default`, in order."""
    names = [ast.unparse(d.func if isinstance(d, ast.Call) else d) for d in node.decorator_list]
    if not any(n.rsplit(".", 1)[-1] == "dataclass" for n in names):
        return ""
    fields = [f"{ast.unparse(f.target)}: {ast.unparse(_unquoted(f.annotation))}"
              + (f" = {ast.unparse(f.value)}" if f.value is not None else "")
              for f in node.body if isinstance(f, ast.AnnAssign) and "ClassVar" not in ast.unparse(f.annotation)
              and not _not_in_init(f.value)]
    return "[" + ", ".join(fields) + "]"


def _not_in_init(value) -> bool:
    """`field(..., init=False)`: a field the generated __init__ does not take."""
    return isinstance(value, ast.Call) and any(k.arg == "init" and isinstance(k.value, ast.Constant)
                                               and k.value.value is False for k in value.keywords)


def _unquoted(annotation):
    """A string annotation ("Context") as the expression it stands for (Context): the same annotation."""
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
        try:
            return ast.parse(annotation.value, mode="eval").body
        except SyntaxError:
            return annotation
    return annotation


def python_figures(pair: dict, old_root: Path, new_root: Path, report: dict) -> list[dict]:
    src_old, src_new, package = old_root / pair["src"], new_root / pair["src"], pair["import"]
    old, new = ast_listing(src_old, package), ast_listing(src_new, package)
    added = set(new) - set(old)
    ref_a = griffe_breakages(src_old, src_new, package) | added
    ref_b = added | (set(old) - set(new)) | {k for k in set(old) & set(new) if old[k] != new[k]}
    changes = [c for c in report["changes"] if c["kind"] in ("added", "removed", "signature")]
    everything = {c["canonical"] for c in changes}
    removed = {c["canonical"] for c in changes if c["kind"] == "removed"}
    # griffe reports a class removed, not each of its members: those count under the class.
    confirmable = {c["canonical"] for c in changes if (c["kind"] == "added" and c["what"] in CALLABLE)
                   or (c["kind"] == "removed" and c["canonical"].rpartition(".")[0] not in removed)
                   or (c["kind"] == "signature" and c["breaking"])}
    code = {c["canonical"] for c in changes if c["what"] in CALLABLE}
    return [figures("A: griffe check + ast added", ref_a, everything, confirmable),
            figures("B: ast listing (own)", ref_b, code, code)]


CALLABLE = ("function", "method", "class", "property")  # what the ast listing lists (a property is a def)


# -- the TypeScript reference ------------------------------------------------------------------------------
def ts_listing(root: Path) -> dict[str, dict]:
    if not (NODE / "node_modules" / "typescript").is_dir():
        NODE.mkdir(parents=True, exist_ok=True)
        (NODE / "package.json").write_text('{"name": "bench-ts", "private": true}\n')
        subprocess.run(["npm", "install", "typescript@5", "--no-audit", "--no-fund", "--silent"], cwd=NODE, check=True)
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.d.ts"))
    out = subprocess.run(["node", str(ROOT / "bench" / "ts_exports.js"), str(NODE / "node_modules" / "typescript"),
                          str(root), *files], check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def typescript_figures(old_root: Path, new_root: Path, report: dict) -> list[dict]:
    old, new = ts_listing(old_root), ts_listing(new_root)
    ref = (set(new) - set(old)) | (set(old) - set(new)) | {k for k in set(old) & set(new) if old[k] != new[k]}
    listed = set()
    for c in report["changes"]:
        if c["kind"] in ("added", "removed", "signature"):
            place = c["from"] if c["kind"] == "removed" else c["to"]
            listed.add(f"{place['path']}::{c['name']}")
    kinds = {k: (new.get(k) or old.get(k))["kind"] for k in ref}
    missed = {}
    for k in ref - listed:
        missed[kinds[k]] = missed.get(kinds[k], 0) + 1
    f = figures("compiler listing of the .d.ts exports", ref, listed, listed)
    f["missed_by_kind"] = missed
    return [f]


# -- figures -------------------------------------------------------------------------------------------------
def figures(name: str, reference: set[str], found: set[str], judged: set[str]) -> dict:
    hit = found & reference
    return {"reference": name, "reference_size": len(reference), "product_size": len(found),
            "recall": round(len(hit) / len(reference), 3) if reference else None,
            "precision": round(len(judged & reference) / len(judged), 3) if judged else None,
            "missed": sorted(reference - found), "extra": sorted(judged - reference)}


def run_pair(name: str, show: int) -> dict:
    pair = PAIRS[name]
    old_root, new_root = release(pair, pair["old"]), release(pair, pair["new"])
    got = product(name, pair, old_root, new_root)
    report = got["report"]
    if pair["registry"] == "pypi":
        rows = python_figures(pair, old_root, new_root, report)
    else:
        rows = typescript_figures(old_root, new_root, report)
    print(f"\n## {pair['package']} {pair['old']} → {pair['new']}  (compare: {got['seconds']:.1f} s; both versions "
          f"indexed in {got['ingest_seconds']:.0f} s)")
    print(f"   product: {report['counts']}")
    for f in rows:
        print(f"   {f['reference']}: reference {f['reference_size']}, recall {f['recall']}, precision {f['precision']} "
              f"(product lists {f['product_size']})" + (f"; missed by kind {f['missed_by_kind']}"
                                                         if f.get("missed_by_kind") else ""))
        for label in ("missed", "extra"):
            if f[label]:
                more = f" … (+{len(f[label]) - show})" if len(f[label]) > show else ""
                print(f"     {label} ({len(f[label])}): " + ", ".join(f[label][:show]) + more)
    return {"pair": name, "counts": report["counts"], "figures": rows}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pair", choices=sorted(PAIRS), action="append", help="one pair (repeat); default: all three")
    p.add_argument("--show", type=int, default=8, help="how many differing symbols to print per list")
    p.add_argument("--json", help="also write the figures to this file")
    args = p.parse_args()
    out = [run_pair(name, args.show) for name in args.pair or PAIRS]
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
