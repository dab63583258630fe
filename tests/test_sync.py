"""Fresh knowledge without anyone re-indexing by hand: `serve` re-syncs its sources on a schedule
(`[sync] every`), `ingest --watch` follows a folder; and every source says what it was indexed from
(git commit and tag, package version, folder scan time) and when: in `status`, the Knowledge API
and tab, and each citation's tooltip. Real processes, a real local bare repository."""
from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest
from support.corpus import SMALL_PROJECT, write_tree
from support.git import commit_all, git
from support.live import Server, devcopilot, request, start

pytestmark = pytest.mark.slow  # real servers and processes, waiting on schedules and watches


@pytest.fixture
def repo(tmp_path):
    bare = tmp_path / "remote" / "gadgets.git"
    bare.mkdir(parents=True)
    git("init", "-q", "--bare", "-b", "main", str(bare), cwd=tmp_path)
    work = tmp_path / "work"
    git("clone", "-q", str(bare), str(work), cwd=tmp_path)
    git("checkout", "-q", "-b", "main", cwd=work)
    write_tree(work, {"README.md": "# Gadgets\n\nGadgets are built from sprockets.\n"})
    first = commit_all(work, "first")
    git("tag", "v1.0", cwd=work)
    git("push", "-q", "origin", "main", "--tags", cwd=work)
    return bare, work, first


def source_of(url: str, kb: str = "default") -> dict:
    status, known = request(url + "/v1/knowledge")
    assert status == 200
    return next(k for k in known["knowledge_bases"] if k["name"] == kb)["sources"][0]


def test_a_scheduled_sync_picks_up_a_new_commit(tmp_path, repo):
    bare, work, first = repo
    data = tmp_path / "data"
    cfg = tmp_path / "sync.toml"
    cfg.write_text('[sync]\nevery = "2s"\n', encoding="utf-8")
    url = f"file://{bare.as_posix()}"
    devcopilot(data, "ingest", url, "--quiet", config=cfg)
    with Server(data, cfg) as server:
        src = source_of(server.url)
        assert src["version"] == first[:12] and src["ref"] == "tag v1.0" and src["origin"] == f"git {first[:12]} " \
            "(tag v1.0)"
        write_tree(work, {"docs/flywheel.md": "# Flywheel\n\nThe flywheel stores energy for the sprocket press.\n"})
        second = commit_all(work, "second")
        git("tag", "v1.1", cwd=work)
        git("push", "-q", "origin", "main", "--tags", cwd=work)
        pushed = time.time()
        deadline = pushed + 120
        while (src := source_of(server.url))["version"] != second[:12] or src["state"]:
            assert time.time() < deadline, "the scheduled sync never fetched the new commit"
            time.sleep(0.5)
        assert src["ref"] == "tag v1.1"
        status, answer = server.ask("What does the flywheel store?")
        assert status == 200
        cited = [s for s in answer["sources"] if s["path"] == "docs/flywheel.md"]
        assert cited and f"git {second[:12]} (tag v1.1)" in cited[0]["origin"] and "indexed 20" in cited[0]["origin"]
        status, jobs = request(server.url + "/v1/knowledge/jobs")
        assert any(j["by"] == "sync" and j["state"] == "done" for j in jobs["jobs"])
    text = devcopilot(data, "status").stdout
    assert f"from git {second[:12]} (tag v1.1); indexed 20" in text


def test_ingest_watch_reindexes_a_folder_on_change(tmp_path):
    project = write_tree(tmp_path / "project", SMALL_PROJECT)
    data = tmp_path / "data"
    proc = start(data, "ingest", str(project), "--watch", "--debounce", "0.5", "--quiet")
    try:
        first = proc.stdout.readline()
        assert "KB 'default': 3 files" in first, (first, proc.stderr.read() if proc.poll() is not None else "")
        deadline = time.monotonic() + 60
        while "Watching" not in proc.stderr.readline():
            assert time.monotonic() < deadline
        (project / "docs" / "guide.md").write_text("# Guide\n\n## Retries\n\nCalls are retried by the "
                                                   "kangaroo scheduler, hopping twice.\n")
        (project / "notes.md").write_text("# Notes\n\nWombats make cube-shaped droppings.\n")
        second = proc.stdout.readline()
        assert "2 new or changed" in second, second
        # Writes the watcher should not react to: hidden folders, and nothing indexed changes.
        (project / ".cache").mkdir()
        (project / ".cache" / "x.md").write_text("# hidden\n")
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Stopped watching." in err and "Traceback" not in err
    assert "new or changed" not in out  # the hidden file caused no re-index
    hits = json.loads(devcopilot(data, "search", "kangaroo scheduler hopping", "--json").stdout)["hits"]
    assert hits[0]["path"] == "docs/guide.md"
    hits = json.loads(devcopilot(data, "search", "wombats cube droppings", "--json").stdout)["hits"]
    assert hits[0]["path"] == "notes.md"


