"""`devcopilot serve`: UI password, API bearer token, request limit, first-run indexing."""
from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from support.corpus import SMALL_PROJECT, write_tree
from support.servers import ServerThread, free_port

from copilot.chat import Copilot
from copilot.config import load_config
from indexes.build import ingest
from indexes.search import Index
from ui.server import create_app, ensure_knowledge, security_warnings

REPO = Path(__file__).resolve().parent.parent


def get(url: str, headers: dict | None = None, data: bytes | None = None) -> tuple[int, str]:
    req = urllib.request.Request(url, headers=headers or {}, data=data, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")


def basic(user: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")
    project = write_tree(root / "project", SMALL_PROJECT)
    cfg = load_config(env={}, overrides={"data_dir": str(root / "data"), "server": {"max_request_bytes": 50_000}})
    index = Index(cfg)
    ingest(index, [str(project)], "default")
    copilot = Copilot(cfg, index=index)
    with ServerThread(create_app(copilot, cfg, auth="alice:s3cret pass", api_token="tok-123456")) as url:
        yield {"url": url, "project": project}


def test_ui_needs_the_password(secured):
    url = secured["url"]
    assert get(url + "/")[0] == 401
    assert get(url + "/", basic("alice", "wrong"))[0] == 401
    assert get(url + "/", basic("bob", "s3cret pass"))[0] == 401
    code, body = get(url + "/", basic("alice", "s3cret pass"))
    assert code == 200 and "<html" in body.lower()
    # Gradio's own endpoints and the source viewer are behind the same password.
    assert get(url + "/config")[0] == 401
    path = secured["project"] / "README.md"
    assert get(f"{url}/source?path={path}&lines=1-3")[0] == 401
    code, body = get(f"{url}/source?path={path}&lines=1-3", basic("alice", "s3cret pass"))
    assert code == 200 and "Widgets" in body


def test_source_viewer_reads_only_indexed_files(secured):
    auth = basic("alice", "s3cret pass")
    url = secured["url"]
    for path in ("/etc/passwd", f"{secured['project']}/../project/README.md", f"{secured['project']}/missing.md"):
        code, body = get(f"{url}/source?path={path}&lines=1-2", auth)
        assert code == 404 and "root:" not in body


def test_api_needs_the_bearer_token_or_a_user(secured):
    from openai import AuthenticationError, OpenAI

    base = secured["url"] + "/v1"
    with pytest.raises(AuthenticationError):
        OpenAI(base_url=base, api_key="wrong-token", max_retries=0).models.list()
    models = OpenAI(base_url=base, api_key="tok-123456", max_retries=0).models.list()
    assert {"guide", "coding"} <= {m.id.lower() for m in models.data}
    # A signed-in user may call the API too (their questions are theirs); a wrong password may not.
    assert get(base + "/models", basic("alice", "s3cret pass"))[0] == 200
    assert get(base + "/models", basic("alice", "wrong"))[0] == 401


def test_request_size_limit(secured):
    big = json.dumps({"model": "guide", "messages": [{"role": "user", "content": "x" * 60_000}]}).encode()
    code, body = get(secured["url"] + "/v1/chat/completions",
                     {"Authorization": "Bearer tok-123456", "Content-Type": "application/json"}, big)
    assert code == 413 and "larger than" in body


@pytest.mark.browser
def test_browser_behind_the_password(secured):
    from playwright.sync_api import sync_playwright

    if not Path("/usr/bin/chromium").exists():
        pytest.skip("Debian chromium is not installed")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium",
                              args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        ctx = b.new_context(http_credentials={"username": "alice", "password": "s3cret pass"})
        page = ctx.new_page()
        page.goto(secured["url"] + "/")
        page.wait_for_selector("#dc-input textarea", timeout=60_000)
        page.fill("#dc-input textarea", "@Coding what does build_gadget return?")
        page.click("#dc-send")
        page.wait_for_function("() => [...document.querySelectorAll('#dc-chat .dc-speaker')]"
                               ".some(s => s.innerText.includes('Coding'))", timeout=60_000)
        b.close()


def test_loud_warning_only_when_exposed_without_protection():
    assert security_warnings("127.0.0.1", "", "") == []
    assert security_warnings("localhost", "", "") == []
    loud = security_warnings("0.0.0.0", "", "")  # with --insecure: it starts, and says so
    assert len(loud) == 2 and all(w.startswith("WARNING") for w in loud)
    assert security_warnings("0.0.0.0", "a:b", "") == []  # the users guard every door, /v1 and /mcp too
    assert len(security_warnings("0.0.0.0", "", "t")) == 1  # the web UI has no password
    assert security_warnings("0.0.0.0", "a:b", "t") == []


def test_first_run_indexes_the_given_root_once(tmp_path):
    root = write_tree(tmp_path / "repo", {"README.md": "# Tiny\n\nThe tiny repo explains the flux capacitor.\n",
                                          "tiny/mod.py": "def flux():\n    return 88\n"})
    cfg = load_config(env={}, overrides={"data_dir": str(tmp_path / "data")})
    index = Index(cfg)
    said: list[str] = []
    assert ensure_knowledge(index, root, said.append) is True
    assert index.catalog.count_chunks("default") >= 2
    assert any("Nothing is indexed yet" in s for s in said) and any("KB 'default'" in s for s in said)
    assert index.search("flux capacitor")[0].chunk.path == "README.md"
    said.clear()
    assert ensure_knowledge(index, root, said.append) is False and said == []


@pytest.mark.slow
def test_serve_command_indexes_on_first_run_then_serves(tmp_path):
    """The real `serve` function in its own process, with a stand-in repository root."""
    root = write_tree(tmp_path / "repo", {"docs/intro.md": "# Intro\n\nThe zeppelin module lifts cargo.\n"})
    port = free_port()
    code = ("import sys; from pathlib import Path; from copilot.config import load_config; "
            "from ui.server import serve; "
            "serve(load_config(env={}, overrides={'data_dir': sys.argv[1]}), port=int(sys.argv[2]), "
            "root=Path(sys.argv[3]))")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "data"), str(port), str(root)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=REPO)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail("serve exited: " + proc.stdout.read())
            try:
                if get(f"http://127.0.0.1:{port}/healthz")[0] == 200:
                    break
            except OSError:
                time.sleep(0.3)
        else:
            pytest.fail("serve did not come up")
        code_, body = get(f"http://127.0.0.1:{port}/source?path={root}/docs/intro.md&lines=1-3")
        assert code_ == 200 and "zeppelin" in body
    finally:
        proc.terminate()
        out = proc.communicate(timeout=30)[0]
    assert "Nothing is indexed yet" in out and "KB 'default'" in out and "devcopilot is running" in out


