"""What the chat cites on a bench set, question by question, as a digest to compare two versions of the code.

Each question goes through the group chat with no language model, as a user would ask it (the Guide's
local classifier picks the speaker), and once straight to its gold assistant. Every speaker's numbered
sources (path, lines, title, link, kind, language, KB, excerpt) are written as one JSON line per question;
the last line is a SHA-256 of all of them. Two versions cite the same when their digests match.

    python bench/cited_sources.py --data-dir bench/.work/dev --qa ../shared/eval/openai_agents_qa.jsonl --out a.jsonl
    python bench/cited_sources.py --corpus click --out b.jsonl       # a bench/qa set, indexed on first use

Used to show that a change meant to keep behaviour keeps it (a refactor): run it on both versions and compare.
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "bench"))  # after the project: bench/ingest.py is not the ingest package

FIELDS = ("n", "path", "start_line", "end_line", "title", "link", "kind", "language", "kb", "excerpt")


def cited(copilot, question: str, assistant: str | None) -> list[dict]:
    """Every speaker of one turn with the sources it cited."""
    out = []
    for ev in copilot.chat(question, copilot.new_session(), assistant):
        if ev.type == "end":
            out.append({"speaker": ev.assistant, "sources": [{k: getattr(s, k) for k in FIELDS} for s in ev.sources]})
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", help="a data dir holding the indexed corpus in KB 'default'")
    ap.add_argument("--qa", help="its questions (.jsonl)")
    ap.add_argument("--corpus", help="a bench set instead: dev, click, starlette, attrs, instructor or mcp")
    ap.add_argument("--out", required=True, help="where the JSON lines go")
    args = ap.parse_args()

    from copilot.chat import Copilot
    from copilot.config import load_config
    from indexes.search import Index

    if args.corpus:
        from common import WORK

        data_dir = WORK / args.corpus
        qa_path = (ROOT.parent / "shared" / "eval" / "openai_agents_qa.jsonl" if args.corpus == "dev"
                   else ROOT / "bench" / "qa" / f"{args.corpus}_qa.jsonl")
    else:
        data_dir, qa_path = Path(args.data_dir), Path(args.qa)
    qa = [json.loads(line) for line in Path(qa_path).read_text(encoding="utf-8").splitlines() if line.strip()]
    cfg = load_config(env={}, overrides={"data_dir": str(data_dir)})
    index = Index(cfg)
    chat_cfg = copy.deepcopy(cfg)  # conversations and usage go to a scratch dir: the data dir is only read
    chat_cfg.data_dir = Path(tempfile.mkdtemp(prefix="cited-"))
    chat_cfg.chat.kb = "default"
    copilot = Copilot(chat_cfg, index)
    digest = hashlib.sha256()
    with open(args.out, "w", encoding="utf-8") as out:
        for q in qa:
            row = {"id": q["id"], "routed": cited(copilot, q["question"], None),
                   "direct": cited(copilot, q["question"], q["assistant"].capitalize())}
            line = json.dumps(row, ensure_ascii=False, sort_keys=True)
            digest.update(line.encode())
            out.write(line + "\n")
        out.write(json.dumps({"questions": len(qa), "sha256": digest.hexdigest()}) + "\n")
    print(f"{len(qa)} questions, sha256 {digest.hexdigest()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