def test_watch_hands_each_reindex_to_a_running_server(tmp_path):
    project = write_tree(tmp_path / "project", SMALL_PROJECT)
    data = tmp_path / "data"
    devcopilot(data, "ingest", str(project), "--quiet")
    with Server(data) as server:
        proc = start(data, "ingest", str(project), "--watch", "--debounce", "0.5", "--quiet")
        try:
            assert "0 new or changed" in proc.stdout.readline()
            deadline = time.monotonic() + 60
            while "Watching" not in proc.stderr.readline():
                assert time.monotonic() < deadline
            (project / "docs" / "emu.md").write_text("# Emus\n\nEmus cannot walk backwards.\n")
            assert "1 new or changed" in proc.stdout.readline()
            status, answer = server.ask("Can emus walk backwards?")
            assert status == 200 and any(s["path"] == "docs/emu.md" for s in answer["sources"])
        finally:
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=60)
        assert "Handing this to the running server" in err and proc.returncode == 0, err


def test_status_and_the_knowledge_tab_say_what_each_source_was_indexed_from(tmp_path, repo):
    from copilot.config import load_config
    from indexes.search import Index
    from ui.knowledge import kb_rows, source_rows

    bare, _, first = repo
    project = write_tree(tmp_path / "project", SMALL_PROJECT)
    data = tmp_path / "data"
    devcopilot(data, "ingest", str(project), "--quiet")
    devcopilot(data, "ingest", f"file://{bare.as_posix()}", "--kb", "git", "--quiet")
    devcopilot(data, "ingest", "pkg:pathspec", "--include", "pathspec/util.py", "--kb", "pkg", "--quiet")
    import pathspec

    status = json.loads(devcopilot(data, "status", "--json").stdout)
    origins = {kb["name"]: kb["sources"][0] for kb in status["knowledge_bases"]}
    assert origins["default"]["origin"].startswith("folder scanned 20") and origins["default"]["scanned_at"]
    assert origins["git"]["origin"] == f"git {first[:12]} (tag v1.0)"
    assert origins["pkg"]["origin"] == f"package {pathspec.__version__}"
    assert origins["pkg"]["include"] == ["pathspec/util.py"]
    assert all(o["last_indexed"] for o in origins.values())
    text = devcopilot(data, "status").stdout
    assert f"from package {pathspec.__version__}; indexed 20" in text and "--include pathspec/util.py" in text
    # A re-ingest without --include keeps the source's globs (a sync never widens a source).
    devcopilot(data, "ingest", "pkg:pathspec", "--kb", "pkg", "--quiet")
    pkg = next(k for k in json.loads(devcopilot(data, "status", "--json").stdout)["knowledge_bases"]
               if k["name"] == "pkg")
    assert pkg["files"] == 1 and pkg["sources"][0]["include"] == ["pathspec/util.py"]
    index = Index(load_config(env={}, overrides={"data_dir": str(data)}))
    rows = {r[0]: r for r in source_rows(index)}
    assert rows["git"][3] == f"git {first[:12]} (tag v1.0)" and rows["pkg"][3].startswith("package ")
    assert all(r.note == "" for r in kb_rows(index))


@pytest.mark.browser
def test_a_citation_shows_where_its_source_was_indexed_from_in_a_tooltip(tmp_path):
    from playwright.sync_api import sync_playwright

    if not Path("/usr/bin/chromium").exists():
        pytest.skip("Debian chromium is not installed")
    project = write_tree(tmp_path / "project", SMALL_PROJECT)
    data = tmp_path / "data"
    devcopilot(data, "ingest", str(project), "--quiet")
    with Server(data) as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium",
                                    args=["--headless", "--no-sandbox", "--disable-gpu",
                                          "--disable-background-networking", "--disable-component-update",
                                          "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(server.url + "/")
        page.wait_for_selector("#dc-input textarea", timeout=60_000)
        page.fill("#dc-input textarea", "@Tutoring how do retries work?")
        page.click("#dc-send")
        link = page.wait_for_selector("#dc-chat a[href*='/source?path='][title]", timeout=90_000)
        title = link.get_attribute("title")
        page.screenshot(path=str(tmp_path / "citation.png"))
        browser.close()
    assert title.startswith(str(project.resolve())) and "folder scanned 20" in title and "; indexed 20" in title
