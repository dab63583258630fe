"""Sources at a version: published releases (`pypi:NAME==V`, `npm:NAME@V`) fetched through the index pip or
npm is configured for, their hash checked, unpacked safely; git sources at a ref; `pkg:` with its version.

No internet: a PEP 503 index and an npm registry are served on this machine (tests/support/releases.py),
and pip and npm are pointed at them through their own environment variables.
"""
from __future__ import annotations

import hashlib
import io
import shutil
import tarfile
import zipfile

import pytest
from support.corpus import write_tree
from support.git import commit_all, git
from support.releases import NpmRegistry, PackageIndex, npm_env, pip_env

from indexes.build import ingest
from indexes.retrieve import retrieve
from indexes.search import Index
from indexes.status import knowledge_status
from ingest.releases import parse_release, release_dir, unpack
from ingest.sources import SourceError

GADGETS_1 = {
    "docs/guide.md": "# Guide\n\nWidgets are built with build_widget. The default size is 3.\n",
    "gadgets/__init__.py": "from .core import build_widget\n",
    "gadgets/core.py": 'def build_widget(size: int = 3) -> str:\n    """Build a widget."""\n    return "w" * size\n',
}


@pytest.fixture
def pypi(tmp_path, monkeypatch):
    with PackageIndex(tmp_path / "index") as index:
        for key, value in pip_env(index.url).items():
            monkeypatch.setenv(key, value)
        yield index


@pytest.fixture
def npm(tmp_path, monkeypatch):
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed")
    with NpmRegistry() as registry:
        for key, value in npm_env(registry.url, tmp_path / "npm-cache").items():
            monkeypatch.setenv(key, value)
        yield registry


def source(index: Index, kb: str = "k") -> dict:
    """The KB's first source as `status` shows it."""
    return next(k for k in knowledge_status(index)["knowledge_bases"] if k["name"] == kb)["sources"][0]


def test_a_pypi_release_is_fetched_checked_unpacked_and_indexed_once(cfg, pypi):
    archive = pypi.add("gadgets", "1.0", GADGETS_1)
    index = Index(cfg)
    summary = ingest(index, ["pypi:Gadgets==1.0"], "k")  # any spelling of the name: one release, one source
    assert summary.files == 3 and summary.changed == 3
    s = source(index)
    assert (s["spec"], s["kind"], s["library"], s["version"]) == ("pypi:gadgets==1.0", "release", "gadgets", "1.0")
    assert s["digest"] == "sha256:" + hashlib.sha256(archive.read_bytes()).hexdigest()
    assert s["origin"].startswith("pypi release 1.0 (sha256:")
    hit = retrieve(index, "how is a widget built?", ["k"], k=3).hits[0]
    assert (hit.chunk.library, hit.chunk.version) == ("gadgets", "1.0")
    folder = release_dir(cfg.data_dir, "pypi:gadgets==1.0")
    assert hit.chunk.link.startswith(str(folder / "files" / "gadgets-1.0"))  # a path into that release's folder
    # A release never changes: a re-index reads the unpacked folder and asks the index for nothing.
    asked = len(pypi.requests)
    again = ingest(index, ["pypi:gadgets==1.0"], "k")
    assert again.changed == 0 and len(pypi.requests) == asked


def test_the_sdist_is_preferred_and_a_wheel_serves_when_there_is_none(cfg, pypi):
    pypi.add("gadgets", "1.0", GADGETS_1, wheel=True)
    pypi.add("gadgets", "1.0", {**GADGETS_1, "docs/extra.md": "# Extra\n\nOnly the sdist has this page.\n"})
    pypi.add("wheelonly", "2.0", {"wheelonly/__init__.py": "def spin():\n    return 2\n"}, wheel=True)
    index = Index(cfg)
    ingest(index, ["pypi:gadgets==1.0", "pypi:wheelonly==2.0"], "k")
    paths = {c.path for c in index.catalog.get_chunks("k", list(index.catalog.chunk_ids("k"))).values()}
    assert "docs/extra.md" in paths  # from the sdist
    assert "wheelonly/__init__.py" in paths  # from the wheel, the only file there is


