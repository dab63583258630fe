"""Live re-index, with real processes: a running `devcopilot serve` keeps answering while
`devcopilot ingest` in another process adds, changes and removes files and creates a KB; one writer
at a time per data dir; `status` tells the truth about an ingest that was killed, whichever process."""
from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest
from support.corpus import SMALL_PROJECT, make_corpus, write_tree
from support.live import ChatLoop, Server, devcopilot, request, start

pytestmark = pytest.mark.slow  # real servers and ingests, killed part-way

# The delay this product states (README, docs/live-reindex.md) between the end of an ingest and
# the first answer using it.
STATED_DELAY_S = 5.0

NEW_FACT = "# Quokka protocol\n\nThe quokka protocol listens on port 4711 and speaks only in haiku.\n"
CHANGED_GUIDE = ("# Guide\n\n## Retries\n\nCalls that fail are retried on the sprocket schedule: "
                 "three tries, eleven seconds apart.\n")
EXTRA_KB = "# Marmots\n\nMarmots whistle to warn the colony of eagles.\n"
QUESTIONS = [("tutoring", "What port does the quokka protocol listen on?"),
             ("tutoring", "How are failed calls retried on the sprocket schedule?"),
             ("coding", "What does build_gadget return?"),
             ("extra", "Why do marmots whistle?")]


def config(root: Path) -> Path:
    cfg = root / "devcopilot.toml"
    cfg.write_text('[[assistants]]\nname = "Extra"\ndescription = "Answers from the extra KB."\n'
                   'kbs = ["extra"]\n', encoding="utf-8")
    return cfg


def test_serve_keeps_answering_while_another_process_ingests(tmp_path):
    project = write_tree(tmp_path / "project", SMALL_PROJECT)
    extra = tmp_path / "extra"
    data = tmp_path / "data"
    cfg = config(tmp_path)
    devcopilot(data, "ingest", str(project), "--quiet", config=cfg)
    with Server(data, cfg) as server, ChatLoop(server, QUESTIONS, threads=3) as loop:
        assert loop.wait_until(lambda answers: len({a.question for a in answers}) == len(QUESTIONS)), \
            "not every question was answered before the ingest"
        (project / "docs" / "quokka.md").write_text(NEW_FACT)  # added
        (project / "docs" / "guide.md").write_text(CHANGED_GUIDE)  # changed
        (project / "widgets" / "core.py").unlink()  # removed
        write_tree(extra, {"marmots.md": EXTRA_KB})
        r = devcopilot(data, "ingest", str(project), "--quiet", config=cfg)
        done = time.time()
        assert "1 removed" in r.stdout and "2 new or changed" in r.stdout, r.stdout
        r = devcopilot(data, "ingest", str(extra), "--kb", "extra", "--quiet", config=cfg)  # a new KB
        done_extra = time.time()
        new = loop.wait_for("docs/quokka.md", QUESTIONS[0][1], done)
        changed = loop.wait_for("docs/guide.md", QUESTIONS[1][1], done)
        created = loop.wait_for("marmots.md", QUESTIONS[3][1], done_extra)
        assert loop.wait_until(lambda answers: len({a.question for a in answers if a.at > done + STATED_DELAY_S})
                               == len(QUESTIONS), timeout=120), "not every question was answered after the delay"
    assert new is not None and new - done <= STATED_DELAY_S, new and new - done
    assert changed is not None and changed - done <= STATED_DELAY_S
    assert created is not None and created - done_extra <= STATED_DELAY_S
    assert not loop.failed(), [(a.question, a.text[:200]) for a in loop.failed()[:5]]
    assert len(loop.answers) > 20
    after = [a for a in loop.answers if a.at > done + STATED_DELAY_S]
    assert after and not any("widgets/core.py" in a.paths for a in after)  # removed: never cited again
    sprocket = [a for a in after if a.question == QUESTIONS[1][1]]
    assert sprocket and all("sprocket schedule" in a.text for a in sprocket)  # changed: the new text


