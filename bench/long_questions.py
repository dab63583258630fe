"""How long the chat core takes to answer questions at the chat's length limit (20,000 characters), offline.

    python bench/long_questions.py [--corpus attrs]

A question is read for its wording (what it asks for, a name it calls, a release) before it is searched; those
readings must take time in proportion to the question's length, whatever its shape. Prints seconds per question
shape: spaced words, one long word, a repeated CamelCase name, a dotted identifier, Chinese, full stops."""
from __future__ import annotations

import argparse
import time

from retrieval_second import CORPORA, ensure_index

SHAPES = {
    "spaced words": ("how do I make an option that falls back to a default " * 400)[:20_000],
    "one long word": "a" * 20_000,
    "a CamelCase name, repeated": "RunConfig" * 2_222,
    "a dotted identifier": "foo_bar." * 2_500,
    "Chinese": ("怎么在两个智能体之间做" * 1_819)[:20_000],
    "full stops": "." * 20_000,
}


def main() -> None:
    from copilot.chat import Copilot

    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", default="attrs", choices=sorted(CORPORA))
    args = ap.parse_args()
    index = ensure_index(args.corpus)
    copilot = Copilot(index.cfg, index=index)
    try:
        list(copilot.chat("warm up", copilot.new_session(), None))
        print(f"{'question (20,000 characters)':30s} seconds (chat core, offline, KB {args.corpus})")
        for name, question in SHAPES.items():
            t = time.perf_counter()
            list(copilot.chat(question, copilot.new_session(), None))
            print(f"{name:30s} {time.perf_counter() - t:.2f}", flush=True)
    finally:
        copilot.close()


if __name__ == "__main__":
    main()