def test_a_version_the_index_does_not_have_is_one_sentence_and_loses_nothing(cfg, pypi):
    pypi.add("gadgets", "1.0", GADGETS_1)
    pypi.add("gadgets", "1.2", GADGETS_1)
    index = Index(cfg)
    ingest(index, ["pypi:gadgets==1.0"], "k")
    before = index.catalog.count_chunks("k")
    with pytest.raises(SourceError) as e:
        ingest(index, ["pypi:gadgets==9.9.9"], "k")
    assert str(e.value) == (f"gadgets 9.9.9 is not on the package index pip uses ({pypi.url}); the versions there "
                            "end at 1.2.")
    with pytest.raises(SourceError, match=r"^nosuchthing is not on the package index pip uses .*check the name"):
        ingest(index, ["pypi:nosuchthing==1.0"], "k")
    assert index.catalog.count_chunks("k") == before and len(index.catalog.sources("k")) == 1


def test_an_unreachable_index_is_one_sentence(cfg, monkeypatch, tmp_path):
    from support.servers import free_port

    for key, value in pip_env(f"http://127.0.0.1:{free_port()}/simple").items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SourceError, match=r"^The package index pip uses cannot be reached: .*Nothing was indexed\.$"):
        ingest(Index(cfg), ["pypi:gadgets==1.0"], "k")


@pytest.mark.parametrize("spec, says", [
    ("pypi:gadgets", "names no version; write pypi:gadgets==VERSION"),
    ("pypi:gadgets>=1.0", "names a range of versions; a release is one: write pypi:gadgets==VERSION."),
    ("pypi:gadgets~=1.0", "write pypi:gadgets==VERSION.$"),
    ("pypi:gadgets==not a version", "is not a version pip understands"),
    ("npm:zod", "names no version; write npm:zod@VERSION"),
    ("npm:zod@^3.0.0", "is not an exact version"),
])
def test_a_release_spec_without_an_exact_version_is_one_sentence(cfg, spec, says):
    with pytest.raises(SourceError, match=says.replace("^", r"\^")):
        ingest(Index(cfg), [spec], "k")


def test_an_archive_that_does_not_match_the_index_hash_is_refused(cfg, pypi):
    pypi.add("gadgets", "1.0", GADGETS_1, sha256="0" * 64)
    with pytest.raises(SourceError, match="does not have the sha256 the package index gives; nothing was indexed"):
        ingest(Index(cfg), ["pypi:gadgets==1.0"], "k")
    assert not release_dir(cfg.data_dir, "pypi:gadgets==1.0").exists()
    assert not list(release_dir(cfg.data_dir, "pypi:gadgets==1.0").parent.glob(".fetch-*"))


def _tar_with(name: str, data: bytes = b"x", kind: bytes = tarfile.REGTYPE, link: str = "") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo(name)
        info.size, info.type, info.linkname = (0 if link else len(data)), kind, link
        tar.addfile(info, None if link else io.BytesIO(data))
    return buf.getvalue()


@pytest.mark.parametrize("members", [
    {"name": "../escaped.txt"},
    {"name": "pkg/link", "kind": tarfile.SYMTYPE, "link": "/etc/passwd"},
    {"name": "pkg/link", "kind": tarfile.SYMTYPE, "link": "../../escaped.txt"},
    {"name": "pkg/dev", "kind": tarfile.CHRTYPE},
])
def test_a_tarball_with_members_outside_its_folder_is_refused(tmp_path, members):
    archive = tmp_path / "evil.tar.gz"
    archive.write_bytes(_tar_with(**members))
    with pytest.raises(SourceError, match="could not be unpacked"):
        unpack(archive, tmp_path / "out")
    assert not (tmp_path / "escaped.txt").exists()


def test_a_tarball_member_with_an_absolute_path_lands_inside_its_folder(tmp_path):
    archive = tmp_path / "abs.tar.gz"
    archive.write_bytes(_tar_with(f"{tmp_path}/absolute.txt"))
    unpack(archive, tmp_path / "out")
    assert not (tmp_path / "absolute.txt").exists()
    assert (tmp_path / "out" / str(tmp_path).lstrip("/") / "absolute.txt").is_file()


@pytest.mark.parametrize("name", ["../escaped.txt", "/abs.txt", "C:/windows.txt", "a/../../escaped.txt"])
def test_a_zip_with_members_outside_its_folder_is_refused(tmp_path, name):
    archive = tmp_path / "evil.whl"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr(name, "x")
    with pytest.raises(SourceError, match="would land outside its folder"):
        unpack(archive, tmp_path / "out" / "deep")
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "out" / "escaped.txt").exists()


