"""Knowledge bases in the chat: every indexed KB by default, merged by a score comparable across KBs,
each citation saying its KB; a chosen KB narrows the chat, an assistant's `kbs` narrows that assistant;
a KB indexed meanwhile is used by the next message; the Guide says which KBs the chat reads."""
from __future__ import annotations

import pytest
from support.chat import build_world, make_copilot, run
from support.corpus import write_tree

from copilot.assistants import load_assistants
from indexes.build import ingest
from indexes.retrieve import merge, retrieve

FLUXRING = {"fluxring.md": """
    # FluxRing

    A FluxRing is the rotating core of a Zorb engine. A FluxRing can have at most seven spokes;
    each spoke carries one phase coil. Fit the spokes clockwise, starting at the index mark.
    """}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    w = build_world(tmp_path_factory.mktemp("kbchat"))
    ingest(w.index, [str(write_tree(w.root / "zorb", FLUXRING))], "zorb")
    return w


def test_the_chat_reads_every_kb_and_each_citation_says_which(world, tmp_path):
    cp = make_copilot(world, tmp_path)
    _, answers = run(cp, "How many spokes can a FluxRing have?")
    speaker, text, sources = answers[-1]
    assert sources[0].path == "fluxring.md" and sources[0].kb == "zorb"
    assert "seven spokes" in text
    _, answers = run(cp, "@Coding what arguments does build_gadget take?")
    assert (answers[-1][2][0].path, answers[-1][2][0].kb) == ("widgets/core.py", "default")
    # The citations are stored with their KB, so a reopened conversation shows it too.
    sid = cp.new_session()
    run(cp, "How many spokes can a FluxRing have?", sid)
    stored = [m for m in cp.history(sid) if m["sources"]]
    assert stored[-1]["sources"][0].kb == "zorb"


def test_a_one_chunk_kb_does_not_crowd_a_big_kbs_answers(world):
    """Fused scores are scaled per KB: the one chunk of a KB scores 0.6 whatever the question. The
    merge scores hits as if the KBs were one corpus, so it stays behind when it does not match."""
    for question, expected in (("How do I give an agent long-term memory?", "README.md"),
                               ("Calls that fail with a rate limit are retried how?", "docs/guide.md")):
        alone = retrieve(world.index, question, ["default"], k=5).hits
        both = retrieve(world.index, question, ["default", "zorb"], k=5).hits
        assert both[0].chunk.path == alone[0].chunk.path == expected
        assert "zorb" not in [h.kb for h in both[:3]], [(h.kb, h.chunk.path, h.score) for h in both]
    found = retrieve(world.index, "How many spokes can a FluxRing have?", ["default", "zorb"], k=5).hits
    assert (found[0].kb, found[0].chunk.path) == ("zorb", "fluxring.md")


def test_the_merge_keeps_each_kbs_order_and_reads_best_first(world):
    question = "How are retries with exponential backoff configured?"
    per_kb = {kb: world.index.search(question, kb=kb, k=5) for kb in ("default", "evil", "zorb")}
    merged = merge(world.index, question, {kb: hits for kb, hits in per_kb.items() if hits})
    assert [h.score for h in merged] == sorted((h.score for h in merged), reverse=True)
    for kb, hits in per_kb.items():
        assert [h.chunk.id for h in merged if h.kb == kb] == [h.chunk.id for h in hits]


def test_a_chosen_kb_narrows_the_chat(world, tmp_path):
    cp = make_copilot(world, tmp_path)
    events = list(cp.chat("@Tutoring how do I give an agent long-term memory?", cp.new_session(), kb="zorb"))
    sources = [s for e in events if e.type == "end" for s in e.sources]
    assert sources and {s.kb for s in sources} == {"zorb"}
    # chat.kb does the same for the whole chat (devcopilot ask --kb).
    cp = make_copilot(world, tmp_path / "two", kb="defs")
    _, answers = run(cp, "@Coding what arguments does make_widget take?")
    assert {s.kb for s in answers[-1][2]} == {"defs"}


def test_an_assistants_kbs_narrow_that_assistant(world, tmp_path):
    cp = make_copilot(world, tmp_path)
    cp.cfg.assistants = [{"name": "Policy", "description": "Answers from the FAQ.", "kbs": ["evil"],
                          "kinds": ["doc"]}]
    cp.assistants = load_assistants(cp.cfg)
    _, answers = run(cp, "@Policy how do I give an agent long-term memory?")
    assert {s.kb for s in answers[-1][2]} <= {"evil"}
    events = list(cp.chat("@Policy how big can a gadget be?", cp.new_session(), kb="zorb"))
    end = [e for e in events if e.type == "end"][-1]
    assert end.text.startswith("I answer from 'evil', and this chat is narrowed to 'zorb'") and not end.sources


def test_a_kb_indexed_meanwhile_is_used_by_the_next_message(world, tmp_path):
    cp = make_copilot(world, tmp_path)
    question = "Which port does the quokka protocol listen on?"
    _, before = run(cp, question)
    assert all(s.kb != "quokka" for s in before[-1][2])
    folder = write_tree(tmp_path / "quokka", {"ports.md": "# Quokka\n\nThe quokka protocol listens on port 4242.\n"})
    ingest(world.index, [str(folder)], "quokka")  # as the Knowledge tab or the API would
    _, after = run(cp, question)
    assert (after[-1][2][0].kb, after[-1][2][0].path) == ("quokka", "ports.md")


def test_the_guide_says_which_kbs_the_chat_reads(world, tmp_path):
    cp = make_copilot(world, tmp_path)
    _, answers = run(cp, "Hello!")
    greeting = answers[-1][1]
    assert "This chat reads every indexed knowledge base" in greeting
    for kb in ("default", "evil", "defs", "zorb"):
        assert f"KB '{kb}'" in greeting
    events = list(cp.chat("Hello!", cp.new_session(), kb="zorb"))
    narrowed = [e for e in events if e.type == "end"][-1].text
    assert "This chat reads KB 'zorb'" in narrowed and "KB 'default'" not in narrowed
