"""Source specs: a folder, a git URL, or `pkg:NAME` (an installed Python package's source).

Resolving a spec gives a folder on disk, the root paths are relative to, and how to link
to a line (a web URL with a line anchor for known git hosts, else a file path).
"""
from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ingest.environment import child_environment
from ingest.errors import SourceError
from ingest.release_names import ReleaseSpecError, normalize_release, project_of

if TYPE_CHECKING:
    from ingest.outbound import Outbound


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
    ref: str = ""  # the tag (or else branch) the commit is at
    library: str = ""  # the library it holds: a package's distribution name, a repository's or folder's name
    commit: str = ""  # a git source's full commit
    digest: str = ""  # a release archive's hash, as checked ("sha256:…", "sha512-…")

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


_REMOTE = re.compile(r"^(https?|git|ssh|git\+ssh|ssh\+git)://(?:[^@/?#]*@)?(\[[^\]]*\]|[^/:?#]*)(?::\d*)?(/[^?#]*)?",
                     re.IGNORECASE)
_FILE_URL = re.compile(r"^file://([^/]*)(/.*)?$", re.IGNORECASE | re.DOTALL)
_SCP_LIKE = re.compile(r"^(?:[^@/:]+@)?(\[[^\]]*\]|[^/:\[]+):(.*)$", re.DOTALL)


def is_this_machine(host: str) -> bool:
    """True for every name and spelling that reaches this machine: localhost, 127.x in any spelling
    (127.1, 2130706433), ::1, 0.0.0.0, its host names, an /etc/hosts alias of it, its own addresses
    (the name is resolved, as ssh would resolve it: ingest/outbound.py)."""
    from ingest.outbound import reaches_this_machine

    return reaches_this_machine(host)


def local_path(spec: str) -> Path | None:
    """The place on this machine's file system that a source spec reads, however it is spelled; None
    for a remote git URL (http, https, git, ssh to another host) or an installed package.

    This is what a rule on local paths (the web UI's allowed roots) must check, because git reads
    local paths in many spellings: file: URLs with any host (git ignores it: file://localhost/p,
    file://127.0.0.1/p, file://example.com/p) and %-escapes (decoded), ssh URLs and `user@host:path`
    to this machine, and plain paths (a folder, or a bundle file named *.git)."""
    from urllib.parse import unquote

    spec = spec.strip()
    if spec.startswith(("pkg:", "pypi:", "npm:")):
        return None
    m = _FILE_URL.match(spec)
    if m:
        return Path(unquote(m.group(2) or "/"))
    m = _REMOTE.match(spec)
    if m:
        if "ssh" not in m.group(1).lower() or not is_this_machine(m.group(2)):
            return None  # a web or git server decides what it serves
        return _home_relative(unquote(m.group(3) or "/"))
    m = _SCP_LIKE.match(spec)
    if m and "/" not in spec.split(":", 1)[0]:
        return _home_relative(m.group(2)) if is_this_machine(m.group(1)) else None
    return Path(spec).expanduser()


def _home_relative(path: str) -> Path:
    """A path as ssh reads it on the host: `~/x`, `~user/x` and relative paths start at a home folder."""
    if path.startswith("/~"):
        path = path[1:]
    if path.startswith("~"):
        return Path(path).expanduser()
    return Path(path) if path.startswith("/") else Path.home() / path


def normalize_spec(spec: str) -> str:
    spec = spec.strip()
    if spec.startswith(("pypi:", "npm:")):  # a published release: one spelling per release
        try:
            return normalize_release(spec)
        except ReleaseSpecError as e:
            raise SourceError(str(e)) from None
    if spec.startswith(("pkg:", "llamaindex:", "documents:")) or is_git_url(spec) or is_website_url(spec):
        return spec.rstrip("/")
    try:
        return str(Path(spec).expanduser().resolve())
    except (RuntimeError, OSError):  # a symbolic link loop
        raise SourceError(f"Source path '{spec}' is a symbolic link that loops; give the real folder.") from None