def test_serve_refuses_a_malformed_password_in_one_sentence(tmp_path):
    r = subprocess.run([sys.executable, "-m", "devcopilot", "--data-dir", str(tmp_path / "d"), "serve", "--auth",
                        "nocolon"], capture_output=True, text=True, cwd=REPO, timeout=120,
                       env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "user:password" in r.stderr
    assert "Traceback" not in r.stderr


def test_serve_says_in_one_sentence_when_it_cannot_listen(tmp_path, capsys):
    """A port taken or out of range, an address not this machine's: said before anything slow (a first
    run's indexing), instead of a traceback, an OSError's words, or "running" followed by uvicorn's error."""
    import socket

    from ui.cli import main
    from ui.server import check_listen

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(ValueError, match=rf"^Port {port} on 127.0.0.1 is already in use .*give another with "
                                             r"--port\.$"):
            check_listen("127.0.0.1", port)
        for workers in ("1", "2"):
            assert main(["--data-dir", str(tmp_path / "d"), "serve", "--port", str(port), "--workers", workers]) == 2
            out, err = capsys.readouterr()
            assert "running" not in out and err.startswith("devcopilot: Port ") and err.count("\n") == 1
    check_listen("127.0.0.1", port)  # free again
    with pytest.raises(ValueError, match="is not an address of this machine"):
        check_listen("192.0.2.1", port)  # TEST-NET-1: never one of ours
    for bad in ("0", "65536", "99999", "http"):
        with pytest.raises(SystemExit) as stop:
            main(["--data-dir", str(tmp_path / "d"), "serve", "--port", bad])
        assert stop.value.code == 2 and f"'{bad}' is not a port" in capsys.readouterr().err


def test_browser_sources_stay_under_the_allowed_roots(tmp_path):
    from ui.knowledge import SourceRefused, check_kb, check_source

    allowed = tmp_path / "allowed"
    (allowed / "docs").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (allowed / "sneaky").symlink_to(outside)
    roots = [allowed.resolve()]
    assert check_source(str(allowed / "docs"), roots) == str((allowed / "docs").resolve())
    assert check_source("docs", roots) == str((allowed / "docs").resolve())  # relative to the first root
    assert check_source("pkg:json", roots) == "pkg:json"
    assert check_source("https://github.com/o/r.git", roots) == "https://github.com/o/r.git"
    refused = {
        str(outside): "outside the folders",
        str(allowed / "sneaky"): "outside the folders",  # a link inside pointing out
        f"file://{outside}": "outside the folders",
        f"{allowed}/docs/../../outside": "contains '..'",
        "docs\x00": "control characters",
        "pkg:os; rm -rf /": "not a package name",
        str(allowed / "missing"): "does not exist",
        "": "Give a folder path",
    }
    for spec, says in refused.items():
        with pytest.raises(SourceRefused, match=re.escape(says)):
            check_source(spec, roots)
    with pytest.raises(SourceRefused):
        check_kb("../etc")
    assert check_kb("") == "default"


def test_a_local_repository_is_under_the_allowed_roots_whatever_its_spelling(tmp_path):
    """git reads file: URLs whatever their host (file://localhost/..., file://127.0.0.1/...,
    file://anything/...) and decodes %-escapes; ssh to this machine and bundle files are local too."""
    import getpass

    from ui.knowledge import SourceRefused, check_source

    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    (allowed / "repo.git").mkdir(parents=True)
    (outside / "secret.git").mkdir(parents=True)
    (outside / "dump.git").write_bytes(b"# v2 git bundle\n")  # `git clone` reads bundle files
    roots = [allowed.resolve()]
    o = outside.as_posix()
    quoted = o.replace("/outside", "/%6futside")
    for spec in [f"file://{o}/secret.git", f"file://localhost{o}/secret.git", f"file://LOCALHOST{o}/secret.git",
                 f"file://127.0.0.1{o}/secret.git", f"file://example.com{o}/secret.git", f"FILE://{o}/secret.git",
                 f"file://{quoted}/secret.git", f"file://{allowed.as_posix()}/%2e%2e/outside/secret.git",
                 f"file:///{o}/secret.git", f"file://localhost:22{o}/secret.git",
                 f"ssh://localhost{o}/secret.git", f"ssh://{getpass.getuser()}@127.0.0.1:22{o}/secret.git",
                 f"git@localhost:{o}/secret.git", f"someone@[::1]:{o}/secret.git", f"localhost:{o}/secret.git",
                 f"{o}/dump.git"]:
        with pytest.raises(SourceRefused, match="outside the folders"):
            check_source(spec, roots)
    inside = f"file://localhost{allowed.as_posix()}/repo.git"
    assert check_source(inside, roots) == inside
    with pytest.raises(SourceRefused, match="this machine"):  # the server would fetch its own services
        check_source("https://localhost:3000/team/repo.git", roots)


@pytest.fixture
def plain_server(tmp_path):
    """A server (no password) over a freshly indexed small project, with a 50 kB request limit."""
    project = write_tree(tmp_path / "project", SMALL_PROJECT)
    cfg = load_config(env={}, overrides={"data_dir": str(tmp_path / "data"), "server": {"max_request_bytes": 50_000}})
    index = Index(cfg)
    ingest(index, [str(project)], "default")
    with ServerThread(create_app(Copilot(cfg, index=index), cfg)) as url:
        yield url, project


def test_the_viewer_shows_only_what_was_indexed(plain_server, tmp_path):
    """A file replaced after indexing (by a hard link to a file outside the source, by other text, by a
    FIFO) is not read through the viewer: the catalog's own copy of the indexed text is shown."""
    url, project = plain_server
    outside = tmp_path / "outside-secret.txt"
    outside.write_text("TOP SECRET line one\nTOP SECRET line two\n")
    readme = project / "README.md"
    readme.unlink()
    os.link(outside, readme)  # same inode: inside the source by path, outside by content
    code, body = get(f"{url}/source?path={readme}&lines=1-3")
    assert code == 200 and "TOP SECRET" not in body
    assert "Widgets is a tiny framework" in body and "changed since it was indexed" in body
    guide = project / "docs" / "guide.md"
    guide.write_text("# Guide\n\nRewritten after indexing: NEW WORDS.\n")
    code, body = get(f"{url}/source?path={guide}&lines=1-2")
    assert code == 200 and "NEW WORDS" not in body and "exponential backoff" in body
    core = project / "widgets" / "core.py"
    core.unlink()
    os.mkfifo(core)
    code, body = get(f"{url}/source?path={core}&lines=1-2")  # must not block on the FIFO
    assert code == 200 and "class MemoryStore" in body
    # Line numbers still match the citation: line 7 of the indexed core.py is the class line.
    assert re.search(r'<tr id="L7"[^>]*><td class="n"><a href="#L7">7</a></td><td><pre>class MemoryStore', body)


def test_an_unchanged_file_is_shown_from_disk(plain_server):
    url, project = plain_server
    code, body = get(f"{url}/source?path={project / 'README.md'}&lines=1-2")
    assert code == 200 and "Widgets is a tiny framework" in body and "changed since" not in body


def send_chunked(url: str, path: str, chunks, headers: dict) -> tuple[int | None, str]:
    """POST a body with Transfer-Encoding: chunked (no Content-Length); (status or None, body)."""
    import socket
    from urllib.parse import urlparse

    u = urlparse(url)
    s = socket.create_connection((u.hostname, u.port), timeout=30)
    head = f"POST {path} HTTP/1.1\r\nHost: {u.hostname}\r\nTransfer-Encoding: chunked\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    try:
        s.sendall(head.encode())
        for c in chunks:
            s.sendall(f"{len(c):x}\r\n".encode() + c + b"\r\n")
        s.sendall(b"0\r\n\r\n")
    except OSError:  # the server answered and hung up before taking it all
        pass
    data = b""
    try:
        while b"\r\n\r\n" not in data or len(data) < 200:
            part = s.recv(65536)
            if not part:
                break
            data += part
    except OSError:
        pass
    s.close()
    m = re.match(rb"HTTP/1\.1 (\d+)", data)
    return (int(m.group(1)) if m else None), data.decode("latin-1")


def test_a_chunked_upload_over_the_limit_is_refused_and_not_stored(plain_server):
    from gradio.utils import get_upload_folder

    url, _ = plain_server
    folder = Path(get_upload_folder())
    before = {p for p in folder.rglob("*")} if folder.exists() else set()
    boundary = "dcboundary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"big.md\"\r\n"
            "Content-Type: text/markdown\r\n\r\n").encode()
    body = [head] + [b"A" * 65536] * 320 + [f"\r\n--{boundary}--\r\n".encode()]  # 20 MB
    status, text = send_chunked(url, "/gradio_api/upload", body,
                                {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert status in (413, None), text[:300]
    if status == 413:
        assert "larger than 50,000 bytes" in text
    after = {p for p in folder.rglob("*")} if folder.exists() else set()
    stored = [p for p in after - before if p.is_file()]
    assert not stored, stored
    # Small chunked uploads still work, and the server is fine.
    ok, text = send_chunked(url, "/gradio_api/upload", [head, b"# Small\n\nfine\n", f"\r\n--{boundary}--\r\n".encode()],
                            {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert ok == 200, text[:300]
    assert get(url + "/healthz")[0] == 200


def test_a_chunked_api_request_over_the_limit_is_a_413(plain_server):
    url, _ = plain_server
    big = json.dumps({"model": "guide", "messages": [{"role": "user", "content": "x" * 60_000}]}).encode()
    status, text = send_chunked(url, "/v1/chat/completions", [big[i:i + 4096] for i in range(0, len(big), 4096)],
                                {"Content-Type": "application/json"})
    assert status == 413 and "larger than" in text
