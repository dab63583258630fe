"""Bad input: one clear sentence on stderr, exit code 2, no traceback, and nothing indexed is lost.

The commands run through the real CLI entry point (`main(argv)`, stderr captured at the file
descriptor); a few also run as real processes to prove no traceback reaches the terminal.
"""
from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.corpus import SMALL_PROJECT, ingested_data_dir, write_tree

from ui.cli import main

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def kb(tmp_path_factory):
    """A data dir with the small project indexed; every bad command below must leave it intact."""
    root = tmp_path_factory.mktemp("bad")
    data, project = ingested_data_dir(root)
    return data, root


def one_sentence_error(capfd, argv: list[str]) -> str:
    try:
        code = main(argv)
    except SystemExit as e:  # argparse usage errors exit from inside parse_args
        code = e.code
    out, err = capfd.readouterr()
    assert code == 2, (argv, out, err)
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    msg = lines[0]
    assert msg.startswith("devcopilot") and "Traceback" not in err
    assert msg.rstrip().endswith((".", ")")), msg
    return msg


def assert_still_searchable(capfd, data: Path) -> None:
    assert main(["--data-dir", str(data), "search", "MemoryStore save conversation", "--json", "--k", "3"]) == 0
    out, _ = capfd.readouterr()
    hits = json.loads(out)["hits"]
    assert hits and hits[0]["path"] == "widgets/core.py"
    assert main(["--data-dir", str(data), "status", "--json"]) == 0
    (info,) = [i for i in json.loads(capfd.readouterr()[0])["knowledge_bases"] if i["name"] == "default"]
    assert info["files"] == 3 and info["chunks"] >= 5 and not info["interrupted"]


def test_missing_path(capfd, kb):
    data, root = kb
    msg = one_sentence_error(capfd, ["--data-dir", str(data), "ingest", str(root / "nope")])
    assert "does not exist" in msg and str(root / "nope") in msg
    # a good source beside a bad one: nothing is changed either
    msg = one_sentence_error(capfd, ["--data-dir", str(data), "ingest", str(root / "project"), str(root / "nope")])
    assert "does not exist" in msg
    assert_still_searchable(capfd, data)


def test_unreachable_git_url(capfd, kb):
    data, root = kb
    msg = one_sentence_error(capfd, ["--data-dir", str(data), "ingest", f"file://{root}/no/such/repo.git"])
    assert msg.startswith("devcopilot: Could not clone")
    assert_still_searchable(capfd, data)


@pytest.mark.parametrize("url", ["https://example.com/r.git;touch${IFS}pwned", "https://example.com/$(id).git",
                                 "ssh://-oProxyCommand=touch%20pwned/r.git"])
def test_git_url_with_shell_characters(capfd, kb, url, monkeypatch):
    data, root = kb
    monkeypatch.chdir(root)
    msg = one_sentence_error(capfd, ["--data-dir", str(data), "ingest", url])
    assert "not a git URL this copilot accepts" in msg
    assert not (root / "pwned").exists()
    assert_still_searchable(capfd, data)


def test_option_like_arguments(capfd, kb, monkeypatch):
    data, root = kb
    monkeypatch.chdir(root)
    for argv in (["--upload-pack=touch pwned"], ["--upload-pack=touch"], ["-u", "x"]):
        msg = one_sentence_error(capfd, ["--data-dir", str(data), "ingest", *argv])
        assert any(why in msg.lower() for why in ("unrecognized arguments", "does not exist", "are required"))
    msg = one_sentence_error(capfd, ["--data-dir", str(data), "ingest", "--", "--upload-pack=touch pwned"])
    assert "does not exist" in msg
    assert not (root / "pwned").exists()
    # a folder really named like an option is just a folder
    weird = write_tree(root / "--kb", {"notes.md": "# Notes\n\nZebras are striped.\n"})
    assert main(["--data-dir", str(data), "ingest", "--kb", "odd", "--quiet", "--", str(weird)]) == 0
    capfd.readouterr()
    assert_still_searchable(capfd, data)


