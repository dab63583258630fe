"""The command-line contract of the ingest/search side: `devcopilot ingest|search|status|eval|forget`.

Most commands run in this process through `main(argv)` (the real CLI code, one model load);
the console script and `python -m devcopilot` run as real subprocesses.
"""
from __future__ import annotations

import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support.corpus import ingested_data_dir, write_tree

from indexes.evaluate import load_qa, score
from ui.cli import main

HIT_KEYS = {"path", "start_line", "end_line", "kind", "language", "symbol", "score", "text", "link"}
SCORE_PY = Path(__file__).resolve().parents[2] / "shared" / "eval" / "score.py"
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    """A data dir with the small project ingested once, for the read-only tests."""
    root = tmp_path_factory.mktemp("cli")
    data, project = ingested_data_dir(root)
    return data, project


def run(capsys, *argv: str, stdin: str | None = None, monkeypatch=None) -> tuple[int, str, str]:
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_ingest_prints_a_summary(capsys, tmp_path, project):
    write_tree(project, {"logo.png": b"\x89PNG\0\0"})
    code, out, err = run(capsys, "--data-dir", str(tmp_path / "d"), "ingest", str(project), "--kb", "w", "--quiet")
    assert code == 0 and err == ""
    assert out.startswith("KB 'w': 3 files (3 new or changed, 0 removed)")
    assert "skipped: 1 binary" in out and out.rstrip().endswith(" s.")
    one = write_tree(tmp_path / "one", {"README.md": "# One page\n\nAll there is.\n"})
    code, out, _ = run(capsys, "--data-dir", str(tmp_path / "d"), "ingest", str(one), "--kb", "one", "--quiet")
    assert code == 0 and out.startswith("KB 'one': 1 file (1 new or changed, 0 removed)")  # one, not "1 files"


def test_search_json_from_stdin_one_object_per_query(capsys, indexed, monkeypatch):
    data, project = indexed
    queries = ["long-term memory for an agent", "MemoryStore save", "retries with backoff"]
    code, out, err = run(capsys, "--data-dir", str(data), "search", "--json", "--k", "4",
                         stdin="\n".join(queries) + "\n", monkeypatch=monkeypatch)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert len(lines) == len(queries)
    for q, line in zip(queries, lines):
        obj = json.loads(line)
        assert set(obj) == {"query", "weak", "hits"} and obj["query"] == q and obj["weak"] is False
        assert 1 <= len(obj["hits"]) <= 4
        for h in obj["hits"]:
            assert set(h) >= HIT_KEYS
            assert not Path(h["path"]).is_absolute() and (project / h["path"]).is_file()
            assert h["kind"] in ("doc", "code") and h["start_line"] <= h["end_line"]
            cited = (project / h["path"]).read_text().split("\n")[h["start_line"] - 1:h["end_line"]]
            assert "\n".join(cited) == h["text"]
            assert h["link"].startswith(str(project)) and h["link"].endswith(f"#L{h['start_line']}-L{h['end_line']}")
        scores = [h["score"] for h in obj["hits"]]
        assert scores == sorted(scores, reverse=True)
    first = json.loads(lines[0])["hits"][0]
    assert first["path"] == "README.md" and first["language"] == "markdown"
    code_hit = json.loads(lines[1])["hits"][0]
    assert code_hit["path"] == "widgets/core.py" and code_hit["symbol"].startswith("MemoryStore")


def test_search_kind_filter_and_text_output(capsys, indexed):
    data, _ = indexed
    for kind in ("doc", "code"):
        code, out, _ = run(capsys, "--data-dir", str(data), "search", "memory store", "--kind", kind, "--json")
        hits = json.loads(out)["hits"]
        assert code == 0 and hits and all(h["kind"] == kind for h in hits)
    code, out, _ = run(capsys, "--data-dir", str(data), "search", "build a gadget", "--k", "2")
    assert code == 0 and out.startswith("# build a gadget\n[1] ")
    assert "widgets/core.py:" in out and "[3]" not in out


def test_status_text_lines_up_its_settings(capsys, indexed):
    data, _ = indexed
    code, out, _ = run(capsys, "--data-dir", str(data), "status")
    head = out.split("\n\n")[0].splitlines()
    labels = [line.split(":", 1)[0] for line in head]
    assert code == 0 and {"data dir", "embedding", "store", "chat model", "conversations"} <= set(labels)
    starts = {len(line) - len(line.split(":", 1)[1].lstrip()) for line in head}
    assert len(starts) == 1, head  # every value starts in one column


