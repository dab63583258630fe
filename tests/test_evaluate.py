"""Where a missed question was lost: ranking, retrieval or chunking (bench/retrieval.py --misses)."""
from __future__ import annotations

from indexes.evaluate import score, score_question, where_lost


def chunk(path: str, text: str = "x = 1") -> dict:
    return {"path": path, "text": text}


FILLER = [chunk(f"other/{i}.py") for i in range(5)]


def test_a_gold_file_below_the_top_five_was_lost_in_ranking():
    q = {"question": "?", "gold": [{"path": "src/run.py", "symbol": None}]}
    deep = FILLER + [chunk("docs/x.md"), chunk("src/run.py")]
    assert not score_question(q, deep)["file"]
    assert where_lost(q, deep, [chunk("src/run.py")]) == ("ranking", 6)


def test_a_gold_file_missing_from_the_fused_hits_was_lost_in_retrieval():
    q = {"question": "?", "gold": [{"path": "src/run.py", "symbol": "Runner.run"}]}
    assert where_lost(q, FILLER + [chunk("docs/x.md")], [chunk("src/run.py", "def run(self): ...")]) \
        == ("retrieval", None)


def test_a_symbol_miss_is_ranking_retrieval_or_chunking_by_the_chunk_naming_it():
    q = {"question": "?", "gold": [{"path": "src/run.py", "symbol": "Runner.run"}]}
    header = chunk("src/run.py", "class Runner:\n    '''Runs agents.'''")
    method = chunk("src/run.py", "    def run(self, agent):\n        ...")
    top = [header] + FILLER[:4]
    assert score_question(q, top)["file"] and not score_question(q, top)["sym"]
    assert where_lost(q, top + [method], [header, method]) == ("ranking", 5)
    assert where_lost(q, top, [header, method]) == ("retrieval", None)
    # the file has no chunk that names `run` as a word (e.g. a later part of a split function)
    assert where_lost(q, top, [header, chunk("src/run.py", "        return result")]) == ("chunking", None)


def test_top1_counts_a_question_whose_first_hit_is_from_a_gold_file():
    qa = [{"question": "a?", "gold": [{"path": "docs/a.md", "symbol": None}]},
          {"question": "b?", "gold": [{"path": "src/b.py", "symbol": "b"}]},
          {"question": "c?", "gold": [{"path": "./docs/c.md", "symbol": None}]}]
    results = [[chunk("docs/a.md")] + FILLER,  # first: a top-1 hit
               FILLER[:1] + [chunk("src/b.py", "def b(): ...")],  # second: found, not first
               [chunk("docs/c.md")]]  # paths are compared normalised
    figures = score(qa, results)
    assert figures["top1"] == round(2 / 3, 3)
    assert figures["file@5"] == 1.0 and figures["mrr@10"] == round((1 + 0.5 + 1) / 3, 3)
    assert score_question(qa[1], results[1])["top1"] is False and score([], [])["top1"] == 0.0


def test_figures_by_language_and_assistant_only_for_questions_that_say_them():
    qa = [{"question": "a?", "lang": "zh", "assistant": "coding", "gold": [{"path": "src/a.py", "symbol": None}]},
          {"question": "b?", "gold": [{"path": "docs/b.md", "symbol": None}]}]
    figures = score(qa, [[chunk("src/a.py")], FILLER])
    assert figures["file@5_lang_zh"] == 1.0 and figures["file@5_asst_coding"] == 1.0
    assert not any("None" in key for key in figures)  # the second question says neither
