"""Source specs: a folder, `pkg:NAME`, and a git URL cloned (then fetched) with the real `git`."""
from __future__ import annotations

from pathlib import Path

import pytest
from support.corpus import write_tree
from support.git import commit_all, git
from support.packages import declare_distribution

from indexes.build import ingest
from indexes.search import Index
from ingest.sources import SourceError, clone_dir, resolve, web_base_for


@pytest.fixture
def bare_repo(tmp_path):
    """A bare repository with one commit, and a working clone to push more commits from."""
    bare = tmp_path / "remote" / "widgets.git"
    bare.mkdir(parents=True)
    git("init", "-q", "--bare", "-b", "main", str(bare), cwd=tmp_path)
    work = tmp_path / "work"
    git("clone", "-q", str(bare), str(work), cwd=tmp_path)
    git("checkout", "-q", "-b", "main", cwd=work)
    write_tree(work, {
        "README.md": "# Widgets\n\nWidgets build gadgets out of sprockets.\n",
        "widgets/core.py": "def build_gadget(name):\n    \"\"\"Build a gadget.\"\"\"\n    return name\n",
    })
    commit_all(work, "first")
    git("push", "-q", "origin", "main", cwd=work)
    return bare, work


def test_folder_source(project, cfg):
    src = resolve(str(project), cfg.data_dir)
    assert src.kind == "folder" and src.root == project.resolve() and src.walk_root == src.root
    assert src.link("docs/guide.md", 3, 5) == f"{project.resolve().as_posix()}/docs/guide.md#L3-L5"
    # the same folder written differently is the same source
    assert resolve(str(project) + "/", cfg.data_dir).id == resolve(str(project / "docs" / ".."), cfg.data_dir).id


def test_installed_package_source(cfg):
    import pathspec

    src = resolve("pkg:pathspec", cfg.data_dir)
    pkg_dir = Path(pathspec.__file__).parent
    assert src.kind == "package" and src.walk_root == pkg_dir and src.root == pkg_dir.parent
    assert src.version == pathspec.__version__
    with pytest.raises(SourceError, match="No installed Python package named 'no-such-pkg-xyz'"):
        resolve("pkg:no-such-pkg-xyz", cfg.data_dir)


def test_package_specs_are_resolved_without_running_the_package(tmp_path, cfg, monkeypatch):
    """`pkg:NAME.sub` used to import NAME (running its __init__) to find the subpackage."""
    marker = tmp_path / "ran"
    site = write_tree(tmp_path / "site", {
        "trapdoor/__init__.py": f"open({str(marker)!r}, 'w').write('imported')\n",
        "trapdoor/sub/__init__.py": f"open({str(marker)!r}, 'w').write('imported sub')\n",
        "trapdoor/sub/engine.py": "def crank():\n    return 1\n",
        "trapdoor/single.py": "X = 1\n",
        "trapns/part/mod.py": "Y = 2\n",  # a namespace package: no __init__.py
    })
    declare_distribution(site, "trapdoor")  # pkg: names what a distribution installed
    monkeypatch.syspath_prepend(str(site))
    for spec, walk_root in [("pkg:trapdoor", site / "trapdoor"), ("pkg:trapdoor.sub", site / "trapdoor" / "sub"),
                            ("pkg:trapdoor.single", site / "trapdoor" / "single.py"),
                            ("pkg:trapns.part", site / "trapns" / "part")]:
        src = resolve(spec, cfg.data_dir)
        # Paths are import paths (trapdoor/sub/engine.py): relative to the folder on sys.path.
        assert src.kind == "package" and src.walk_root == walk_root and src.root == site, spec
    assert not marker.exists(), marker.read_text()
    summary = ingest(Index(cfg), ["pkg:trapdoor.sub"], kb="trap")
    assert summary.files == 2 and not marker.exists()
    for missing in ("pkg:trapdoor.nothing", "pkg:trapdoor.single.deeper", "pkg:no_such_top.sub"):
        with pytest.raises(SourceError, match="No installed Python package named"):
            resolve(missing, cfg.data_dir)
    assert not marker.exists()


