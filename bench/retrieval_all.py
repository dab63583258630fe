"""Retrieval figures on every bench set in one table: the dev set (bench/retrieval.py) and every corpus of
bench/retrieval_second.py's CORPORA, each with the four figures of the ranking alone (`Index.search`) and
of what is cited (`retrieve()`), and their mean over the sets.

    python bench/retrieval_all.py                    # every set (each indexed, or brought up to date, first)
    python bench/retrieval_all.py --sets dev,click   # some of them
    python bench/retrieval_all.py --json             # the figures as JSON
    python bench/retrieval_all.py --config C.toml    # with other settings, e.g. [search] read_kind = false

Figures as in indexes/evaluate.py: file@5, sym@5, mrr@10, top1 (the first hit's file is a gold file);
"crowded" is the share of questions whose top ten hold more than three chunks of one file.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys

from common import DEV_CORPUS, ROOT, SHARED_EVAL, WORK, indexed_corpus
from retrieval import FIGURES, run
from retrieval_second import CORPORA, ensure_index

from indexes.evaluate import load_qa

SHOWN = (*FIGURES, "crowded")


def sets() -> dict[str, str]:
    """Every set bench knows: its name and its questions (new CORPORA entries are included as they come)."""
    out = {"dev": str(SHARED_EVAL / "openai_agents_qa.jsonl")}
    out |= {name: str(ROOT / "bench" / "qa" / f"{name}_qa.jsonl") for name in CORPORA}
    return out


def measure(name: str, qa_path: str, config: str | None) -> dict:
    """One set's figures: {"n", "ranked": {...}, "retrieve": {...}, "zh_file@5"}."""
    with contextlib.redirect_stdout(sys.stderr):  # the ingest's summary line
        index = indexed_corpus(DEV_CORPUS, WORK / "dev", config) if name == "dev" else \
            ensure_index(name, False, config)
    figures = run(index, load_qa(qa_path))
    return {"n": figures["n"], "ranked": {key: figures["ranked"][key] for key in SHOWN},
            "retrieve": {key: figures[key] for key in SHOWN},
            "zh_file@5": figures.get("zh", {}).get("file@5")}


def mean(measured: dict[str, dict], which: str) -> dict[str, float]:
    return {key: round(sum(m[which][key] for m in measured.values()) / len(measured), 3) for key in SHOWN}


def table(measured: dict[str, dict]) -> str:
    """A Markdown table: per set, the ranking alone and retrieve(), then the mean over the sets."""
    head = " / ".join(SHOWN)
    lines = [f"| set | n | ranking alone ({head}) | retrieve() ({head}) |", "|---|---|---|---|"]

    def cells(figures: dict) -> str:
        return " / ".join(f"{figures[key]:.3f}" for key in SHOWN)

    for name, m in measured.items():
        lines.append(f"| {name} | {m['n']} | {cells(m['ranked'])} | {cells(m['retrieve'])} |")
    if len(measured) > 1:
        lines.append(f"| mean | {len(measured)} sets | {cells(mean(measured, 'ranked'))} | "
                     f"{cells(mean(measured, 'retrieve'))} |")
    zh = [f"{name} {m['zh_file@5']:.3f}" for name, m in measured.items() if m["zh_file@5"] is not None]
    if zh:
        lines.append(f"\nChinese questions, file@5 of retrieve(): {', '.join(zh)}")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sets", help=f"comma-separated, of: {', '.join(sets())} (default: all)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--config", help="a TOML file of settings to measure, e.g. [search] read_kind = false")
    args = ap.parse_args()
    known = sets()
    chosen = args.sets.split(",") if args.sets else list(known)
    unknown = [name for name in chosen if name not in known]
    if unknown:
        raise SystemExit(f"Unknown set {', '.join(unknown)}; known: {', '.join(known)}.")
    measured = {}
    for name in chosen:
        measured[name] = measure(name, known[name], args.config)
        print(f"{name}: done", file=sys.stderr, flush=True)
    if args.json:
        out = dict(measured)
        if len(measured) > 1:
            out["mean"] = {"ranked": mean(measured, "ranked"), "retrieve": mean(measured, "retrieve")}
        print(json.dumps(out, indent=1))
    else:
        print(table(measured))


if __name__ == "__main__":
    main()