def test_status_json(capsys, indexed):
    data, project = indexed
    code, out, _ = run(capsys, "--data-dir", str(data), "status", "--json")
    st = json.loads(out)
    assert code == 0 and st["data_dir"] == str(data) and st["store"] == "chroma"
    assert st["embedding"].startswith("local/all-MiniLM-L6-v2@onnx-fp32-")  # the default runtime
    (kb,) = st["knowledge_bases"]
    assert kb["name"] == "default" and kb["files"] == 3 and kb["chunks"] >= 5 and kb["last_indexed"]
    assert kb["interrupted"] is False
    (src,) = kb["sources"]
    assert src["spec"] == str(project.resolve()) and src["kind"] == "folder" and src["files"] == 3
    assert src["chunks"] == kb["chunks"]
    code, out, _ = run(capsys, "--data-dir", str(data), "status")
    assert code == 0 and "KB 'default': 3 files" in out


def write_qa(path: Path) -> Path:
    qa = [
        {"id": "q1", "question": "How do I give an agent long-term memory?", "lang": "en", "kind": "doc",
         "assistant": "tutoring", "gold": [{"path": "README.md", "symbol": None}]},
        {"id": "q2", "question": "Which method writes the messages of a conversation?", "lang": "en",
         "kind": "code", "assistant": "coding", "gold": [{"path": "widgets/core.py", "symbol": "MemoryStore.save"}]},
        {"id": "q3", "question": "How often are rate-limited calls retried?", "lang": "en", "kind": "doc",
         "assistant": "tutoring", "gold": [{"path": "docs/guide.md", "symbol": None}]},
        {"id": "q4", "question": "如何构建一个小工具？", "lang": "zh", "kind": "code", "assistant": "coding",
         "gold": [{"path": "widgets/core.py", "symbol": "build_gadget"}]},
        {"id": "q5", "question": "Where is the quantum flux capacitor configured?", "lang": "en", "kind": "doc",
         "assistant": "tutoring", "gold": [{"path": "docs/missing.md", "symbol": None}]},
    ]
    path.write_text("\n".join(json.dumps(q, ensure_ascii=False) for q in qa) + "\n", encoding="utf-8")
    return path


def test_eval_matches_the_shared_scorer(capsys, indexed, tmp_path, monkeypatch):
    data, _ = indexed
    qa_path = write_qa(tmp_path / "qa.jsonl")
    code, out, _ = run(capsys, "--data-dir", str(data), "eval", str(qa_path), "--json")
    assert code == 0
    figures = json.loads(out)
    assert figures["n"] == 5 and figures["file@5"] <= 0.8  # q5's gold file does not exist
    # the pipeline the shared scorer describes: questions on stdin to `search --json`, then score
    qa = load_qa(qa_path)
    code, out, _ = run(capsys, "--data-dir", str(data), "search", "--json",
                       stdin="".join(q["question"] + "\n" for q in qa), monkeypatch=monkeypatch)
    results = [json.loads(line)["hits"] for line in out.splitlines()]
    assert len(results) == len(qa)
    if SCORE_PY.exists():
        spec = importlib.util.spec_from_file_location("shared_eval_score", SCORE_PY)
        shared = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(shared)
        assert {k: v for k, v in figures.items() if k != "top1"} == shared.score_results(qa, results)
    assert figures == score(qa, results)
    # and by hand from the definitions, so a shared bug cannot hide
    file5 = sym5 = rr = top1 = 0.0
    for q, hits in zip(qa, results):
        gold = {g["path"] for g in q["gold"]}
        file5 += any(h["path"] in gold for h in hits[:5])
        sym5 += any(h["path"] == g["path"] and (not g["symbol"] or g["symbol"].split(".")[-1] in h["text"])
                    for g in q["gold"] for h in hits[:5])
        rr += next((1 / (i + 1) for i, h in enumerate(hits[:10]) if h["path"] in gold), 0.0)
        top1 += bool(hits) and hits[0]["path"] in gold
    assert figures["file@5"] == round(file5 / 5, 3)
    assert figures["sym@5"] == round(sym5 / 5, 3)
    assert figures["mrr@10"] == round(rr / 5, 3)
    assert figures["top1"] == round(top1 / 5, 3)
    assert figures["file@5_lang_zh"] in (0.0, 1.0) and "file@5_asst_coding" in figures