def test_binary_huge_utf8_syntax_errors_and_symlink_loop_inside_a_folder(capfd, kb):
    """Inside a folder these are not errors: skipped files are counted and reported; odd text is indexed."""
    data, root = kb
    messy = write_tree(root / "messy", {
        "logo.png": b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR",
        "blob.py": b"x = 1\n\0\0\0\0",
        "huge.md": "# Huge\n\n" + "lorem ipsum dolor " * 80_000,
        "latin1.md": b"# Caf\xe9 cr\xe8me\n\nThe kiosk sells caf\xe9 au lait and \xff\xfe oddities.\n",
        "broken.py": "def parse_widget(x:\n    return x +\n\nclass Survivor:\n    pass\n",
    })
    os.symlink("loop2", messy / "loop1.md")
    os.symlink("loop1.md", messy / "loop2")
    assert main(["--data-dir", str(data), "ingest", str(messy), "--kb", "messy", "--quiet"]) == 0
    out, err = capfd.readouterr()
    assert err == ""
    assert "2 files" in out and "2 binary" in out and "1 larger than 1,000,000 bytes" in out
    assert "2 broken or looping symbolic link" in out
    assert main(["--data-dir", str(data), "status", "--json"]) == 0
    (messy_kb,) = [k for k in json.loads(capfd.readouterr()[0])["knowledge_bases"] if k["name"] == "messy"]
    assert messy_kb["sources"][0]["skipped"] == {"binary": 2, "larger than 1,000,000 bytes": 1,
                                                 "broken or looping symbolic link": 2}
    assert main(["--data-dir", str(data), "search", "kiosk au lait", "--kb", "messy", "--json"]) == 0
    hit = json.loads(capfd.readouterr()[0])["hits"][0]
    assert hit["path"] == "latin1.md" and "\ufffd" in hit["text"]
    assert main(["--data-dir", str(data), "search", "parse_widget", "--kb", "messy", "--json"]) == 0
    assert json.loads(capfd.readouterr()[0])["hits"][0]["path"] == "broken.py"
    assert_still_searchable(capfd, data)


def test_binary_file_or_any_file_given_as_the_source(capfd, kb):
    data, root = kb
    png = root / "logo.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n\0\0")
    msg = one_sentence_error(capfd, ["--data-dir", str(data), "ingest", str(png)])
    assert "is a file, not a folder" in msg
    assert_still_searchable(capfd, data)


def test_symlink_loop_given_as_the_source(capfd, kb):
    data, root = kb
    os.symlink(root / "ring", root / "ring")
    msg = one_sentence_error(capfd, ["--data-dir", str(data), "ingest", str(root / "ring")])
    assert "symbolic link that loops" in msg
    assert_still_searchable(capfd, data)


@pytest.mark.parametrize("toml, expect", [
    ("[store\nkind = 'chroma'\n", "is not valid TOML"),
    ("[store]\nkind = 'mongodb'\n", "Unknown store 'mongodb'"),
    ("[ingest]\nmax_file_bytes = 'lots'\n", "must be a whole number"),
    ("[store]\ncolour = 'blue'\n", "Unknown setting 'store.colour'"),
    ("store = 3\n", "must be a table"),
    ("[embedding]\nprovider = 'cohere'\n", "Unknown embedding provider 'cohere'"),
    ("[search]\nfusion = 'max'\n", "Unknown search fusion 'max'"),
    ("[store]\nef_search = 0\n", "must be a whole number of at least 1"),
])
def test_malformed_config(capfd, kb, tmp_path, toml, expect):
    data, _ = kb
    conf = tmp_path / "devcopilot.toml"
    conf.write_text(toml)
    for argv in (["search", "memory"], ["ingest", str(kb[1] / "project")], ["status"]):
        msg = one_sentence_error(capfd, ["--data-dir", str(data), "--config", str(conf), *argv])
        assert expect in msg
    msg = one_sentence_error(capfd, ["--data-dir", str(data), "--config", str(tmp_path / "none.toml"), "status"])
    assert "does not exist" in msg
    assert_still_searchable(capfd, data)


