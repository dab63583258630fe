"""How long the chat core takes to answer questions at the chat's length limit (20,000 characters), offline.

    python bench/long_questions.py [--corpus attrs] [--against REV]

A question is read for its wording (what it asks for, a name it calls, a release) before it is searched; those
readings must take time in proportion to the question's length, whatever its shape. Prints seconds per question
shape: spaced words, one long word, a repeated CamelCase name, a dotted identifier, Chinese, full stops, the
words of a yes-or-no question. With `--against REV`, the same questions are asked of REV's code too (a git
worktree, removed at the end), over the same index, and the ratio is printed beside them."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, WORK, make_index

SHAPES = {
    "spaced words": ("how do I make an option that falls back to a default " * 400)[:20_000],
    "one long word": "a" * 20_000,
    "a CamelCase name, repeated": "RunConfig" * 2_222,
    "a dotted identifier": "foo_bar." * 2_500,
    "Chinese": ("怎么在两个智能体之间做" * 1_819)[:20_000],
    "full stops": "." * 20_000,
    "yes-or-no words, repeated": ("does it neither is " * 1_053)[:20_000],
}


def measure(data_dir: Path) -> dict[str, float]:
    """Seconds per shape, with the code on this process's path, over the indexed `data_dir` (not re-indexed)."""
    from copilot.chat import Copilot

    index = make_index(data_dir)
    copilot = Copilot(index.cfg, index=index)
    try:
        list(copilot.chat("warm up", copilot.new_session(), None))
        out = {}
        for name, question in SHAPES.items():
            t = time.perf_counter()
            list(copilot.chat(question, copilot.new_session(), None))
            out[name] = time.perf_counter() - t
        return out
    finally:
        copilot.close()


def measure_at(rev: str, data_dir: Path) -> dict[str, float]:
    """`measure` run by REV's code, in a process of its own."""
    worktree = Path(tempfile.mkdtemp(prefix="long-questions-")) / rev
    subprocess.run(["git", "worktree", "add", "--detach", "-q", str(worktree), rev], cwd=ROOT, check=True)
    try:
        out = subprocess.run([sys.executable, __file__, "--measure", str(data_dir), "--code", str(worktree)], cwd=ROOT,
                             capture_output=True, text=True, check=True)
        return json.loads(out.stdout.splitlines()[-1])
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], cwd=ROOT)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", default="attrs", help="a corpus of bench/retrieval_second.py")
    ap.add_argument("--against", help="another version of the code: a commit, tag or branch")
    ap.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # one side, as JSON (for --against)
    ap.add_argument("--code", help=argparse.SUPPRESS)  # that side's code, ahead of this checkout's on the path
    args = ap.parse_args()
    if args.measure:
        sys.path.insert(0, args.code)  # nothing of copilot/ or indexes/ is imported before this
        import copilot
        import indexes

        assert all(Path(m.__file__).is_relative_to(args.code) for m in (copilot, indexes))
        print(json.dumps(measure(args.measure)))
        return
    from retrieval_second import ensure_index

    ensure_index(args.corpus)  # indexed by this checkout's code; the other side only reads it
    data_dir = WORK / args.corpus
    ours = measure(data_dir)
    theirs = measure_at(args.against, data_dir) if args.against else {}
    head = f"  {args.against}  ratio" if theirs else ""
    print(f"{'question (20,000 characters)':30s} seconds, this checkout{head} (chat core, offline, KB {args.corpus})")
    for name, s in ours.items():
        other = f"  {theirs[name]:.2f}  {theirs[name] / s:.0f}x" if theirs else ""
        print(f"{name:30s} {s:.2f}{other}", flush=True)


if __name__ == "__main__":
    main()
