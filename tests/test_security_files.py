"""Security: files, packages and permissions. Each test replays an attack that worked (issue 25's breaks
2, 4, 7 and 13, and the class they belong to) through the doors an attacker or a careless setting uses:
the Knowledge API of a real server, `devcopilot serve` and `ingest` as real processes."""
from __future__ import annotations

import os
import socket
import stat
import subprocess
import threading
import time
from pathlib import Path

import pytest
from support.corpus import SMALL_PROJECT, write_tree
from support.live import Server, devcopilot, request, start
from support.packages import declare_distribution
from support.servers import ServerThread, free_port

from copilot.chat import Copilot
from copilot.config import load_config
from indexes.build import ingest
from indexes.search import Index
from ingest.files import WalkReport, walk
from ingest.sources import SourceError, resolve
from ui.server import create_app

TOKEN = "security-files-token-0451"
NOT_REGULAR = "not a regular file"


@pytest.fixture(scope="module")
def kapi(tmp_path_factory):
    """A server answering the Knowledge API (API token), allowed to index one folder only."""
    root = tmp_path_factory.mktemp("secfiles")
    allowed = root / "allowed"
    project = write_tree(allowed / "project", SMALL_PROJECT)
    cfg = load_config(env={}, overrides={"data_dir": str(root / "data"), "server": {"allowed_roots": [str(allowed)]}})
    index = Index(cfg)
    ingest(index, [str(project)], "default")
    with ServerThread(create_app(Copilot(cfg, index=index), cfg, api_token=TOKEN)) as url:
        yield {"url": url, "allowed": allowed, "cfg": cfg}


def submit(site: dict, body: dict) -> tuple[int, dict]:
    return request(site["url"] + "/v1/knowledge/jobs", body, TOKEN)


