"""Load: two versions of the code side by side, alternately, under bench/load_chat.py.

The machine's speed drifts by more than one change moves the 50-session figures, so a change is
measured against the code before it in one run: a git worktree of REV (removed at the end) and this
checkout take turns, `--rounds` times. Each turn is one round of this checkout's
`bench/load_chat.py --workers ... --client ...` (the same bench and test model server for both)
with that version's code first on PYTHONPATH (the `devcopilot serve` it starts runs that code), over
the same indexed data dir. Prints each round's figures as they come, then the median and range.

    .venv/bin/python bench/load_versions.py 67edcee                       # REV against this checkout
    .venv/bin/python bench/load_versions.py HEAD~1 --rounds 3 --workers 1,2 --client openai,lean
    .venv/bin/python bench/load_versions.py HEAD~1 --data-dir bench/.work/dev --qa ../shared/eval/openai_agents_qa.jsonl
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

FIGURES = ("turns_per_s", "overhead_p50_ms", "overhead_p95_ms", "turn_p50_ms", "server_cpu_ms_per_turn",
           "clients_cpu_ms_per_turn")


def run_side(code: Path, data_dir: Path, args) -> list[dict]:
    """One round of load_chat.py serving `code`'s version; its figures (one dict per workers/client pair)."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "load_chat.py"), "--data-dir", str(data_dir),
                          "--workers", args.workers, "--client", args.client, "--rounds", "1",
                          "--sessions", str(args.sessions), "--turns", str(args.turns)]
                         + (["--qa", args.qa] if args.qa else []),
                         cwd=ROOT, env=env, capture_output=True, text=True)
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode != 0 or not rows:
        print(f"load_chat.py serving {code} failed: {(out.stderr or out.stdout)[-400:]}", file=sys.stderr)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("rev", help="the other version: a commit, tag or branch")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", default="2")
    ap.add_argument("--client", default="openai,lean")
    ap.add_argument("--sessions", type=int, default=50)
    ap.add_argument("--turns", type=int, default=5)
    ap.add_argument("--data-dir", help="an indexed data dir (default: this repository, as load_chat.py indexes it)")
    ap.add_argument("--qa", help="a QA .jsonl to take the questions from (with --data-dir: questions about that KB)")
    args = ap.parse_args()

    rev = subprocess.run(["git", "rev-parse", "--short", args.rev], cwd=ROOT, capture_output=True, text=True)
    if rev.returncode != 0:
        print(f"'{args.rev}' is not a commit of this repository; give a commit, tag or branch.", file=sys.stderr)
        return 2
    rev_name = rev.stdout.strip()
    if args.data_dir:
        data_dir = Path(args.data_dir)
    else:
        from load_chat import WORK, ensure_kb

        data_dir = WORK / "load-chat-kb"
        ensure_kb(data_dir)
    worktree = Path(tempfile.mkdtemp(prefix="load-versions-")) / rev_name
    subprocess.run(["git", "worktree", "add", "--detach", "-q", str(worktree), rev_name], cwd=ROOT, check=True)
    sides = {rev_name: worktree, "this checkout": ROOT}
    results: dict[tuple, list[dict]] = defaultdict(list)
    try:
        for r in range(args.rounds):
            for name, code in (sides.items() if r % 2 == 0 else reversed(sides.items())):
                for row in run_side(code, data_dir, args):
                    results[(row["workers"], row["client"], name)].append(row)
                    print(json.dumps({"version": name, **row}), flush=True)
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], cwd=ROOT)

    print(f"{args.sessions} sessions x {args.turns} turns; medians of {args.rounds} round(s), range in brackets:")
    for (workers, client, name), rows in sorted(results.items(), key=lambda kv: (kv[0][0], kv[0][1],
                                                                                 kv[0][2] != rev_name)):
        cells = []
        for key in FIGURES:
            values = [row[key] for row in rows]
            cells.append(f"{key} {statistics.median(values):g}" + (f" ({min(values)}-{max(values)})"
                                                                   if len(values) > 1 else ""))
        errors = sum(row["errors"] for row in rows)
        print(f"  --workers {workers}, {client} clients, {name}: " + ", ".join(cells) + f", errors {errors}")
    return 1 if any(row["errors"] for rows in results.values() for row in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
