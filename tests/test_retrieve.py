"""The one retrieval call (indexes/retrieve.py): `devcopilot search` returns what an assistant cites,
with the verdict it acts on; KBs merge by score; a kind-limited retrieval that is weak widens."""
from __future__ import annotations

import json

import pytest
from support.chat import build_world, make_copilot, run
from support.llm_server import LLMServer

from copilot.config import load_config
from indexes.retrieve import retrieve
from ui.cli import main


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return build_world(tmp_path_factory.mktemp("retrieve"))


@pytest.fixture(scope="module")
def llm():
    s = LLMServer().start()
    yield s
    s.stop()


def cli_search(capsys, world, *argv) -> dict:
    code = main(["--data-dir", str(world.cfg.data_dir), "search", *argv, "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


@pytest.mark.parametrize("assistant, question", [
    ("Tutoring", "How do I give an agent long-term memory?"),
    ("Coding", "What does MemoryStore.save write?"),
    ("Coding", "How are failed calls retried?"),  # docs only: Coding widens to both kinds
])
def test_search_returns_what_the_assistant_cites(capsys, world, llm, tmp_path, assistant, question):
    llm.reset()
    cp = make_copilot(world, tmp_path, llm)
    _, answers = run(cp, f"@{assistant} {question}")
    (speaker, _, cited), = answers
    found = cli_search(capsys, world, question, "--assistant", assistant)
    assert speaker == assistant and cited and not found["weak"]
    assert [(h["path"], h["start_line"], h["end_line"]) for h in found["hits"]] == \
        [(s.path, s.start_line, s.end_line) for s in cited]


def test_kind_and_k_given_beside_an_assistant_win_as_kb_does(capsys, world):
    question = "What does MemoryStore.save write?"
    own = cli_search(capsys, world, question, "--assistant", "Tutoring")
    assert own["hits"] and {h["kind"] for h in own["hits"]} == {"doc"}  # the Tutoring assistant reads the docs
    found = cli_search(capsys, world, question, "--assistant", "Tutoring", "--kind", "code", "--k", "2")
    assert len(found["hits"]) == 2 and {h["kind"] for h in found["hits"]} == {"code"}


def test_the_verdict_is_what_makes_an_assistant_say_i_dont_know(capsys, world, tmp_path):
    question = "How do I bake sourdough bread?"
    found = cli_search(capsys, world, question, "--assistant", "Tutoring")
    assert found["weak"] is True and found["hits"]
    _, answers = run(make_copilot(world, tmp_path), f"@Tutoring {question}")
    assert answers[0][1].startswith("I don't know")
    assert [s.path for s in answers[0][2]] == [h["path"] for h in found["hits"][:3]]  # the closest sources
    main(["--data-dir", str(world.cfg.data_dir), "search", question])
    assert "an assistant would answer \"I don't know\"" in capsys.readouterr().out


def test_a_weak_kind_widens_to_both_kinds_only_when_asked(world):
    question = "How are failed calls retried with exponential backoff?"  # answered by docs/guide.md only
    narrow = retrieve(world.index, question, ["default"], kind="code", k=3)
    assert narrow.weak and all(h.chunk.kind == "code" for h in narrow.hits)
    wide = retrieve(world.index, question, ["default"], kind="code", k=3, widen=True)
    assert not wide.weak and wide.hits[0].chunk.path == "docs/guide.md"
    assert wide.searches == 2 and narrow.searches == 1


def test_several_kbs_merge_by_score_and_unindexed_ones_are_skipped(world):
    found = retrieve(world.index, "How big can a gadget be at most?", ["default", "evil", "no-such-kb"], k=6)
    assert {h.kb for h in found.hits} == {"default", "evil"} and found.searches == 2
    scores = [h.score for h in found.hits]
    assert scores == sorted(scores, reverse=True)
    assert ("evil", "docs/faq.md") in [(h.kb, h.chunk.path) for h in found.hits[:3]]  # it holds the size limit


def test_a_named_definition_leads_and_the_scores_still_read_best_first(world):
    question = "What arguments does make_widget take?"
    plain = world.index.search(question, kb="defs", k=6, kind="code")
    found = retrieve(world.index, question, ["defs"], kind="code", k=6)
    assert plain[0].chunk.path == "examples/arguments_demo.py"
    assert (found.hits[0].chunk.path, found.hits[0].chunk.symbol, found.named) == ("lib/factory.py", "make_widget", 1)
    assert [h.score for h in found.hits] == sorted((h.score for h in found.hits), reverse=True)


def test_the_verdict_thresholds_are_search_settings_and_the_old_names_still_work(tmp_path):
    old = tmp_path / "old.toml"
    old.write_text("[chat]\nmin_similarity = 0.45\nmin_overlap = 0.2\n")
    cfg = load_config(old, env={})
    assert (cfg.search.min_similarity, cfg.search.min_overlap) == (0.45, 0.2)
    new = tmp_path / "new.toml"
    new.write_text("[search]\nmin_similarity = 0.25\n")
    assert load_config(new, env={}).search.min_similarity == 0.25


def test_search_refuses_an_unknown_kb_or_assistant_in_one_sentence(capsys, world):
    for argv, says in ((["q", "--kb", "nope"], "no knowledge base named 'nope'"),
                       (["q", "--assistant", "Nobody"], "There is no assistant 'Nobody'")):
        code = main(["--data-dir", str(world.cfg.data_dir), "search", *argv])
        out, err = capsys.readouterr()
        assert code == 2 and out == "" and says in err and len(err.strip().splitlines()) == 1