def test_installed_package_ingested_with_paths_from_site_packages(cfg):
    index = Index(cfg)
    summary = ingest(index, ["pkg:pathspec"], kb="pkgs", include=["pathspec/gitignore.py", "__init__.py"])
    assert summary.files >= 2 and summary.total_chunks > summary.files
    hits = index.search("GitIgnoreSpec from_lines", kb="pkgs", k=5, kind="code")
    assert hits and all(h.chunk.path.startswith("pathspec/") for h in hits)
    assert not any(h.chunk.path.startswith(("pathspec-", "../")) for h in hits)


def test_forget_removes_a_clone_no_kb_still_uses(bare_repo, cfg):
    from indexes.build import forget

    bare, _ = bare_repo
    url = f"file://{bare}"
    index = Index(cfg)
    ingest(index, [url], kb="one")
    ingest(index, [url], kb="two")
    clone = clone_dir(cfg.data_dir, url)
    forget(index, url, "one")
    assert clone.is_dir()  # KB 'two' still indexes it
    forget(index, None, "two")
    assert not clone.exists()
    assert index.catalog.kb("one") is not None and not index.catalog.sources("one")


def test_git_url_cloned_then_fetched_on_reingest(bare_repo, cfg):
    bare, work = bare_repo
    url = f"file://{bare}"
    # what a clone killed half-way leaves behind: a temporary folder beside the clone
    dest = clone_dir(cfg.data_dir, url)
    half = dest.parent / f".clone-{dest.name}-killed"
    (half / "t" / ".git").mkdir(parents=True)
    index = Index(cfg)
    first = ingest(index, [url], kb="git")
    assert first.files == 2 and first.total_chunks >= 2
    clone = resolve(url, cfg.data_dir, fetch=False).root
    assert clone == dest and not half.exists()
    assert [p.name for p in dest.parent.iterdir()] == [dest.name]
    assert (clone / ".git" / "shallow").exists()  # shallow clone
    assert clone.is_relative_to(cfg.data_dir)
    hits = index.search("sprockets", kb="git", k=3)
    assert hits[0].chunk.path == "README.md"

    # a new commit upstream: the next ingest fetches it and indexes only what changed
    write_tree(work, {"widgets/extra.py": "def polish_sprocket(s):\n    \"\"\"Make it shine.\"\"\"\n    return s\n"})
    (work / "README.md").write_text("# Widgets\n\nWidgets build gadgets out of cogwheels.\n")
    head = commit_all(work, "second")
    git("push", "-q", "origin", "main", cwd=work)
    second = ingest(index, [url], kb="git")
    assert second.changed == 2 and second.files == 3
    assert resolve(url, cfg.data_dir, fetch=False).version == head[:12]
    assert (clone / "widgets" / "extra.py").exists()
    hits = index.search("polish_sprocket", kb="git", k=3)
    assert hits[0].chunk.symbol == "polish_sprocket" and hits[0].chunk.path == "widgets/extra.py"
    readme = index.catalog.file_chunks("git", "README.md")
    assert len(readme) == 1 and "cogwheels" in readme[0].text


def test_github_links_from_the_remote_of_a_checkout(tmp_path, cfg):
    app = "def run():\n    return 1\n\n\ndef stop():\n    return 0\n"
    work = write_tree(tmp_path / "checkout", {"src/app.py": app})
    git("init", "-q", "-b", "main", cwd=work)
    git("remote", "add", "origin", "git@github.com:acme/widgets.git", cwd=work)
    head = commit_all(work, "first")
    src = resolve(str(work), cfg.data_dir)
    assert src.host == "github"
    assert src.link("src/app.py", 5, 6) == f"https://github.com/acme/widgets/blob/{head}/src/app.py#L5-L6"
    index = Index(cfg)
    ingest(index, [str(work)], kb="gh")
    for c in index.catalog.file_chunks("gh", "src/app.py"):
        assert c.link == f"https://github.com/acme/widgets/blob/{head}/src/app.py#L{c.start_line}-L{c.end_line}"