def test_forget_source_then_kb(capsys, tmp_path, project):
    data = str(tmp_path / "d")
    other = write_tree(tmp_path / "other", {"notes.md": "# Notes\n\nThe flux capacitor needs 1.21 gigawatts.\n"})
    assert run(capsys, "--data-dir", data, "ingest", str(project), str(other), "--quiet")[0] == 0
    code, out, _ = run(capsys, "--data-dir", data, "search", "flux capacitor gigawatts", "--json")
    assert json.loads(out)["hits"][0]["path"] == "notes.md"

    shutil.rmtree(other)  # a source can be forgotten after its folder is gone
    code, out, err = run(capsys, "--data-dir", data, "forget", str(other))
    assert code == 0 and out.startswith(f"Removed source '{other.resolve()}' (") and err == ""
    code, out, _ = run(capsys, "--data-dir", data, "search", "flux capacitor gigawatts", "--json")
    assert all(h["path"] != "notes.md" for h in json.loads(out)["hits"])
    st = json.loads(run(capsys, "--data-dir", data, "status", "--json")[1])
    assert [s["spec"] for s in st["knowledge_bases"][0]["sources"]] == [str(project.resolve())]

    code, out, err = run(capsys, "--data-dir", data, "forget", "--kb", "default")
    assert code == 0 and out.strip() == "Removed knowledge base 'default'."
    st = json.loads(run(capsys, "--data-dir", data, "status", "--json")[1])
    assert st["knowledge_bases"] == []
    code, out, err = run(capsys, "--data-dir", data, "search", "memory")
    assert code == 2 and out == "" and "Nothing is indexed yet" in err
    code, out, err = run(capsys, "--data-dir", data, "search", "memory", "--kb", "default")
    assert code == 2 and out == "" and "no knowledge base named 'default'" in err


def test_forget_needs_a_source_or_an_explicit_kb(capsys, indexed):
    data, _ = indexed
    code, out, err = run(capsys, "--data-dir", str(data), "forget")
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    st = json.loads(run(capsys, "--data-dir", str(data), "status", "--json")[1])
    assert st["knowledge_bases"][0]["chunks"] > 0  # nothing was removed


def test_data_dir_from_flag_env_and_default(capsys, tmp_path, project, monkeypatch):
    env_dir = tmp_path / "from-env"
    monkeypatch.setenv("DEVCOPILOT_DATA_DIR", str(env_dir))
    assert run(capsys, "ingest", str(project), "--kb", "e", "--quiet")[0] == 0
    assert (env_dir / "catalog.sqlite").exists()
    flag_dir = tmp_path / "from-flag"
    st = json.loads(run(capsys, "--data-dir", str(flag_dir), "status", "--json")[1])
    assert st["data_dir"] == str(flag_dir) and st["knowledge_bases"] == []  # the flag wins over the env
    st = json.loads(run(capsys, "status", "--json")[1])
    assert [kb["name"] for kb in st["knowledge_bases"]] == ["e"]
    monkeypatch.delenv("DEVCOPILOT_DATA_DIR")
    monkeypatch.chdir(tmp_path)
    st = json.loads(run(capsys, "status", "--json")[1])
    assert Path(st["data_dir"]) == Path(".devcopilot")


def subprocess_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEVCOPILOT_")}
    env.update({"HF_HUB_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False", **extra})
    return env


def test_console_script_and_python_m_copilot(indexed):
    data, _ = indexed
    env = subprocess_env(DEVCOPILOT_DATA_DIR=str(data))
    r = subprocess.run([str(BIN / "devcopilot"), "search", "--json", "--kind", "code", "--k", "2"],
                       input="MemoryStore save\n", capture_output=True, text=True, env=env, timeout=120,
                       check=False)
    assert r.returncode == 0, r.stderr
    obj = json.loads(r.stdout)
    assert obj["query"] == "MemoryStore save" and obj["hits"][0]["path"] == "widgets/core.py"
    # `python -m devcopilot` is the same program (status needs no model, so this stays quick)
    r2 = subprocess.run([sys.executable, "-m", "devcopilot", "status", "--json"], capture_output=True, text=True,
                        env=env, timeout=120, check=False)
    assert r2.returncode == 0, r2.stderr
    assert json.loads(r2.stdout)["knowledge_bases"][0]["chunks"] > 0
    r3 = subprocess.run([sys.executable, "-m", "devcopilot", "--help"], capture_output=True, text=True, env=env,
                        timeout=60, check=False)
    assert r3.returncode == 0
    for command in ("ingest", "search", "status", "eval", "forget"):
        assert command in r3.stdout


RERANKER = '''
class Reverse:
    """Puts the fused ranking upside down: easy to see in the output."""

    def rerank(self, query, hits):
        return list(reversed(hits))


def make():
    return Reverse()
'''