def test_unknown_kb_and_bad_kind(capfd, kb):
    data, _ = kb
    msg = one_sentence_error(capfd, ["--data-dir", str(data), "search", "memory", "--kb", "nosuch"])
    assert "no knowledge base named 'nosuch'" in msg and "default" in msg
    msg = one_sentence_error(capfd, ["--data-dir", str(data), "search", "memory", "--kind", "video"])
    assert "invalid choice: 'video'" in msg
    for k in ("0", "-3", "ten"):
        msg = one_sentence_error(capfd, ["--data-dir", str(data), "search", "memory", "--k", k])
        assert f"'{k}' is not a whole number of 1 or more" in msg
    msg = one_sentence_error(capfd, ["--data-dir", str(data), "eval", str(kb[1] / "missing.jsonl")])
    assert "does not exist" in msg
    bad_qa = kb[1] / "bad.jsonl"
    bad_qa.write_text('{"question": "ok?", "gold": [{"path": "README.md"}]}\n{"question": "no gold"}\n')
    msg = one_sentence_error(capfd, ["--data-dir", str(data), "eval", str(bad_qa)])
    assert "Line 2" in msg and "'question' and 'gold'" in msg
    msg = one_sentence_error(capfd, ["--data-dir", str(data), "forget", "/not/a/source"])
    assert "has no source '/not/a/source'" in msg
    msg = one_sentence_error(capfd, ["--data-dir", str(data), "forget", "--kb", "nosuch"])
    assert "no knowledge base named 'nosuch'" in msg
    assert_still_searchable(capfd, data)


def test_eval_question_files_that_cannot_be_scored(capfd, kb):
    """A folder, an empty file, or gold given as bare paths: one sentence each, not a traceback or zeros."""
    data, root = kb
    msg = one_sentence_error(capfd, ["--data-dir", str(data), "eval", str(root)])
    assert "is a folder" in msg
    empty = root / "empty.jsonl"
    empty.write_text("\n")
    msg = one_sentence_error(capfd, ["--data-dir", str(data), "eval", str(empty)])
    assert "holds no questions" in msg
    bare = root / "bare.jsonl"
    bare.write_text('{"question": "ok?", "gold": [{"path": "README.md"}]}\n{"question": "x", "gold": ["README.md"]}\n')
    msg = one_sentence_error(capfd, ["--data-dir", str(data), "eval", str(bare)])
    assert "Line 2" in msg and "'gold' must be a list of objects with a 'path'" in msg


def test_ask_with_an_empty_question_or_an_unknown_kb(capfd, kb):
    """As search does: one sentence and exit 2, not an answer saying so with exit 0."""
    data, _ = kb
    for question in ("", "   "):
        msg = one_sentence_error(capfd, ["--data-dir", str(data), "ask", question])
        assert "The question is empty" in msg
    msg = one_sentence_error(capfd, ["--data-dir", str(data), "ask", "how do I save memory?", "--kb", "nosuch"])
    assert "no knowledge base named 'nosuch'" in msg and "default" in msg
    assert_still_searchable(capfd, data)


def test_a_data_dir_or_config_that_is_not_what_it_should_be(capfd, tmp_path):
    """A file where the data dir should be, a data dir that cannot be made, a folder given as the
    configuration file: each named as what it is, not "[Errno 17] File exists"."""
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a data dir")
    for argv in (["status"], ["search", "memory"], ["ingest", str(tmp_path)]):
        msg = one_sentence_error(capfd, ["--data-dir", str(a_file), *argv])
        assert f"The data dir '{a_file}' is a file, not a folder" in msg and "--data-dir" in msg
    msg = one_sentence_error(capfd, ["--data-dir", str(a_file / "data"), "status"])
    assert f"The data dir '{a_file / 'data'}' cannot be made" in msg
    msg = one_sentence_error(capfd, ["--config", str(tmp_path), "--data-dir", str(tmp_path / "d"), "status"])
    assert "is a folder; give the TOML file itself" in msg


def test_damaged_catalog_is_one_sentence_with_a_way_out(capfd, tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0o700)  # private, as devcopilot makes it: a wider one gets a line saying it was tightened
    (data / "catalog.sqlite").write_bytes(b"this is not a database" * 100)
    msg = one_sentence_error(capfd, ["--data-dir", str(data), "status"])
    assert "catalog" in msg and "damaged" in msg and "move it aside" in msg