def finished(site: dict, job: dict, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while job["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, f"the job did not finish within {timeout} s: {job}"
        status, job = request(f"{site['url']}/v1/knowledge/jobs/{job['id']}?wait=2", token=TOKEN)
        assert status == 200
    return job


def kb_names(site: dict) -> set[str]:
    status, known = request(site["url"] + "/v1/knowledge", token=TOKEN)
    assert status == 200
    return {k["name"] for k in known["knowledge_bases"] if k["chunks"]}


def release(fifo: Path) -> None:
    """Let a reader blocked on opening the FIFO go on (it then reads end of file): what a hung ingest
    on a build without the fix needs for the test to end."""
    try:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:  # nobody is blocked on it
        pass


# -- 2: allowed_roots given as a string ---------------------------------------------------------------

@pytest.mark.slow
def test_allowed_roots_given_as_a_string_stops_serve_and_etc_stays_out(tmp_path):
    """`allowed_roots = "/x"` used to be read letter by letter into the roots '/' and 'x': the server
    started and indexed /etc for anyone holding the API token."""
    (tmp_path / "x").mkdir()
    config = tmp_path / "devcopilot.toml"
    config.write_text(f'[server]\nallowed_roots = "{tmp_path / "x"}"\n', encoding="utf-8")
    data, port = tmp_path / "data", free_port()
    proc = start(data, "serve", "--port", str(port), config=config)
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail("devcopilot serve started with allowed_roots given as a string")
    assert proc.returncode == 2 and "Traceback" not in err
    assert err.strip().count("\n") == 0 and "'server.allowed_roots' must be a list of folders" in err, err
    with pytest.raises(OSError):  # nothing answers: /etc cannot be indexed through it
        request(f"http://127.0.0.1:{port}/v1/knowledge/jobs", {"action": "add", "sources": ["/etc"]}, timeout=5)
    # Written as the list it must be, the roots are that folder: /etc is refused with one sentence.
    config.write_text(f'[server]\nallowed_roots = ["{tmp_path / "x"}"]\n', encoding="utf-8")
    cfg = load_config(str(config), env={}, overrides={"data_dir": str(data)})
    with ServerThread(create_app(Copilot(cfg), cfg, api_token=TOKEN)) as url:
        status, err = request(url + "/v1/knowledge/jobs", {"action": "add", "kb": "etc", "sources": ["/etc"]}, TOKEN)
        assert status == 400 and "outside the folders this server may index" in err["error"]["message"], err


# -- 4 and its class: one regular-file check for every read of the ingest -----------------------------

def make_special(kind: str, path: Path) -> None:
    """A FIFO, a UNIX socket or a character device (null's numbers) at `path`."""
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":
        here = os.getcwd()
        os.chdir(path.parent)  # a socket's path must fit in 108 bytes: bind the bare name
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.bind(path.name)  # the file stays after the socket is closed
        finally:
            os.chdir(here)
    else:
        try:
            os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(1, 3))
        except PermissionError:
            pytest.skip("making a device node needs root")


@pytest.mark.parametrize("kind", ["fifo", "socket", "device"])
def test_ignore_files_and_sources_that_are_not_regular_files_are_skipped_and_counted(tmp_path, kind):
    """A FIFO named .gitignore hung the ingest for good (the ignore file was read with a plain open);
    a socket or device named .gitignore was passed over without a word. Now every read of the walk,
    the ignore files' included, is one regular-file check: skipped and counted, the rest indexed."""
    folder = write_tree(tmp_path / "src", {"guide.md": "# Guide\n\nThe heron waits by the sluice gate.\n",
                                           "sub/.gitignore": "secret.md\n", "sub/secret.md": "# Secret\n",
                                           "sub/kept.md": "# Kept\n\nOtters hold hands.\n"})
    specials = [folder / ".gitignore", folder / "notes.md"]
    for path in specials:
        make_special(kind, path)
    result: dict = {}

    def run() -> None:
        report = WalkReport()
        result["paths"] = [f.path for f in walk(folder, report=report)]
        result["report"] = report

    walker = threading.Thread(target=run, daemon=True)
    walker.start()
    walker.join(20)
    hung = walker.is_alive()
    for path in specials if kind == "fifo" else []:
        release(path)
    walker.join(20)
    assert not hung, "the walk hung on a special file"
    assert result["paths"] == ["guide.md", "sub/kept.md"]  # the regular ignore file below still applies
    assert result["report"].skipped[NOT_REGULAR] == 2
    assert result["report"].examples[NOT_REGULAR] in (".gitignore", "notes.md")


def test_a_fifo_named_gitignore_does_not_wedge_the_servers_writer(kapi):
    """Through the server the hung read held the writer: the job stayed "running", cancel was ignored,
    every later job stayed queued."""
    folder = write_tree(kapi["allowed"] / "piped", {"guide.md": "# Piped\n\nThe heron waits by the sluice gate.\n"})
    fifo = folder / ".gitignore"
    os.mkfifo(fifo)
    try:
        status, job = submit(kapi, {"action": "add", "kb": "piped", "sources": [str(folder)]})
        assert status == 202, job
        job = finished(kapi, job, timeout=60)
        assert job["state"] == "done", job
        assert job["results"][0]["files"] == 1 and job["results"][0]["skipped"] == {NOT_REGULAR: 1}, job
        # The writer is free: a later job runs, and one asked to stop stops.
        later = write_tree(kapi["allowed"] / "later", {f"note{i}.md": f"# Note {i}\n\nBeavers build dam {i}.\n"
                                                      for i in range(300)})
        status, job = submit(kapi, {"action": "add", "kb": "later", "sources": [str(later)]})
        assert status == 202
        status, asked = request(f"{kapi['url']}/v1/knowledge/jobs/{job['id']}", token=TOKEN, method="DELETE")
        assert status == 200 and asked["cancel_requested"], asked
        assert finished(kapi, job, timeout=60)["state"] == "cancelled"
        job = finished(kapi, submit(kapi, {"action": "add", "kb": "piped", "sources": [str(folder)]})[1], timeout=60)
        assert job["state"] == "done", job
    finally:
        release(fifo)


# -- 7: pkg:NAME reaches plain folders ----------------------------------------------------------------

REFUSED_DOCS = ("'docs' is not an installed package (no distribution provides it); install it, or add its "
                "folder as a folder source.")


def test_pkg_names_installed_distributions_only(kapi, tmp_path, monkeypatch):
    """`pkg:docs` indexed the checkout's docs/ folder (a namespace package to the import system, the
    working directory being on sys.path), outside the allowed roots."""
    checkout = write_tree(tmp_path / "checkout", {"docs/secret.md": "# Secret\n\nThe vault code is 0451.\n"})
    monkeypatch.syspath_prepend(str(checkout))  # as the working directory is, run from a checkout
    status, job = submit(kapi, {"action": "add", "kb": "pkgdocs", "sources": ["pkg:docs"]})
    assert status == 202, job
    job = finished(kapi, job, timeout=60)
    assert job["state"] == "failed" and job["message"] == REFUSED_DOCS, job
    assert "pkgdocs" not in kb_names(kapi)
    # A regular package folder named like an installed distribution, ahead of it on sys.path, is not it.
    site = write_tree(tmp_path / "site", {"otterpkg/__init__.py": "", "otterpkg/raft.py": "HANDS = 2\n"})
    declare_distribution(site, "otterpkg")
    shadow = write_tree(tmp_path / "shadow", {"otterpkg/__init__.py": "VAULT = '0451'\n"})
    monkeypatch.syspath_prepend(str(site))
    assert resolve("pkg:otterpkg", kapi["cfg"].data_dir).walk_root == site / "otterpkg"
    monkeypatch.syspath_prepend(str(shadow))
    with pytest.raises(SourceError, match=r"^'otterpkg' is not an installed package \(no distribution"):
        resolve("pkg:otterpkg", kapi["cfg"].data_dir)


# -- 13: the data dir and the files the server writes are its owner's only ----------------------------

def loose_modes(data: Path) -> list[str]:
    """Every folder under `data` (itself included) that is not 0700 and every file that is not 0600."""
    loose = []
    for folder, dirs, files in os.walk(data):
        for path in [Path(folder)] + [Path(folder) / d for d in dirs] + [Path(folder) / f for f in files]:
            st = path.lstat()
            want = 0o700 if stat.S_ISDIR(st.st_mode) else 0o600
            if not stat.S_ISLNK(st.st_mode) and stat.S_IMODE(st.st_mode) != want:
                loose.append(f"{path.relative_to(data.parent)}: {oct(stat.S_IMODE(st.st_mode))}")
    return sorted(set(loose))


@pytest.mark.slow
def test_the_data_dir_and_what_the_server_writes_are_private(tmp_path):
    """conversations.sqlite, the catalog, the stores... were 0644 in a 0755 data dir: every local user
    could read every conversation. Now the data dir is 0700 (an existing one is tightened, once, said on
    stderr) and each file in it 0600."""
    project = write_tree(tmp_path / "project", SMALL_PROJECT)
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o755)  # as an older version left it
    r = devcopilot(data, "ingest", str(project), "--quiet")
    assert "0700" in r.stderr and str(data) in r.stderr, r.stderr
    with Server(data) as server:
        status, answer = server.ask("How do I build a gadget?")
        assert status == 200, answer
    assert (data / "conversations.sqlite").is_file() and (data / "catalog.sqlite").is_file()
    assert loose_modes(data) == []
    r = devcopilot(data, "status")  # already private: nothing more to say
    assert "0700" not in r.stderr, r.stderr
