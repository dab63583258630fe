"""Helpers shared by the bench scripts: the eval corpus, an Index over a data dir, percentiles."""
from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# tests/support/ holds what benches share with the tests (servers, the test model, corpora, the browser):
# `import support.*`. A bench never imports a test module (test_*.py, conftest.py).
sys.path.insert(0, str(ROOT / "tests"))
WORK = ROOT / "bench" / ".work"
# shared/ sits beside the checkout (a worktree in wt/ has it one level further up).
SHARED_EVAL = next((p / "shared" / "eval" for p in ROOT.parents[:2] if (p / "shared" / "eval").is_dir()),
                   ROOT.parent / "shared" / "eval")

# The dev corpus of shared/eval/README.md: the openai-agents 0.24.0 sdist, .md and .py, without tests/.
DEV_CORPUS = {"package": "openai-agents", "version": "0.24.0", "dir": "openai_agents-0.24.0",
              "include": ["*.md", "*.py"], "exclude": ["tests/**"]}


def fetch_sdist(package: str, version: str, dirname: str) -> Path:
    """Download and unpack a source distribution from the package registry (once)."""
    root = WORK / "corpus" / dirname
    if root.is_dir():
        return root
    dest = WORK / "corpus"
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-binary", ":all:", "--no-deps",
                        f"{package}=={version}", "-d", tmp], check=True)
        archive = next(Path(tmp).glob("*.tar.gz"))
        with tarfile.open(archive) as t:
            t.extractall(dest, filter="data")
    return root


def percentile(values: list[float], p: float) -> float:
    v = sorted(values)
    if not v:
        return 0.0
    i = min(len(v) - 1, max(0, round(p / 100 * (len(v) - 1))))
    return v[i]


def make_index(data_dir: Path, config: str | None = None):
    """An Index over `data_dir`, with the settings of the TOML file `config` if given (to measure
    one setting against the default, e.g. `[search] read_kind = false`)."""
    from copilot.config import load_config
    from indexes.search import Index

    return Index(load_config(config, overrides={"data_dir": str(data_dir)}))


def indexed_corpus(corpus: dict, data_dir: Path, config: str | None = None):
    """An Index over `data_dir` holding `corpus` (an sdist: package, version, dir, include, exclude).

    Always ingests: it is incremental (nothing changed: well under a second), and it re-chunks when
    the chunker changed, so the figures are always those of the current code."""
    import time

    from indexes.build import ingest

    index = make_index(data_dir, config)
    root = fetch_sdist(corpus["package"], corpus["version"], corpus["dir"])
    # The same corpus unpacked elsewhere (another checkout's bench/.work) would be a second source:
    # every file twice, and figures that mean nothing.
    other = [src["root"] for src in index.catalog.sources("default")
             if Path(src["root"]).name == root.name and src["root"] != str(root)]
    if other:
        raise SystemExit(f"{data_dir} already holds {root.name} from {other[0]}; use another --data-dir, or "
                         f"`devcopilot --data-dir {data_dir} forget {other[0]}` first.")
    t = time.perf_counter()
    s = ingest(index, [str(root)], "default", corpus["include"], corpus["exclude"])
    print(s.line(), f"({time.perf_counter() - t:.0f} s)", flush=True)
    return index


def repo_index(data_dir: Path | None = None, config: dict | None = None):
    """An Index over this repository indexed into KB 'default', as a first `make run` builds it
    (bench/.work/repo by default; later runs re-index only what changed)."""
    from copilot.config import load_config
    from indexes.build import ingest
    from indexes.search import Index

    data_dir = data_dir or WORK / "repo"
    index = Index(load_config(env={}, overrides={"data_dir": str(data_dir), **(config or {})}))
    ingest(index, [str(ROOT)], "default")
    return index