def test_real_processes_print_no_traceback(kb, tmp_path):
    data, root = kb
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text("[store\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEVCOPILOT_")}
    env["HF_HUB_OFFLINE"] = "1"
    for argv in (["ingest", str(root / "nope")], ["--config", str(bad_toml), "status"],
                 ["search", "x", "--kind", "video"], ["search", "memory", "--kb", "nosuch"], ["forget"]):
        r = subprocess.run([str(BIN / "devcopilot"), "--data-dir", str(data), *argv], capture_output=True,
                           text=True, env=env, timeout=120, check=False)
        assert r.returncode == 2 and r.stdout == "", (argv, r.stdout, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr, r.stderr


def test_odd_queries_on_stdin(capfd, kb, monkeypatch):
    """Control characters, a NUL, an empty line and a very long line: one JSON line each, no error."""
    import io

    data, _ = kb
    queries = ["mem\x00ory \x1b[31mstore\x1b[0m", "", "   ", "save " * 20_000, "??? !!! ...", "保存对话"]
    monkeypatch.setattr(sys, "stdin", io.StringIO("".join(q + "\n" for q in queries)))
    assert main(["--data-dir", str(data), "search", "--json", "--k", "3"]) == 0
    out, err = capfd.readouterr()
    assert err == ""
    lines = [json.loads(line) for line in out.splitlines()]
    assert [o["query"] for o in lines] == queries
    assert lines[1]["hits"] == [] and lines[2]["hits"] == []
    assert lines[0]["hits"] and lines[3]["hits"]
    assert_still_searchable(capfd, data)


def test_a_long_word_is_read_once_not_from_each_letter(capfd, kb):
    """A 20,000-character question without spaces (the chat's limit) once kept the reading of its wording busy for
    minutes, a name being sought from each of its letters; search and ask now answer it like any question. The
    bound is a liveness check, far above what an answer takes and far below what it took."""
    import threading

    from indexes.api_python import DOCSTRING_NOTE

    data, _ = kb
    for question in ("a" * 20_000, "MemoryStore" * 1_800, "memory_store." * 1_500):
        codes: list = []
        for argv in (["search", question, "--json", "--k", "3"], ["ask", question]):
            runner = threading.Thread(target=lambda a=argv, c=codes: c.append(main(["--data-dir", str(data), *a])),
                                      daemon=True)
            runner.start()
            runner.join(60)
            assert not runner.is_alive(), f"{argv[0]} of a {len(question)}-character word is still running"
        assert codes == [0, 0]
        out, err = capfd.readouterr()
        assert "Traceback" not in err and json.loads(out.splitlines()[0])["query"] == question
    # the docs check's reading of a docstring, likewise, for a docstring's long line
    reader = threading.Thread(target=lambda: DOCSTRING_NOTE.search("a" * 100_000 + " is deprecated"), daemon=True)
    reader.start()
    reader.join(20)
    assert not reader.is_alive()


@pytest.mark.parametrize("store, damaged", [("chroma", "chroma/chroma.sqlite3"), ("qdrant", "qdrant/meta.json")])
def test_damaged_vector_store_folder_and_its_way_out(capfd, tmp_path, monkeypatch, store, damaged):
    from copilot.config import load_config
    from indexes.search import Index

    monkeypatch.setenv("DEVCOPILOT_STORE", store)
    data = tmp_path / "data"
    project = write_tree(tmp_path / "project", SMALL_PROJECT)
    assert main(["--data-dir", str(data), "ingest", str(project), "--quiet"]) == 0
    capfd.readouterr()
    gc.collect()  # each command here stands for a process of its own: let go of Qdrant's folder lock
    (data / damaged).write_bytes(b"{\x13garbage" * 50)
    msg = one_sentence_error(capfd, ["--data-dir", str(data), "search", "memory"])
    assert "cannot be opened" in msg and "move it aside and run `devcopilot ingest` again" in msg
    # the way out the sentence gives: nothing needs re-embedding, the vectors come back from the catalog
    (data / store).rename(tmp_path / f"{store}.damaged")
    assert main(["--data-dir", str(data), "ingest", str(project), "--quiet"]) == 0
    assert "0 embedded" in capfd.readouterr()[0]
    gc.collect()
    index = Index(load_config(env={"DEVCOPILOT_STORE": store}, overrides={"data_dir": str(data)}))
    assert index.store.ids(index.collection("default")) == index.catalog.chunk_ids("default")
    assert index.search("MemoryStore save", k=1, kind="code")[0].chunk.path == "widgets/core.py"
    if store == "qdrant":
        index.store.client.close()