TINYLIB = {"README.md": "# tinylib\n\nAdds numbers. Call add(a, b).\n",
           "src/index.ts": "export function add(a: number, b: number): number {\n  return a + b;\n}\n"}


@pytest.mark.slow
def test_an_npm_release_is_fetched_with_its_integrity_checked(cfg, npm):
    npm.add("tinylib", "1.0.0", TINYLIB)
    npm.add("tinylib", "1.1.0", TINYLIB)
    index = Index(cfg)
    ingest(index, ["npm:tinylib@1.0.0"], "k")
    s = source(index)
    assert (s["kind"], s["library"], s["version"]) == ("release", "tinylib", "1.0.0")
    assert s["digest"].startswith("sha512-") and s["origin"].startswith("npm release 1.0.0")
    hit = retrieve(index, "add two numbers", ["k"], kind="code", k=1).hits[0]
    assert hit.chunk.path == "src/index.ts" and hit.chunk.version == "1.0.0"
    with pytest.raises(SourceError) as e:
        ingest(index, ["npm:tinylib@9.9.9"], "k")
    assert str(e.value) == "tinylib 9.9.9 is not on the npm registry npm uses; the versions there end at 1.1.0."
    with pytest.raises(SourceError, match="^nosuchlib is not on the npm registry npm uses; check the name.$"):
        ingest(index, ["npm:nosuchlib@1.0.0"], "k")


@pytest.mark.slow
def test_an_npm_tarball_that_does_not_match_its_integrity_is_refused(cfg, npm):
    npm.add("tinylib", "1.0.0", TINYLIB, integrity="sha512-" + "A" * 86 + "==")
    with pytest.raises(SourceError) as e:
        ingest(Index(cfg), ["npm:tinylib@1.0.0"], "k")
    assert "tinylib" in str(e.value) and "\n" not in str(e.value)
    assert not release_dir(cfg.data_dir, "npm:tinylib@1.0.0").exists()


@pytest.fixture
def tagged_repo(tmp_path):
    """A bare repository: v1.0 and v2.0 tags on main, a `dev` branch."""
    bare = tmp_path / "gadgets.git"
    git("init", "-q", "--bare", "-b", "main", str(bare), cwd=tmp_path)
    work = tmp_path / "work"
    git("clone", "-q", str(bare), str(work), cwd=tmp_path)
    git("checkout", "-q", "-b", "main", cwd=work)
    write_tree(work, {"docs/guide.md": "# Guide\n\nWidgets are built with build_widget.\n"})
    first = commit_all(work, "one")
    git("tag", "v1.0", cwd=work)
    write_tree(work, {"docs/guide.md": "# Guide\n\nWidgets are made with make_widget.\n"})
    second = commit_all(work, "two")
    git("tag", "v2.0", cwd=work)
    git("push", "-q", "origin", "main", "--tags", cwd=work)
    return bare, work, first, second


def test_a_git_source_at_a_tag_records_its_commit_and_never_moves(cfg, tagged_repo):
    bare, work, first, second = tagged_repo
    url = f"file://{bare.as_posix()}"
    index = Index(cfg)
    ingest(index, [f"{url}#v1.0", f"{url}#v2.0"], "k")
    rows = {s["spec"]: s for s in knowledge_status(index)["knowledge_bases"][0]["sources"]}
    assert rows[f"{url}#v1.0"]["version"] == "v1.0" and rows[f"{url}#v1.0"]["commit"] == first
    assert rows[f"{url}#v2.0"]["version"] == "v2.0" and rows[f"{url}#v2.0"]["commit"] == second
    assert rows[f"{url}#v1.0"]["library"] == "gadgets" and rows[f"{url}#v1.0"]["origin"] == \
        f"git {first[:12]} (tag v1.0)"
    # The tag is moved on the server: a source at a tag is not fetched again.
    git("tag", "-f", "v1.0", second, cwd=work)
    git("push", "-q", "-f", "origin", "v1.0", cwd=work)
    ingest(index, [f"{url}#v1.0"], "k")
    assert {s["spec"]: s for s in index.catalog.sources("k")}[f"{url}#v1.0"]["commit"] == first


