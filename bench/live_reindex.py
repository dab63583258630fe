"""Live re-index: how soon a running server answers from what was just indexed, and whether any
request fails while indexes change under it. Real processes on loopback, all stopped by the script:

- `devcopilot serve` over a data dir holding a generated corpus (`--files`, 200 by default) in KB
  'default', offline (no model: answers quote and cite the indexed passages);
- `--clients` threads (4) asking it questions through /v1/chat/completions in a loop;
- `devcopilot ingest` processes run beside it.

Figures:
1. **Delay**, over `--trials` (20): a new file with a fact no other file holds is written, then
   `devcopilot ingest` runs (it hands the work to the server); the delay is from the end of the
   ingest to the first answer citing the new file (the client loop asks about it all along). The
   end of the ingest is when the server's job finished (its `finished_at`); the command returns
   up to one poll (0.5 s) later, so the delay seen from the command is shorter still (often
   negative: answered before the command returned). Measured twice: through the server (the
   default), and with a writer that does not go through the server (a process that opens the
   store itself, as one started before the server would), which the server notices and reopens
   its store for; its end is when `ingest()` returned in that process (which then takes seconds
   to exit).
2. **Failures during 10 concurrent re-indexes**: 10 `devcopilot ingest` commands started at once,
   each changing files of its own KB, while the clients keep asking; requests failed (HTTP error,
   or an answer saying the knowledge base cannot be searched or something went wrong) / all.

    .venv/bin/python bench/live_reindex.py [--trials 20] [--files 200] [--clients 4]
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import ROOT, percentile
from support.corpus import make_corpus
from support.live import BIN, ChatLoop, Server, devcopilot, env, request

ANIMALS = ["axolotl", "bonobo", "caracal", "dugong", "echidna", "fossa", "gharial", "hoatzin", "ibex", "jerboa",
           "kinkajou", "loris", "margay", "numbat", "okapi", "pangolin", "quoll", "saiga", "tarsier", "urial",
           "vicuna", "wombat", "xerus", "yapok", "zorilla"]

DIRECT_INGEST = """
import sys, time
from copilot.config import load_config
from indexes.build import ingest
from indexes.search import Index
print(ingest(Index(load_config(overrides={"data_dir": sys.argv[1]})), [sys.argv[2]], "default").line())
print(time.time(), flush=True)  # the end of the ingest (the process takes seconds more to exit)
"""


def fact(i: int) -> tuple[str, str, str]:
    """(file name, its text, a question only it answers) for trial i."""
    a, b = ANIMALS[i % len(ANIMALS)], ANIMALS[(i * 7 + 3) % len(ANIMALS)]
    word = f"{a}{b}{i}"
    return (f"facts/{word}.md", f"# The {word} rule\n\nThe {word} rule says that every {a} shares its burrow "
            f"with a {b} on Tuesdays.\n", f"What does the {word} rule say?")


def last_job_end(server: Server) -> float:
    status, jobs = request(server.url + "/v1/knowledge/jobs")
    return max(j["finished_at"] for j in jobs["jobs"] if j["finished_at"])


def delay_trials(server: Server, data: Path, corpus: Path, trials: int, clients: int,
                 direct: bool) -> tuple[list[float], list[float]]:
    """(delays from the end of the ingest, delays from the command's return) in seconds."""
    delays, from_command = [], []
    for i in range(trials):
        i += 1000 if direct else 0
        path, text, question = fact(i)
        (corpus / path).parent.mkdir(parents=True, exist_ok=True)
        (corpus / path).write_text(text, encoding="utf-8")
        with ChatLoop(server, [("tutoring", question)], threads=clients) as loop:
            if direct:
                r = subprocess.run([str(BIN / "python"), "-c", DIRECT_INGEST, str(data), str(corpus)],
                                   capture_output=True, text=True, env=env(), cwd=ROOT, timeout=600)
            else:
                r = devcopilot(data, "ingest", str(corpus), "--quiet", check=False)
            returned = time.time()
            if r.returncode != 0:
                raise SystemExit(f"ingest failed: {r.stderr}")
            ended = float(r.stdout.split()[-1]) if direct else last_job_end(server)
            first = loop.wait_for(path, question, ended - 600, timeout=120)
        if first is None:
            raise SystemExit(f"trial {i}: no answer cited {path} within 120 s")
        delays.append(first - ended)
        from_command.append(first - returned)
        print(f"  trial {len(delays):2d}: {delays[-1] * 1000:7.0f} ms after the ingest ended, "
              f"{from_command[-1] * 1000:7.0f} ms after the command returned", flush=True)
    return delays, from_command


def concurrent_reindexes(server: Server, data: Path, root: Path, clients: int, n: int = 10) -> tuple[int, int, list]:
    folders = []
    for k in range(n):
        folder = root / f"kb{k}"
        make_corpus(folder, 20)
        devcopilot(data, "ingest", str(folder), "--kb", f"kb{k}", "--quiet")
        folders.append(folder)
    questions = [("tutoring", "How do I scale the delta value?"), ("coding", "What does add_bravo return?"),
                 ("guide", "Where is the Page 12 helper explained?")]
    with ChatLoop(server, questions, threads=clients) as loop:
        time.sleep(2)
        for k, folder in enumerate(folders):  # each re-index has changes to write
            for f in sorted(folder.rglob("*.md"))[:5]:
                f.write_text(f.read_text() + f"\n\nRevision {k} adds a note about the {ANIMALS[k]}.\n")
        procs = [subprocess.Popen([str(BIN / "devcopilot"), "--data-dir", str(data), "ingest", str(folder),
                                   "--kb", f"kb{k}", "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, env=env()) for k, folder in enumerate(folders)]
        results = [(p.wait(900), p.stderr.read()) for p in procs]
        time.sleep(2)
    bad = [err for code, err in results if code != 0]
    return len(loop.failed()), len(loop.answers), bad


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--parts", default="through,direct,concurrent",
                    help="which measurements: through (1a), direct (1b), concurrent (2)")
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    root = Path(tempfile.mkdtemp(prefix="live-reindex-"))
    try:
        corpus = make_corpus(root / "corpus", args.files)
        data = root / "data"
        t = time.perf_counter()
        print(devcopilot(data, "ingest", str(corpus), "--quiet").stdout.strip(), f"({time.perf_counter() - t:.0f} s)")
        with Server(data) as server:
            print(f"server {server.url}, {args.clients} clients asking in a loop")
            delays = {}
            if "through" in parts:
                print("1a. delay, ingest handed to the server (the default):")
                delays["through the server"] = delay_trials(server, data, corpus, args.trials, args.clients, False)
            if "direct" in parts:
                print("1b. delay, a writer that opens the store itself (the server notices and reopens):")
                delays["another process writing"] = delay_trials(server, data, corpus, args.trials, args.clients,
                                                                 True)
            if "concurrent" in parts:
                print("2. 10 concurrent re-indexes:")
                failed, total, bad = concurrent_reindexes(server, data, root, args.clients)
        print()
        for name, (d, c) in delays.items():
            print(f"delay from ingest end to the first answer citing it, {name} ({len(d)} trials): "
                  f"p50 {percentile(d, 50) * 1000:.0f} ms, p95 {percentile(d, 95) * 1000:.0f} ms, "
                  f"max {max(d) * 1000:.0f} ms; from the command's return: p50 {percentile(c, 50) * 1000:.0f} ms, "
                  f"p95 {percentile(c, 95) * 1000:.0f} ms")
        if "concurrent" in parts:
            print(f"requests failed during 10 concurrent re-indexes: {failed} of {total}; ingest commands failed: "
                  f"{len(bad)}" + (f" ({bad[0].strip()[:200]})" if bad else ""))
    finally:
        for log in root.glob("serve-*.log"):  # the server's own output, kept for a look
            shutil.copy(log, Path(tempfile.gettempdir()) / "live-reindex-serve.log")
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    threading.excepthook = lambda a: print(f"thread failed: {a.exc_value!r}", file=sys.stderr)
    main()
