"""Usage and coverage gaps: answers recorded with their kind, tokens and cost per day and assistant,
the questions most often answered "I don't know" or given a thumbs-down (also `devcopilot usage --gaps`),
and the Usage tab's charts."""
from __future__ import annotations

import csv
import io
import json

from support.conversations import conversation

from copilot.config import load_config
from copilot.conversations import Conversations, gaps_csv
from copilot.monitor import Monitor
from ui.cli import main


def test_gaps_count_each_question_once_per_asking_by_its_words(tmp_path):
    store = Conversations(tmp_path / "c.sqlite")
    conversation(store, "How do I bake bread?", "dont_know")
    conversation(store, "how do I  bake bread", "dont_know")  # the same question, written differently
    conversation(store, "What is a widget?", "offline", down=True)
    conversation(store, "What is a gadget?", "offline")  # answered, no complaint: not a gap
    gaps = store.gaps()
    assert [(g["question"], g["asked"], g["dont_know"], g["thumbs_down"]) for g in gaps] == [
        ("how do I  bake bread", 2, 2, 0), ("What is a widget?", 1, 0, 1)]
    assert all(len(g["last_asked"]) == 16 for g in gaps)
    rows = list(csv.reader(io.StringIO(gaps_csv(gaps))))
    assert rows[0] == ["question", "asked", "dont_know", "thumbs_down", "last_asked"] and rows[1][:2] == [
        "how do I  bake bread", "2"]
    # Answers by kind, per day: the Guide's hand-overs are recorded as such.
    (day, kinds), = store.outcomes_by_day().items()
    assert kinds == {"guide": 4, "dont_know": 2, "offline": 2}
    assert list(store.feedback_by_day().values()) == [{"up": 0, "down": 1}]


def test_deleting_a_conversation_removes_its_gaps(tmp_path):
    store = Conversations(tmp_path / "c.sqlite")
    cid = conversation(store, "How do I bake bread?", "dont_know")
    store.delete(cid)
    assert store.gaps() == [] and store.messages(cid) == [] and store.owner_of(cid) is None


def test_usage_gaps_on_the_command_line(tmp_path, capsys):
    data = tmp_path / "data"
    store = Conversations(data / "conversations.sqlite")
    assert main(["--data-dir", str(data), "usage", "--gaps"]) == 0
    assert "No coverage gaps yet" in capsys.readouterr().out
    conversation(store, "How do I bake bread?", "dont_know")
    assert main(["--data-dir", str(data), "usage", "--gaps"]) == 0
    out = capsys.readouterr().out
    assert "How do I bake bread?" in out and "asked" in out
    assert main(["--data-dir", str(data), "usage", "--gaps", "--csv"]) == 0
    assert capsys.readouterr().out.splitlines()[1].startswith("How do I bake bread?,1,1,0,")
    assert main(["--data-dir", str(data), "usage", "--gaps", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["dont_know"] == 1
    # --csv is for the gaps only, and --reset does not reset the gaps: each with the other flag is a mistake,
    # said, rather than text printed where CSV was asked for or a reset silently skipped.
    assert main(["--data-dir", str(data), "usage", "--csv"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "--csv goes with --gaps" in err
    assert main(["--data-dir", str(data), "usage", "--gaps", "--reset"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "give one" in err


def test_tokens_and_cost_are_kept_per_day_and_assistant(tmp_path):
    cfg = load_config(env={}, overrides={"data_dir": str(tmp_path / "d")})
    m = Monitor(cfg)
    m.record("gpt-4o-mini", "Coding", 1000, 500)
    m.record("gpt-4o-mini", "Tutoring", 2000, 100)
    m.record("gpt-4o-mini", "Coding", 10, 10)
    m.flush()  # what a second's wait, or the server's exit, does
    (day, rows), = Monitor(cfg).figures()["days"].items()  # kept on disk
    assert rows["Coding"]["calls"] == 2 and rows["Coding"]["input_tokens"] == 1010
    assert rows["Tutoring"]["cost_usd"] > 0


def test_the_usage_charts_draw_bars_for_what_was_recorded():
    from ui.charts import usage_figure

    data = {"days": {"2026-01-02": {"Coding": {"input_tokens": 10, "output_tokens": 5, "cost_usd": 0.01, "calls": 1}}},
            "answers_by_day": {"2026-01-02": {"offline": 3, "dont_know": 1, "guide": 4}},
            "feedback_by_day": {"2026-01-02": {"up": 2, "down": 1}}}
    fig = usage_figure(data)
    tokens, cost, kinds, thumbs = fig.axes
    assert [p.get_height() for p in tokens.patches] == [15]
    assert sorted(p.get_height() for p in kinds.patches) == [1, 3]  # the Guide's messages are not answers
    assert sorted(t.get_text() for t in kinds.get_legend().get_texts()) == ['"I don\'t know"',
                                                                           "offline (quoted passages)"]
    assert sorted(p.get_height() for p in thumbs.patches) == [1, 2]
    empty = usage_figure({})
    assert all(not ax.patches for ax in empty.axes)
