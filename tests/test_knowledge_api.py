"""The Knowledge API (/v1/knowledge): add a source to a KB, re-index a KB or every KB, follow the job,
behind the API token (or the UI password), with the Knowledge tab's allowed-roots rules."""
from __future__ import annotations

import base64
import json
import os
import subprocess
import time

import pytest
from support.corpus import SMALL_PROJECT, write_tree
from support.live import request
from support.packages import declare_distribution
from support.servers import ServerThread

from copilot.chat import Copilot
from copilot.config import load_config
from indexes.build import ingest
from indexes.search import Index
from ui.server import create_app

TOKEN = "ci-token-123456"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("kapi")
    allowed, outside = root / "allowed", root / "outside"
    project = write_tree(allowed / "project", SMALL_PROJECT)
    write_tree(allowed / "more", {"otters.md": "# Otters\n\nSea otters hold hands while they sleep.\n"})
    write_tree(outside / "secret", {"secret.md": "# Secret\n\nThe vault code is 0451.\n"})
    bare = outside / "secret.git"
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main"]
    subprocess.run([*git, "init", "-q", str(outside / "secret")], check=True)
    subprocess.run([*git, "-C", str(outside / "secret"), "add", "-A"], check=True)
    subprocess.run([*git, "-C", str(outside / "secret"), "commit", "-qm", "secret"], check=True)
    subprocess.run([*git, "clone", "-q", "--bare", str(outside / "secret"), str(bare)], check=True)
    cfg = load_config(env={}, overrides={"data_dir": str(root / "data"),
                                         "server": {"allowed_roots": [str(allowed)]}})
    index = Index(cfg)
    ingest(index, [str(project)], "default")
    copilot = Copilot(cfg, index=index)
    with ServerThread(create_app(copilot, cfg, api_token=TOKEN)) as url:
        yield {"url": url, "root": root, "allowed": allowed, "outside": outside, "bare": bare, "cfg": cfg,
               "index": index}


def submit(site, body, token=TOKEN):
    return request(site["url"] + "/v1/knowledge/jobs", body, token)