def test_a_git_source_at_a_branch_moves_and_at_a_commit_does_not(cfg, tagged_repo):
    bare, work, first, second = tagged_repo
    url = f"file://{bare.as_posix()}"
    git("checkout", "-q", "-b", "dev", cwd=work)
    write_tree(work, {"docs/dev.md": "# Dev\n\nThe dev branch holds sprockets.\n"})
    dev1 = commit_all(work, "dev one")
    git("push", "-q", "origin", "dev", cwd=work)
    index = Index(cfg)
    ingest(index, [f"{url}#dev", f"{url}#{first}"], "k")
    write_tree(work, {"docs/dev.md": "# Dev\n\nThe dev branch holds flywheels now.\n"})
    dev2 = commit_all(work, "dev two")
    git("push", "-q", "origin", "dev", cwd=work)
    ingest(index, [f"{url}#dev", f"{url}#{first}"], "k")
    rows = {s["spec"]: s for s in index.catalog.sources("k")}
    assert rows[f"{url}#dev"]["commit"] == dev2 != dev1 and rows[f"{url}#dev"]["ref"] == "branch dev"
    assert rows[f"{url}#{first}"]["commit"] == first and rows[f"{url}#{first}"]["version"] == first[:12]


def test_a_ref_that_does_not_exist_is_one_sentence(cfg, tagged_repo):
    bare, *_ = tagged_repo
    with pytest.raises(SourceError, match=r"^Could not clone 'file://.*' \(.*\); check the URL and your access\.$"):
        ingest(Index(cfg), [f"file://{bare.as_posix()}#v9.9"], "k")
    with pytest.raises(SourceError, match="is not a tag, branch or commit name this copilot accepts"):
        ingest(Index(cfg), [f"file://{bare.as_posix()}#--upload-pack=evil"], "k")


def test_the_cli_ingests_at_a_ref_and_refuses_a_ref_without_a_git_url(tmp_path, tagged_repo):
    from ui.cli import main

    bare, _, first, _ = tagged_repo
    data = tmp_path / "data"
    assert main(["--data-dir", str(data), "ingest", f"file://{bare.as_posix()}", "--ref", "v1.0", "--kb", "k",
                 "--quiet"]) == 0
    index = Index(cfg_for(data))
    assert index.catalog.sources("k")[0]["commit"] == first
    assert main(["--data-dir", str(data), "ingest", str(tmp_path), "--ref", "v1.0", "--quiet"]) == 2


def cfg_for(data):
    from copilot.config import load_config

    return load_config(env={}, overrides={"data_dir": str(data)})


def test_the_knowledge_api_takes_a_ref_for_git_urls():
    from ui.edge import HTTPError
    from ui.knowledge_api import JobRequest

    req = JobRequest.parse(b'{"action": "add", "kb": "k", "sources": ["https://github.com/o/r.git"], "ref": "v1.2"}',
                           local=True, roots=[])
    assert req.sources == ["https://github.com/o/r.git#v1.2"]
    for body in (b'{"action": "add", "kb": "k", "sources": ["pypi:gadgets==1.0"], "ref": "v1"}',
                 b'{"action": "add", "kb": "k", "sources": ["https://github.com/o/r.git"], "ref": "-x"}',
                 b'{"action": "reindex", "kb": "k", "ref": "v1"}'):
        with pytest.raises(HTTPError) as e:
            JobRequest.parse(body, local=True, roots=[])
        assert e.value.status == 400 and "'ref'" in e.value.message


def test_an_installed_package_records_its_distribution_and_version(cfg, tmp_path, monkeypatch):
    site = write_tree(tmp_path / "site", {
        "tinypkg/__init__.py": "def spin():\n    return 1\n",
        "tiny_pkg-2.1.dist-info/METADATA": "Metadata-Version: 2.1\nName: tiny-pkg\nVersion: 2.1\n",
        "tiny_pkg-2.1.dist-info/RECORD": "tinypkg/__init__.py,,\n",
        "tiny_pkg-2.1.dist-info/top_level.txt": "tinypkg\n"})
    monkeypatch.syspath_prepend(str(site))
    index = Index(cfg)
    ingest(index, ["pkg:tinypkg"], "k")
    s = index.catalog.sources("k")[0]
    assert (s["kind"], s["library"], s["version"]) == ("package", "tiny-pkg", "2.1")


def test_release_specs_are_spelled_one_way():
    assert parse_release("pypi:Openai_Agents==0.24").spec == "pypi:openai-agents==0.24"
    assert parse_release("npm:@scope/pkg@1.2.3").spec == "npm:@scope/pkg@1.2.3"