def test_a_second_ingest_waits_and_no_wait_refuses(tmp_path):
    corpus = make_corpus(tmp_path / "corpus", 120)
    small = write_tree(tmp_path / "small", {"a.md": "# A\n\nAardvarks dig at night.\n"})
    data = tmp_path / "data"
    first = start(data, "ingest", str(corpus), "--quiet")
    try:
        deadline = time.monotonic() + 120
        while "being indexed now" not in devcopilot(data, "status").stdout:
            assert first.poll() is None and time.monotonic() < deadline, "the first ingest never showed up"
            time.sleep(0.2)
        refused = devcopilot(data, "ingest", str(small), "--no-wait", check=False)
        assert refused.returncode == 2 and refused.stdout == ""
        line = refused.stderr.strip()
        assert "\n" not in line and "Another ingest" in line and f"pid {first.pid}" in line, line
        assert "Traceback" not in refused.stderr
        second = start(data, "ingest", str(small), "--kb", "other", "--quiet")
        out, err = second.communicate(timeout=600)
        assert second.returncode == 0, err
        assert "Waiting for another ingest" in err and f"pid {first.pid}" in err
        assert first.poll() == 0  # the second finished only after the first
    finally:
        if first.poll() is None:
            first.kill()
        first.wait(60)
    status = json.loads(devcopilot(data, "status", "--json").stdout)
    assert {kb["name"] for kb in status["knowledge_bases"]} == {"default", "other"}
    assert not any(kb["state"] for kb in status["knowledge_bases"])


def _status_of(data: Path) -> dict:
    return json.loads(devcopilot(data, "status", "--json").stdout)


def test_status_tells_the_truth_about_a_killed_cli_ingest(tmp_path):
    corpus = make_corpus(tmp_path / "corpus", 600)  # long enough that it cannot end before the kill
    data = tmp_path / "data"
    proc = start(data, "ingest", str(corpus), "--quiet")
    deadline = time.monotonic() + 120
    while True:
        s = _status_of(data)
        kbs = s["knowledge_bases"]
        if kbs and kbs[0]["sources"] and kbs[0]["chunks"] > 0:
            break
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.2)
    (kb,) = kbs
    assert kb["state"].startswith("being indexed now") and f"pid {proc.pid}" in kb["state"]
    assert kb["sources"][0]["state"].startswith("being indexed now")
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    (kb,) = _status_of(data)["knowledge_bases"]
    assert kb["state"].startswith("interrupted") and kb["sources"][0]["state"].startswith("interrupted")
    text = devcopilot(data, "status").stdout
    assert "interrupted" in text and "being indexed" not in text and "run ingest again" in text
    # A writer busy with another KB does not make this one look as if it were being indexed.
    from indexes.writer import writing

    with writing(data, "an ingest of another KB"):
        (kb,) = _status_of(data)["knowledge_bases"]
        assert kb["state"].startswith("interrupted") and _status_of(data)["writer"].startswith("an ingest of")
    devcopilot(data, "ingest", str(corpus), "--quiet")
    (kb,) = _status_of(data)["knowledge_bases"]
    assert kb["state"] == "" and kb["sources"][0]["state"] == ""


def test_status_tells_the_truth_when_the_server_running_the_ingest_is_killed(tmp_path):
    """The CLI hands its ingest to the running server; the server is killed part-way."""
    corpus = make_corpus(tmp_path / "corpus", 600)  # long enough that it cannot end before the kill
    project = write_tree(tmp_path / "project", SMALL_PROJECT)
    data = tmp_path / "data"
    devcopilot(data, "ingest", str(project), "--quiet")
    with Server(data, None, "--workers", "1") as server:  # one process: the one killed is the one writing
        cli = start(data, "ingest", str(corpus), "--kb", "big")
        deadline = time.monotonic() + 120
        while True:
            kbs = {kb["name"]: kb for kb in _status_of(data)["knowledge_bases"]}
            if "big" in kbs and kbs["big"]["chunks"] > 0:
                break
            assert time.monotonic() < deadline and cli.poll() is None
            time.sleep(0.2)
        assert kbs["big"]["state"].startswith("being indexed now") and "serve" in kbs["big"]["state"]
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(30)
        out, err = cli.communicate(timeout=60)
    assert cli.returncode == 2 and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("devcopilot: The server stopped"), err
    kbs = {kb["name"]: kb for kb in _status_of(data)["knowledge_bases"]}
    assert kbs["big"]["state"].startswith("interrupted") and kbs["default"]["state"] == ""
    assert "server" not in _status_of(data) or not _status_of(data)["server"]
    devcopilot(data, "ingest", str(corpus), "--kb", "big", "--quiet")  # no server now: done here
    assert {kb["name"]: kb for kb in _status_of(data)["knowledge_bases"]}["big"]["state"] == ""