def _git(args: list[str], cwd: Path | None, timeout: int,
         access: GitAccess | None = None) -> subprocess.CompletedProcess:
    # Never through a shell; prompts off so a private URL fails instead of hanging; only the plain
    # transports (no ext:: helpers running commands, whatever the user's git configuration says).
    access = access or GitAccess()
    env = child_environment(**{"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true",
                               "GIT_ALLOW_PROTOCOL": "http:https:ssh:git:file", **access.env})
    config = [arg for option in access.config for arg in ("-c", option)]
    return subprocess.run(["git", *config, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


@dataclass(frozen=True)
class GitAccess:
    """The `-c` options and environment a git fetch runs with (none: the operator's fetch, as told)."""
    config: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)


# For the server's doors: none of the server user's git configuration (its credential helpers would
# log in for a caller, its URL rewrites and proxies would send a checked URL elsewhere), no proxy, and
# only the network transports.
_DOOR_ENV = {"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1", "GIT_ALLOW_PROTOCOL": "http:https:ssh:git",
             "GIT_PROXY_COMMAND": "", "http_proxy": "", "https_proxy": "", "HTTPS_PROXY": "", "all_proxy": "",
             "ALL_PROXY": ""}


def door_access(url: str, outbound: Outbound) -> GitAccess:
    """How git may fetch `url` for the server's doors: to an address the policy `outbound` allows
    (OutboundRefused otherwise), and to that address only, so a second lookup (DNS rebinding) changes
    nothing: http(s) through curl's resolve list, without redirects; git:// rewritten to the address;
    ssh told the address, the host key still checked under the host's name. A local repository (its
    path checked against the allowed roots by the door) is read as it is."""
    import shlex

    from ingest.outbound import endpoint

    where = endpoint(url)
    if where is None:
        return GitAccess()
    addresses = outbound.check_url(url)
    if not addresses:
        raise SourceError(f"Could not clone '{url}' (its host '{where.host}' does not resolve); check the URL.")
    shown = [f"[{a}]" if a.version == 6 else str(a) for a in addresses]
    ip = str(addresses[0])
    if where.transport in ("http", "https"):  # curl tries each address given, as it would a name's
        config = (f"http.curloptResolve={where.host}:{where.port}:{','.join(shown)}", "http.followRedirects=false")
        return GitAccess(config, dict(_DOOR_ENV))
    if where.transport == "git":
        authority = re.match(r"^git://[^/]*", url, re.IGNORECASE).group(0)
        return GitAccess((f"url.git://{shown[0]}:{where.port}.insteadOf={authority}",), dict(_DOOR_ENV))
    ssh = shlex.join(["ssh", "-o", f"HostName={ip}", "-o", f"HostKeyAlias={where.host}", "-o", "BatchMode=yes"])
    return GitAccess((), {**_DOOR_ENV, "GIT_SSH_COMMAND": ssh, "GIT_SSH_VARIANT": "ssh"})


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


def git_ref(folder: Path, timeout: int = 20) -> str:
    """The tag HEAD is at ("tag v1.2"), else its branch ("branch main"), else ''."""
    if not (folder / ".git").exists():
        return ""
    try:
        tag = _git(["describe", "--tags", "--exact-match", "HEAD"], folder, timeout)
        if tag.returncode == 0 and tag.stdout.strip():
            return f"tag {tag.stdout.strip()}"
        branch = _git(["symbolic-ref", "--short", "-q", "HEAD"], folder, timeout)
        return f"branch {branch.stdout.strip()}" if branch.returncode == 0 and branch.stdout.strip() else ""
    except (OSError, subprocess.SubprocessError):
        return ""


def clone_dir(data_dir: Path, url: str) -> Path:
    name = re.sub(r"[^A-Za-z0-9]+", "-", url.rsplit("/", 1)[-1].removesuffix(".git")).strip("-")[:40] or "repo"
    return data_dir / "sources" / f"{name}-{hashlib.sha256(url.encode()).hexdigest()[:10]}"


def sync_git(url: str, data_dir: Path, timeout: int = 300, ref: str = "", outbound: Outbound | None = None) -> Path:
    """Shallow-clone the URL (or fetch it when cloned before); returns the working tree. With `ref` (a
    tag, branch or commit) the clone is at it, in a folder of its own: a branch moves on each sync,
    a tag or a commit is never fetched again. `outbound`: the policy of the server's doors
    (ingest/outbound.py); None for the operator's fetch, as told."""
    # A host or user part starting with '-' would reach ssh as an option.
    if url.startswith("-") or not SAFE_GIT_URL.match(url) or re.search(r"(://|@)-", url):
        raise SourceError(f"'{url}' is not a git URL this copilot accepts; give a plain https://, ssh:// "
                          "or file:// URL without spaces or shell characters.")
    if ref and not SAFE_GIT_REF.match(ref):
        raise SourceError(f"'{ref}' is not a tag, branch or commit name this copilot accepts; give a plain name "
                          "such as v1.2.0, main or a full commit hash.")
    access = door_access(url, outbound) if outbound is not None else None
    dest = clone_dir(data_dir, with_git_ref(url, ref))
    try:
        if (dest / ".git").exists():
            if ref and _ref_stays(dest, ref, timeout):
                return dest
            r = _git(["fetch", "--depth", "1", "--quiet", "origin"], dest, timeout, access)
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
        r = _git(["clone", "--depth", "1", "--quiet", *(["--branch", ref] if ref else []), "--", url,
                  str(tmp / "t")], None, timeout, access)
        if r.returncode != 0 and ref:  # not a branch or a tag: a commit
            r = _clone_commit(url, tmp / "t", ref, timeout, access)
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


SAFE_GIT_REF = re.compile(r"^(?!-)(?!.*\.\.)[A-Za-z0-9._/+-]{1,200}$")


def with_git_ref(url: str, ref: str) -> str:
    """The source spec of a git URL at a ref: `URL#REF` (a fragment: git never sees it)."""
    return f"{url}#{ref}" if ref else url


def split_git_ref(spec: str) -> tuple[str, str]:
    """(URL, ref) of a git source spec; ref "" follows the default branch."""
    url, sep, ref = spec.rpartition("#")
    return (url, ref) if sep else (spec, "")


def _ref_stays(folder: Path, ref: str, timeout: int) -> bool:
    """True when the clone is at `ref` and `ref` is a tag or a commit: nothing to fetch again."""
    if git_ref(folder, timeout) == f"tag {ref}":
        return True
    _, commit = _git_info(folder, timeout)
    return bool(re.fullmatch(r"[0-9a-fA-F]{7,40}", ref)) and commit.startswith(ref.lower())


def _clone_commit(url: str, dest: Path, commit: str, timeout: int,
                  access: GitAccess | None = None) -> subprocess.CompletedProcess:
    """A shallow clone at one commit (servers that allow fetching a commit by its hash do)."""
    shutil.rmtree(dest, ignore_errors=True)
    r = _git(["clone", "--depth", "1", "--no-checkout", "--quiet", "--", url, str(dest)], None, timeout, access)
    for args in (["fetch", "--depth", "1", "--quiet", "origin", commit], ["checkout", "--quiet", "--detach",
                                                                           "FETCH_HEAD"]):
        if r.returncode == 0:
            r = _git(args, dest, timeout, access)
    return r


def _first_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return (lines[-1] if lines else "no detail")[:200]


def find_package(name: str) -> tuple[Path, Path]:
    """(the sys.path folder it lies in, its own folder or file) of an installed package or module,
    found without importing it.

    `importlib.util.find_spec("a.b")` imports `a`, which runs its code inside this process: a
    source spec must never do that. The top-level name is looked up by the import system's
    finders (they read the file system, and know editable installs); each further part inside the
    folders found so far, the way the import system would, but without executing anything.
    What is found must be what an installed distribution put there (SourceError otherwise): the
    browser may add `pkg:` sources, and a folder on sys.path (the working directory) is not one.
    """
    mod = name.replace("-", "_")
    missing = SourceError(f"No installed Python package named '{name}'; install it (pip install {name}) "
                          "or check the import name.")
    if not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", mod):
        raise missing
    top, *rest = mod.split(".")
    try:
        spec = importlib.util.find_spec(top)  # no dot: nothing is imported
    except (ImportError, ValueError):
        spec = None
    if spec is None or not (spec.origin or spec.submodule_search_locations):
        raise missing
    locations = list(spec.submodule_search_locations or [])
    origin = spec.origin if not locations else None
    for part in rest:
        if not locations:  # a module, not a package: it has no parts
            raise missing
        locations, origin = _find_part(part, locations)
        if not locations and not origin:
            raise missing
    # Only what a distribution installed: a plain folder on sys.path (the working directory's docs/, a
    # namespace package no distribution declares, a folder shadowing an installed package) is no package.
    walk_root = next((p for p in map(Path, locations or [origin]) if _distributed(top, p)), None)
    if walk_root is None:
        raise SourceError(f"'{name}' is not an installed package (no distribution provides it); install it, "
                          "or add its folder as a folder source.")
    return walk_root.parents[len(rest)], walk_root


def _distributed(top: str, found: Path) -> bool:
    """True when a distribution providing the top-level import name `top` installed `found` (a package
    folder or a module file): one of the files its RECORD lists lies there, or, installed editable, its
    project folder holds it."""
    from importlib import metadata

    try:
        found = found.resolve()
    except (OSError, RuntimeError):
        return False
    for dist_name in dict.fromkeys(metadata.packages_distributions().get(top, [])):
        for dist in metadata.distributions(name=dist_name):
            base = Path(dist.locate_file("")).resolve()
            if any(Path(os.path.normpath(base / f)).is_relative_to(found) for f in dist.files or []):
                return True
            project = _editable_project(dist.read_text("direct_url.json") or "")
            if project is not None and found.is_relative_to(project):
                return True
    return False


def _editable_project(direct_url: str) -> Path | None:
    """The project folder of an editable install (its direct_url.json, PEP 610), else None."""
    from urllib.parse import unquote, urlsplit

    try:
        info = json.loads(direct_url)
    except ValueError:
        return None
    if not (isinstance(info, dict) and isinstance(info.get("dir_info"), dict) and info["dir_info"].get("editable")):
        return None
    url = info.get("url")
    if not (isinstance(url, str) and url.startswith("file://")):
        return None
    try:
        return Path(unquote(urlsplit(url).path)).resolve()
    except (OSError, RuntimeError):
        return None


_LOADERS = [(importlib.machinery.ExtensionFileLoader, importlib.machinery.EXTENSION_SUFFIXES),
            (importlib.machinery.SourceFileLoader, importlib.machinery.SOURCE_SUFFIXES),
            (importlib.machinery.SourcelessFileLoader, importlib.machinery.BYTECODE_SUFFIXES)]


def _find_part(part: str, locations: list[str]) -> tuple[list[str], str | None]:
    """(package folders, module file) of `part` inside a package's folders, as the import system's
    file finder sees them; a namespace package may have portions in several folders."""
    portions: list[str] = []
    for loc in locations:
        found = importlib.machinery.FileFinder(loc, *_LOADERS).find_spec(part)
        if found is None:
            continue
        if found.loader is not None:  # a regular package or a module: it wins over namespace portions
            return list(found.submodule_search_locations or []), None if found.submodule_search_locations \
                else found.origin
        portions += list(found.submodule_search_locations or [])
    return portions, None


def package_version(name: str) -> str:
    """The version of the distribution that installs the import name's top-level package, or ''."""
    from importlib import metadata

    top = name.replace("-", "_").split(".")[0]
    candidates = [name.split(".")[0]] + list(metadata.packages_distributions().get(top, []))
    for dist in candidates:
        try:
            return metadata.version(dist)
        except (metadata.PackageNotFoundError, ValueError):
            continue
    return ""


def package_distribution(name: str) -> tuple[str, str]:
    """(distribution name in PEP 503 form, version) of the distribution installing an import name; the
    import name and '' when none is found."""
    from importlib import metadata

    top = name.replace("-", "_").split(".")[0]
    for dist in [name.split(".")[0]] + list(metadata.packages_distributions().get(top, [])):
        try:
            return re.sub(r"[-_.]+", "-", metadata.metadata(dist)["Name"] or dist).lower(), metadata.version(dist)
        except (metadata.PackageNotFoundError, ValueError, KeyError):
            continue
    return re.sub(r"[-_.]+", "-", top).lower(), ""


def resolve(spec: str, data_dir: Path, git_timeout: int = 300, fetch: bool = True,
            outbound: Outbound | None = None) -> ResolvedSource:
    """Turn a spec into a folder to walk. Git URLs are cloned/fetched when `fetch`, where the policy
    `outbound` allows (ingest/outbound.py; None: the operator's fetch, as told)."""
    spec = normalize_spec(spec)
    if spec.startswith("pkg:"):
        name = spec[4:].strip()
        root, walk_root = find_package(name)
        dist, version = package_distribution(name)
        return ResolvedSource(spec, "package", root, walk_root, version=version, library=dist)
    if is_git_url(spec):
        url, ref = split_git_ref(spec)
        folder = sync_git(url, data_dir, git_timeout, ref, outbound) if fetch else clone_dir(data_dir, spec)
        if not folder.exists():
            raise SourceError(f"'{spec}' has not been cloned yet; run `devcopilot ingest {spec}`.")
        _, commit = _git_info(folder)
        web, host = web_base_for(url, commit)
        at = git_ref(folder)
        version = ref if ref and at == f"tag {ref}" else commit[:12]  # a source at a tag is that version
        return ResolvedSource(spec, "git", folder, folder, web, host, version, ref=at, commit=commit,
                              library=re.split(r"[/:]", url.rstrip("/"))[-1].removesuffix(".git"))
    folder = Path(spec)
    if not folder.exists():
        raise SourceError(f"Source path '{spec}' does not exist; give an existing folder, a git URL or pkg:NAME.")
    if not folder.is_dir():
        raise SourceError(f"Source '{spec}' is a file, not a folder; give the folder that contains it.")
    remote, commit = _git_info(folder)
    web, host = web_base_for(remote, commit)
    # The project the folder holds names the library (an unpacked sdist `hatch-1.18.2/` is hatch), and gives the
    # version when no commit does.
    name, version = project_of(folder)
    return ResolvedSource(spec, "folder", folder, folder, web, host, commit[:12] or version,
                          ref=git_ref(folder) if commit else "", library=name or folder.name, commit=commit)
