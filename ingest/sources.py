"""Source specs: a folder, a git URL, or `pkg:NAME` (an installed Python package's source).

Resolving a spec gives a folder on disk, the root paths are relative to, and how to link
to a line (a web URL with a line anchor for known git hosts, else a file path).
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path


class SourceError(ValueError):
    """A source the user gave that cannot be used; the message is one clear sentence."""


GIT_URL = re.compile(r"^(https?://|git://|ssh://|file://|git@[\w.-]+:)")
SAFE_GIT_URL = re.compile(r"^[A-Za-z0-9@:/._~%+=-]+$")


@dataclass
class ResolvedSource:
    spec: str  # as the user gave it, normalised
    kind: str  # folder | git | package
    root: Path  # paths are relative to this
    walk_root: Path  # where to look for files (a package's own folder inside site-packages)
    web_base: str = ""  # e.g. https://github.com/o/r/blob/<commit>
    host: str = ""  # github | gitlab | ""
    version: str = ""  # commit or package version
    files: list | None = None  # the SourceFiles themselves, for sources with no folder (LlamaIndex documents)
    skipped: dict = field(default_factory=dict)  # what opening it skipped, and why (a website's pages)

    @property
    def id(self) -> str:
        return hashlib.sha256(self.spec.encode()).hexdigest()[:12]

    def link(self, path: str, start: int, end: int) -> str:
        if self.web_base:
            if self.host == "gitlab":
                return f"{self.web_base}/{path}#L{start}-{end}"
            return f"{self.web_base}/{path}#L{start}-L{end}"
        return f"{(self.root / path).as_posix()}#L{start}-L{end}"


# http(s) URLs on these hosts are repositories; on other hosts only when a path segment ends in .git.
GIT_HOSTS = ("github.com", "gitlab.com", "bitbucket.org", "codeberg.org")
HTTP_URL = re.compile(r"^https?://", re.IGNORECASE)


def is_git_url(spec: str) -> bool:
    """A URL git clones: ssh, git, file and scp-like URLs, and http(s) URLs of a repository (ending in
    .git, or on a known git host). Any other http(s) URL is a docs website (ingest/website.py)."""
    if HTTP_URL.match(spec):
        host = re.sub(r"^https?://(?:[^@/]+@)?", "", spec, flags=re.IGNORECASE).split("/")[0].split(":")[0].lower()
        return host in GIT_HOSTS or re.search(r"\.git(?![\w-])", spec) is not None
    return bool(GIT_URL.match(spec)) or (spec.endswith(".git") and not Path(spec).is_dir())


def is_website_url(spec: str) -> bool:
    """An http(s) URL that is not a git repository: a docs site root, an llms.txt or a sitemap."""
    return bool(HTTP_URL.match(spec.strip())) and not is_git_url(spec.strip())


def normalize_spec(spec: str) -> str:
    spec = spec.strip()
    if spec.startswith(("pkg:", "llamaindex:", "documents:")) or is_git_url(spec) or is_website_url(spec):
        return spec.rstrip("/")
    try:
        return str(Path(spec).expanduser().resolve())
    except (RuntimeError, OSError):  # a symbolic link loop
        raise SourceError(f"Source path '{spec}' is a symbolic link that loops; give the real folder.") from None


def _git(args: list[str], cwd: Path | None, timeout: int) -> subprocess.CompletedProcess:
    # Never through a shell; prompts off so a private URL fails instead of hanging.
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true"}
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def web_base_for(remote: str, commit: str) -> tuple[str, str]:
    """Blob URL prefix for GitHub/GitLab remotes (https or ssh form), else ('', '')."""
    m = re.match(r"^(?:https?://(?:[^@/]+@)?|ssh://git@|git@)(github\.com|gitlab\.com)[:/]([^\s]+?)(?:\.git)?/?$",
                 remote)
    if not m or not commit:
        return "", ""
    host, repo = m.group(1), m.group(2)
    if host == "gitlab.com":
        return f"https://gitlab.com/{repo}/-/blob/{commit}", "gitlab"
    return f"https://github.com/{repo}/blob/{commit}", "github"


def _git_info(folder: Path, timeout: int = 20) -> tuple[str, str]:
    """(remote URL, HEAD commit) of a git working tree, or ('', '')."""
    if not (folder / ".git").exists():
        return "", ""
    try:
        remote = _git(["remote", "get-url", "origin"], folder, timeout).stdout.strip()
        commit = _git(["rev-parse", "HEAD"], folder, timeout).stdout.strip()
        return remote, commit
    except (OSError, subprocess.SubprocessError):
        return "", ""


def clone_dir(data_dir: Path, url: str) -> Path:
    name = re.sub(r"[^A-Za-z0-9]+", "-", url.rsplit("/", 1)[-1].removesuffix(".git")).strip("-")[:40] or "repo"
    return data_dir / "sources" / f"{name}-{hashlib.sha256(url.encode()).hexdigest()[:10]}"


def sync_git(url: str, data_dir: Path, timeout: int = 300) -> Path:
    """Shallow-clone the URL (or fetch it when cloned before); returns the working tree."""
    # A host or user part starting with '-' would reach ssh as an option.
    if url.startswith("-") or not SAFE_GIT_URL.match(url) or re.search(r"(://|@)-", url):
        raise SourceError(f"'{url}' is not a git URL this copilot accepts; give a plain https://, ssh:// "
                          "or file:// URL without spaces or shell characters.")
    dest = clone_dir(data_dir, url)
    try:
        if (dest / ".git").exists():
            r = _git(["fetch", "--depth", "1", "--quiet", "origin"], dest, timeout)
            if r.returncode == 0:
                r = _git(["reset", "--hard", "--quiet", "FETCH_HEAD"], dest, timeout)
            if r.returncode != 0:
                raise SourceError(f"Could not update '{url}' ({_first_line(r.stderr)}); check that it is "
                                  "reachable, or `devcopilot forget` it.")
            return dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        # Clone into a temporary folder and rename, so a killed clone leaves nothing half-made;
        # what a killed clone of this URL left is cleared first.
        for stale in dest.parent.glob(f".clone-{dest.name}-*"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".clone-{dest.name}-", dir=dest.parent))
        r = _git(["clone", "--depth", "1", "--quiet", "--", url, str(tmp / "t")], None, timeout)
        if r.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            raise SourceError(f"Could not clone '{url}' ({_first_line(r.stderr)}); check the URL and your access.")
        os.replace(tmp / "t", dest)
        shutil.rmtree(tmp, ignore_errors=True)
        return dest
    except subprocess.TimeoutExpired:
        raise SourceError(f"Cloning '{url}' took longer than {timeout} s; check the URL or raise "
                          "ingest.git_timeout_s.") from None
    except FileNotFoundError:
        raise SourceError("The `git` command is not installed; install git to ingest git URLs.") from None


def _first_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return (lines[-1] if lines else "no detail")[:200]


def resolve(spec: str, data_dir: Path, git_timeout: int = 300, fetch: bool = True) -> ResolvedSource:
    """Turn a spec into a folder to walk. Git URLs are cloned/fetched when `fetch`."""
    spec = normalize_spec(spec)
    if spec.startswith("pkg:"):
        name = spec[4:].strip()
        mod = name.replace("-", "_")
        try:
            found = importlib.util.find_spec(mod) if re.fullmatch(r"[A-Za-z_][\w.]*", mod) else None
        except (ImportError, ValueError):
            found = None
        if found is None or not (found.origin or found.submodule_search_locations):
            raise SourceError(f"No installed Python package named '{name}'; install it (pip install {name}) "
                              "or check the import name.")
        if found.submodule_search_locations:
            walk_root = Path(list(found.submodule_search_locations)[0])
        else:
            walk_root = Path(found.origin)
        version = ""
        try:
            from importlib.metadata import PackageNotFoundError
            from importlib.metadata import version as dist_version
            try:
                version = dist_version(name)
            except PackageNotFoundError:
                version = ""
        except ImportError:
            pass
        return ResolvedSource(spec, "package", walk_root.parent, walk_root, version=version)
    if is_git_url(spec):
        folder = sync_git(spec, data_dir, git_timeout) if fetch else clone_dir(data_dir, spec)
        if not folder.exists():
            raise SourceError(f"'{spec}' has not been cloned yet; run `devcopilot ingest {spec}`.")
        _, commit = _git_info(folder)
        web, host = web_base_for(spec, commit)
        return ResolvedSource(spec, "git", folder, folder, web, host, commit[:12])
    folder = Path(spec)
    if not folder.exists():
        raise SourceError(f"Source path '{spec}' does not exist; give an existing folder, a git URL or pkg:NAME.")
    if not folder.is_dir():
        raise SourceError(f"Source '{spec}' is a file, not a folder; give the folder that contains it.")
    remote, commit = _git_info(folder)
    web, host = web_base_for(remote, commit)
    return ResolvedSource(spec, "folder", folder, folder, web, host, commit[:12])