def test_killing_the_cli_leaves_the_server_to_finish_the_job(tmp_path):
    # Large enough that the job is still running when the CLI is killed, on a loaded machine too.
    corpus = make_corpus(tmp_path / "corpus", 240)
    project = write_tree(tmp_path / "project", SMALL_PROJECT)
    data = tmp_path / "data"
    devcopilot(data, "ingest", str(project), "--quiet")
    with Server(data) as server:
        cli = start(data, "ingest", str(corpus), "--kb", "big")
        deadline = time.monotonic() + 120
        while "big" not in {kb["name"] for kb in _status_of(data)["knowledge_bases"]}:
            assert time.monotonic() < deadline and cli.poll() is None
            time.sleep(0.2)
        cli.send_signal(signal.SIGKILL)
        cli.wait(30)
        kbs = {kb["name"]: kb for kb in _status_of(data)["knowledge_bases"]}
        assert kbs["big"]["state"].startswith("being indexed now")  # the server carries on: the truth
        status, jobs = request(server.url + "/v1/knowledge/jobs")
        assert status == 200
        (job,) = [j for j in jobs["jobs"] if j["kb"] == "big"]
        deadline = time.monotonic() + 300
        while job["state"] in ("queued", "running"):
            assert time.monotonic() < deadline
            job = request(f"{server.url}/v1/knowledge/jobs/{job['id']}?wait=5")[1]  # returns when it ends
        assert job["state"] == "done", job
    kbs = {kb["name"]: kb for kb in _status_of(data)["knowledge_bases"]}
    assert kbs["big"]["state"] == "" and kbs["big"]["files"] == 240


def test_an_index_opened_before_another_process_writes_sees_the_new_vectors(tmp_path):
    """A process that did not go through a server (one started before it, another tool) still
    reaches a running reader: it reopens the store when the catalog says another process wrote.
    Searching a KB while another process creates it never fails either."""
    from copilot.config import load_config
    from indexes.search import Index

    project = write_tree(tmp_path / "project", SMALL_PROJECT)
    data = tmp_path / "data"
    devcopilot(data, "ingest", str(project), "--quiet")
    index = Index(load_config(env={}, overrides={"data_dir": str(data)}))
    assert index.search("MemoryStore keeps conversations", k=3)
    write_tree(project, {"docs/otters.md": "# Otters\n\nSea otters hold hands while they sleep.\n"})
    write_tree(tmp_path / "fresh", {"f.md": "# Fresh\n\nA freshly made knowledge base about lichens.\n"})
    writer = start(data, "ingest", str(project), "--quiet")
    creator = start(data, "ingest", str(tmp_path / "fresh"), "--kb", "fresh", "--quiet")
    errors = []
    while writer.poll() is None or creator.poll() is None:
        for kb in ("default", "fresh"):
            if index.catalog.kb(kb) is not None:
                try:
                    index.search("lichens otters", kb=kb, k=3)
                except Exception as e:  # the test is that there are none
                    errors.append(f"{type(e).__name__}: {e}")
        time.sleep(0.05)
    assert writer.returncode == 0 and creator.returncode == 0
    assert not errors, errors[:3]
    hits = index.search("sea otters hold hands while they sleep", k=3)
    assert hits[0].chunk.path == "docs/otters.md" and "dense" in hits[0].ranks  # found by its vector too
    fresh = index.search("lichens knowledge base", kb="fresh", k=3)
    assert fresh and "dense" in fresh[0].ranks