def test_reranker_hook_from_config(capsys, indexed, tmp_path, monkeypatch):
    data, _ = indexed
    (tmp_path / "my_rerank.py").write_text(RERANKER)
    monkeypatch.syspath_prepend(str(tmp_path))
    conf = tmp_path / "devcopilot.toml"
    conf.write_text('[search]\nreranker = "my_rerank:make"\ncandidates = 8\n')
    _, plain, _ = run(capsys, "--data-dir", str(data), "search", "memory", "--json", "--k", "20")
    code, reranked, err = run(capsys, "--data-dir", str(data), "--config", str(conf), "search", "memory", "--json",
                              "--k", "20")
    assert code == 0, err
    before = [(h["path"], h["start_line"]) for h in json.loads(plain)["hits"]]
    after = [(h["path"], h["start_line"]) for h in json.loads(reranked)["hits"]]
    assert len(before) >= 3 and after == before[::-1]
    conf.write_text('[search]\nreranker = "no_such_module:make"\n')
    try:
        code = main(["--data-dir", str(data), "--config", str(conf), "search", "memory"])
    finally:
        out, err = capsys.readouterr()
    assert code == 2 and out == "" and "Reranker 'no_such_module:make' could not be loaded" in err


class Terminal(io.StringIO):
    """Stands in for a terminal on stderr, so the progress bar is drawn."""

    def isatty(self) -> bool:
        return True


def test_progress_bar_on_a_terminal_only(capsys, tmp_path, project, monkeypatch):
    term = Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    assert main(["--data-dir", str(tmp_path / "d"), "ingest", str(project)]) == 0
    drawn = term.getvalue()
    assert "scanning" in drawn and "indexing" in drawn and "3/3" in drawn
    assert capsys.readouterr().out.startswith("KB 'default': 3 files")
    term2 = Terminal()
    monkeypatch.setattr(sys, "stderr", term2)
    assert main(["--data-dir", str(tmp_path / "d"), "ingest", str(project), "--quiet"]) == 0
    assert term2.getvalue() == ""


def test_output_into_a_closed_pipe_is_quiet(indexed):
    data, _ = indexed
    env = subprocess_env(DEVCOPILOT_DATA_DIR=str(data))
    proc = subprocess.Popen([sys.executable, "-m", "devcopilot", "status", "--json"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    proc.stdout.close()  # like `devcopilot status --json | head -c 0`
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0 and err == ""


def test_a_mistyped_command_suggests_the_closest(capsys):
    for typed, suggested in (("serch", "search"), ("injest", "ingest"), ("usge", "usage"), ("stauts", "status")):
        with pytest.raises(SystemExit) as e:
            main([typed, "x"])
        assert e.value.code == 2
        err = capsys.readouterr().err
        assert f"Unknown command '{typed}'; did you mean `devcopilot {suggested}`?" in err, err
        assert err.count("\n") == 1
    with pytest.raises(SystemExit):
        main(["zzzz"])
    assert "the commands are ingest, search" in capsys.readouterr().err


def test_serve_workers_zero_is_one_per_cpu_core_as_its_help_says(capsys):
    """`--workers 0` was refused though the help (and server.workers) give 0 as one per CPU core."""
    import os

    from ui.cli import build_parser, server_processes

    assert build_parser().parse_args(["serve", "--workers", "0"]).workers == 0
    cores = os.cpu_count() or 1
    assert server_processes(0, 3) == cores  # the flag wins over the setting, 0 included
    assert server_processes(None, 0) == cores and server_processes(None, 3) == 3 and server_processes(2, 0) == 2
    with pytest.raises(SystemExit) as e:
        main(["serve", "--workers", "-1"])
    assert e.value.code == 2 and "'-1' is not a whole number" in capsys.readouterr().err


def test_ask_renders_markdown_in_a_terminal_and_plain_text_in_a_pipe(capsys):
    from copilot.events import Event, Source
    from ui.cli import _print_answers

    text = "Use **MemoryStore**:\n\n```python\nstore = MemoryStore(path)\n```\n\n- one\n- two"
    src = Source(1, "README.md", 3, 9, "Memory", "/r/README.md#L3-L9", "doc", "markdown", "x", "default")
    events = [Event("start", "Tutoring"), *[Event("token", "Tutoring", p) for p in text.split(" ")],
              Event("end", "Tutoring", text, [src])]
    assert _print_answers(iter(events), terminal=False) == 0
    piped = capsys.readouterr().out
    assert "**MemoryStore**" in piped and "```python" in piped  # as written, for scripts
    assert _print_answers(iter(events), terminal=True) == 0
    shown = capsys.readouterr().out
    assert "MemoryStore" in shown and "**" not in shown and "```" not in shown  # rendered by rich
    assert "• one" in shown and "store = MemoryStore(path)" in shown
    assert "[1] README.md:3-9  Memory  (KB default)" in shown