@pytest.mark.parametrize("remote, base", [
    ("https://github.com/acme/widgets.git", "https://github.com/acme/widgets/blob/C"),
    ("https://github.com/acme/widgets", "https://github.com/acme/widgets/blob/C"),
    ("https://token@github.com/acme/widgets.git", "https://github.com/acme/widgets/blob/C"),
    ("ssh://git@github.com/acme/widgets.git", "https://github.com/acme/widgets/blob/C"),
    ("git@gitlab.com:acme/group/widgets.git", "https://gitlab.com/acme/group/widgets/-/blob/C"),
    ("https://example.org/acme/widgets.git", ""),
    ("file:///srv/git/widgets.git", ""),
])
def test_web_base_for_remotes(remote, base):
    assert web_base_for(remote, "C")[0] == base


def test_unreachable_git_url_is_one_sentence(tmp_path, cfg):
    url = f"file://{tmp_path}/nowhere/repo.git"
    with pytest.raises(SourceError) as e:
        resolve(url, cfg.data_dir)
    msg = str(e.value)
    assert msg.startswith(f"Could not clone '{url}'") and "\n" not in msg and msg.endswith(".")
    assert not list((cfg.data_dir / "sources").glob("*/*")) if (cfg.data_dir / "sources").exists() else True


@pytest.mark.parametrize("url", [
    "https://example.com/repo.git;touch${IFS}pwned",
    "https://example.com/a repo.git",
    "https://example.com/repo.git|id",
    "https://example.com/$(id).git",
    "ssh://-oProxyCommand=touch%20pwned/x.git",
    "git@-oProxyCommand=x:repo.git",
    "-uhttps://example.com/repo.git",
])
def test_dangerous_git_urls_refused_before_git_runs(url, tmp_path, cfg, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SourceError) as e:
        resolve(url, cfg.data_dir)
    msg = str(e.value)
    assert "\n" not in msg and msg.endswith(".")
    assert not (tmp_path / "pwned").exists()
    assert not (cfg.data_dir / "sources").exists()  # nothing cloned, nothing half-made


def test_option_like_specs_never_reach_git(tmp_path, cfg, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for spec in ("--upload-pack=touch pwned", "-c", "--help"):
        with pytest.raises(SourceError, match="does not exist"):
            resolve(spec, cfg.data_dir)
    assert not (tmp_path / "pwned").exists()


def test_missing_folder_and_file_given_as_source(tmp_path, cfg):
    with pytest.raises(SourceError, match="does not exist"):
        resolve(str(tmp_path / "nope"), cfg.data_dir)
    f = write_tree(tmp_path, {"one.md": "# One\n"}) / "one.md"
    with pytest.raises(SourceError, match="is a file, not a folder"):
        resolve(str(f), cfg.data_dir)


@pytest.mark.parametrize("files, library, version", [
    ({"PKG-INFO": "Metadata-Version: 2.1\nName: Shop_Tools\nVersion: 1.18.2\nSummary: x\n",
      "pyproject.toml": '[project]\nname = "other"\nversion = "9"\n'}, "shop-tools", "1.18.2"),  # an sdist's own
    ({"pyproject.toml": '[project]\nname = "shop"\ndynamic = ["version"]\n'}, "shop", ""),
    ({"pyproject.toml": '[tool.poetry]\nname = "shop"\nversion = "0.3.0"\n'}, "shop", "0.3.0"),
    ({"package.json": '{"name": "@acme/shop", "version": "2.0.1"}'}, "@acme/shop", "2.0.1"),
    ({"Cargo.toml": '[package]\nname = "shop"\nversion.workspace = true\n'}, "shop", ""),
    ({"pyproject.toml": "[project\nname = ", "package.json": "{not json"}, "shop-1.2", ""),  # unreadable: the folder
    ({"README.md": "# Shop\n"}, "shop-1.2", ""),
])
def test_a_folder_is_named_by_the_project_it_holds(tmp_path, cfg, files, library, version):
    folder = write_tree(tmp_path / "shop-1.2", files)
    src = resolve(str(folder), cfg.data_dir)
    assert (src.library, src.version) == (library, version)


def test_a_checkout_keeps_its_commit_as_its_version(tmp_path, cfg):
    work = write_tree(tmp_path / "checkout", {"pyproject.toml": '[project]\nname = "shop"\nversion = "1.0"\n'})
    git("init", "-q", "-b", "main", cwd=work)
    head = commit_all(work, "first")
    src = resolve(str(work), cfg.data_dir)
    assert (src.library, src.version) == ("shop", head[:12])