def finished(site, job: dict, token=TOKEN, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while job["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        status, job = request(f"{site['url']}/v1/knowledge/jobs/{job['id']}?wait=5", token=token)
        assert status == 200
    return job


def test_add_a_source_then_poll_the_job_until_the_chat_cites_it(site):
    status, job = submit(site, {"action": "add", "kb": "default", "sources": [str(site["allowed"] / "more")]})
    assert status == 202 and job["id"].startswith("job-") and job["state"] in ("queued", "running")
    job = finished(site, job)
    assert job["state"] == "done" and job["results"][0]["changed"] == 1, job
    assert "KB 'default'" in job["message"] and job["by"] == "api"
    # The figures a progress bar draws (the Knowledge tab's): files found, chunks embedded of the estimate.
    result = job["results"][0]
    assert job["files"] == result["files"] == 1 and not result["cancelled"] and result["done_files"] == 1
    assert job["chunks_done"] == job["chunks_total"] == result["chunks_written"] > 0
    question = {"role": "user", "content": "Do sea otters hold hands?"}
    status, answer = request(site["url"] + "/v1/chat/completions", {"model": "tutoring", "messages": [question]}, TOKEN)
    assert status == 200 and any(s["path"] == "otters.md" for s in answer["sources"])


def test_reindex_one_kb_and_every_kb(site):
    job = finished(site, submit(site, {"action": "add", "kb": "second", "sources": [str(site["allowed"] / "more")]})[1])
    assert job["state"] == "done"
    status, job = submit(site, {"action": "reindex", "kb": "second"})
    job = finished(site, job)
    assert status == 202 and job["state"] == "done" and [r["kb"] for r in job["results"]] == ["second"]
    assert job["results"][0]["changed"] == 0  # nothing changed: nothing re-embedded
    job = finished(site, submit(site, {"action": "reindex"})[1])
    assert job["state"] == "done" and {r["kb"] for r in job["results"]} == {"default", "second"}
    status, known = request(site["url"] + "/v1/knowledge", token=TOKEN)
    assert status == 200 and {k["name"] for k in known["knowledge_bases"]} == {"default", "second"}
    src = next(k for k in known["knowledge_bases"] if k["name"] == "second")["sources"][0]
    assert src["origin"].startswith("folder scanned") and src["last_indexed"] and src["state"] == ""


def test_the_token_is_required(site):
    body = {"action": "reindex", "kb": "default"}
    for token in ("", "wrong-token"):
        status, err = submit(site, body, token)
        assert status == 401 and "Bearer" in err["error"]["message"]
    assert request(site["url"] + "/v1/knowledge", token="wrong")[0] == 401
    assert request(site["url"] + "/v1/knowledge/jobs", token="")[0] == 401


@pytest.mark.parametrize("spelling", ["{o}/secret", "file://{o}/secret.git", "file://localhost{o}/secret.git",
                                      "file://127.0.0.1{o}/secret.git", "file://{a}/%2e%2e/outside/secret.git",
                                      "ssh://localhost{o}/secret.git"])
def test_sources_outside_the_allowed_roots_are_refused_whatever_their_spelling(site, spelling):
    spec = spelling.format(o=site["outside"].as_posix(), a=site["allowed"].as_posix())
    status, err = submit(site, {"action": "add", "kb": "leak", "sources": [spec]})
    assert status == 400 and "outside the folders" in err["error"]["message"], err
    assert not (site["cfg"].data_dir / "sources").exists() or not any((site["cfg"].data_dir / "sources").iterdir())
    status, known = request(site["url"] + "/v1/knowledge", token=TOKEN)
    assert "leak" not in {k["name"] for k in known["knowledge_bases"]}


def test_a_package_named_with_a_dot_is_not_run_by_the_server(site, tmp_path, monkeypatch):
    marker = tmp_path / "ran"
    pkgs = write_tree(tmp_path / "site", {"trapdoor2/__init__.py": f"open({str(marker)!r}, 'w').write('ran')\n",
                                          "trapdoor2/sub/engine.py": "def crank():\n    return 1\n"})
    declare_distribution(pkgs, "trapdoor2")
    monkeypatch.syspath_prepend(str(pkgs))
    job = finished(site, submit(site, {"action": "add", "kb": "pkgs", "sources": ["pkg:trapdoor2.sub"]})[1])
    assert job["state"] == "done" and job["results"][0]["files"] == 1, job
    assert not marker.exists()
    # Once the package is gone, a re-index of every KB says so and still syncs the others.
    monkeypatch.undo()
    job = finished(site, submit(site, {"action": "reindex"})[1])
    assert job["state"] == "failed" and "'pkgs': No installed Python package named 'trapdoor2.sub'" in job["message"]
    assert {r["kb"] for r in job["results"]} >= {"default"}
    assert finished(site, submit(site, {"action": "forget", "kb": "pkgs"})[1])["state"] == "done"


def test_malformed_jobs_get_one_sentence(site):
    cases = [({"action": "explode"}, 400, "'action' must be"),
             ({"action": "add", "kb": "../etc", "sources": ["x"]}, 400, "not a usable knowledge base name"),
             ({"action": "add", "kb": "default"}, 400, "Give the 'sources'"),
             ({"action": "add", "sources": "pkg:json", "include": "*.py"}, 400, "'include' must be a list"),
             ({"action": "reindex", "kb": "default", "wait": "no"}, 400, "'wait' must be true or false"),
             ([1, 2], 400, "must be a JSON object")]
    for body, code, says in cases:
        status, err = submit(site, body)
        assert status == code and says in err["error"]["message"], (body, err)
    status, err = request(site["url"] + "/v1/knowledge/jobs/job-nope", token=TOKEN)
    assert status == 404
    status, err = request(site["url"] + "/v1/knowledge/jobs/job-nope", token=TOKEN, method="DELETE")
    assert status == 404


def test_a_form_post_from_another_site_is_refused(site):
    """A web page can post a form (text/plain, urlencoded) to a loopback server without a preflight."""
    import urllib.error
    import urllib.request

    req = urllib.request.Request(site["url"] + "/v1/knowledge/jobs", method="POST",
                                 data=b'{"action": "reindex"}', headers={"Content-Type": "text/plain",
                                                                         "Authorization": f"Bearer {TOKEN}"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=30)
    assert e.value.code == 415


def test_the_documented_curl_lines_work(site):
    """The lines docs/live-reindex.md gives a CI job, run with the real curl."""
    base = site["url"]
    out = subprocess.run(["curl", "-fsS", "-X", "POST", f"{base}/v1/knowledge/jobs",
                          "-H", f"Authorization: Bearer {TOKEN}", "-H", "Content-Type: application/json",
                          "-d", '{"action": "reindex", "kb": "default"}'],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    job = json.loads(out)
    out = subprocess.run(["curl", "-fsS", f"{base}/v1/knowledge/jobs/{job['id']}?wait=60",
                          "-H", f"Authorization: Bearer {TOKEN}"],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    assert json.loads(out)["state"] == "done"


def test_without_a_token_the_ui_password_guards_it(tmp_path):
    project = write_tree(tmp_path / "project", SMALL_PROJECT)
    cfg = load_config(env={}, overrides={"data_dir": str(tmp_path / "data"),
                                         "server": {"allowed_roots": [str(tmp_path)]}})
    index = Index(cfg)
    ingest(index, [str(project)], "default")
    with ServerThread(create_app(Copilot(cfg, index=index), cfg, auth="ann:pw-1234")) as url:
        status, _ = request(url + "/v1/knowledge")
        assert status == 401
        import urllib.request

        basic = base64.b64encode(b"ann:pw-1234").decode()
        req = urllib.request.Request(url + "/v1/knowledge", headers={"Authorization": f"Basic {basic}"})
        with urllib.request.urlopen(req, timeout=30) as r:
            assert r.status == 200 and json.loads(r.read())["knowledge_bases"][0]["name"] == "default"


def test_cancel_a_queued_job_and_no_wait_when_busy(site):
    jobs = []
    for _ in range(3):
        jobs.append(submit(site, {"action": "reindex"})[1])
    status, busy = submit(site, {"action": "reindex", "kb": "default", "wait": False})
    assert status == 409 and "try again" in busy["error"]["message"]
    status, cancelled = request(f"{site['url']}/v1/knowledge/jobs/{jobs[-1]['id']}", token=TOKEN, method="DELETE")
    assert status == 200
    last = finished(site, cancelled)
    assert last["state"] == "cancelled"
    for job in jobs[:-1]:
        assert finished(site, job)["state"] == "done"
    assert os.path.isdir(site["cfg"].data_dir)
