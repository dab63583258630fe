"""Published releases as sources: `pypi:NAME==VERSION` and `npm:NAME@VERSION`.

A release is fetched once, through the package index this machine's pip or npm is configured for,
its archive's hash checked, and unpacked into the data dir (DATA/releases/pypi-NAME-VERSION/); a
release never changes, so a re-index reads that folder again and fetches nothing.

Python: the indexes pip reads (`index-url` and `extra-index-url`, as `pip config list` reports
them: the environment's PIP_INDEX_URL first, then the [download] and [global] sections of its
configuration files), through their simple API (PEP 691 JSON, else PEP 503 HTML). The sdist is
preferred (it holds the docs), else a wheel. The archive's sha256 must be the one the index gives
(when it gives one), and is recorded either way. pip is not asked to download it: for an sdist it
would build the package's metadata, running the package's own build code, which indexing a
release must never do.

npm: `npm pack NAME@VERSION --json --ignore-scripts` fetches the tarball through the registry npm
is configured for; its sha512 must be the `integrity` npm reports.

Archives are unpacked safely: tar members through tarfile's "data" filter (no links leaving the
folder, no absolute paths, no devices), zip members without absolute or `..` paths or links, and
at most MAX_UNPACKED_BYTES in all.

How releases are named (their specs, PEP 503 names, npm's version order) is ingest/release_names.py.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

from ingest import release_names
from ingest.environment import child_environment
from ingest.release_names import SEMVER, Release, ReleaseSpecError, canonical_name, is_release_spec, semver_key
from ingest.sources import ResolvedSource, SourceError

__all__ = ["Release", "canonical_name", "is_release_spec", "normalize_release", "open_release", "parse_release",
           "release_dir", "semver_key", "unpack"]

PYPI = "https://pypi.org/simple"
MAX_ARCHIVE_BYTES = 300_000_000  # a release's archive, downloaded
MAX_UNPACKED_BYTES = 1_000_000_000  # and unpacked
MAX_MEMBERS = 100_000
META = "release.json"  # what was fetched, from where, its hash; beside the unpacked files, never indexed


def parse_release(spec: str) -> Release:
    """The release a spec names, or SourceError saying how to write it."""
    try:
        return release_names.parse_release(spec)
    except ReleaseSpecError as e:
        raise SourceError(str(e)) from None


def normalize_release(spec: str) -> str:
    """The spec spelled one way (so one release is one source): canonical name and version."""
    return parse_release(spec).spec


def release_dir(data_dir: Path, spec: str) -> Path:
    return Path(data_dir) / "releases" / parse_release(spec).folder


def open_release(spec: str, data_dir: Path, timeout: float = 300, fetch: bool = True) -> ResolvedSource:
    """The release's unpacked folder as a source, fetched (once) when `fetch`."""
    release = parse_release(spec)
    dest = release_dir(data_dir, spec)
    if not (dest / META).is_file():
        if not fetch:
            raise SourceError(f"'{release.spec}' has not been fetched yet; run `devcopilot ingest {release.spec}`.")
        _fetch(release, dest, timeout)
    meta = json.loads((dest / META).read_text(encoding="utf-8"))
    root = dest / "files" / meta["root"] if meta["root"] else dest / "files"
    return ResolvedSource(release.spec, "release", root, root, version=release.version, library=release.name,
                          digest=meta["digest"])


def _fetch(release: Release, dest: Path, timeout: float) -> None:
    """Download, check and unpack the release into `dest`, all or nothing."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    for stale in dest.parent.glob(f".fetch-{dest.name}-*"):  # what a killed fetch of it left
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".fetch-{dest.name}-", dir=dest.parent))
    try:
        if release.ecosystem == "pypi":
            archive, digest, origin = _fetch_pypi(release, tmp, timeout)
        else:
            archive, digest, origin = _fetch_npm(release, tmp, timeout)
        root = unpack(archive, tmp / "files")
        archive.unlink()
        (tmp / META).write_text(json.dumps({"spec": release.spec, "file": archive.name, "from": origin,
                                            "digest": digest, "root": root}, indent=1), encoding="utf-8")
        if dest.exists():  # fetched meanwhile by another process: keep that one
            return
        os.replace(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# -- Python: the simple API of the indexes pip reads ---------------------------------------------------
@dataclass(frozen=True)
class IndexFile:
    filename: str
    url: str
    sha256: str  # "" when the index gives none


def pip_indexes(timeout: float = 60) -> tuple[list[str], str]:
    """(index URLs in the order pip reads them, CA bundle or "") as pip is configured here."""
    try:
        r = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True,
                           timeout=timeout, env=child_environment())
        listed = r.stdout if r.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        listed = ""
    values: dict[str, str] = {}
    for line in listed.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip().strip("'\"")

    def setting(key: str) -> str:
        return next((values[k] for k in (f":env:.{key}", f"download.{key}", f"global.{key}") if values.get(k)), "")

    first = setting("index-url") or PYPI
    extra = setting("extra-index-url").split()
    return [first, *[u for u in extra if u != first]], setting("cert")


def _fetch_pypi(release: Release, tmp: Path, timeout: float) -> tuple[Path, str, str]:
    import httpx

    indexes, cert = pip_indexes()
    seen: set[str] = set()
    failed: list[str] = []
    chosen: IndexFile | None = None
    with httpx.Client(timeout=timeout, follow_redirects=True, verify=_verify(cert)) as client:
        for index in indexes:
            try:
                files = index_files(client, index, release.name)
            except OSError as e:  # unreachable: the next index may have it
                failed.append(f"{_plain(index)} ({e})")
                continue
            for f in files:
                version, kind = _file_version(f.filename, release.name)
                if version:
                    seen.add(version)
                better = chosen is None or (kind == "sdist" and not _is_sdist(chosen.filename))
                if version and better and _same_version(version, release.version):
                    chosen = f
            if chosen is not None and _is_sdist(chosen.filename):
                break
        if chosen is None:
            raise SourceError(_not_found(release, indexes, seen, failed))
        archive = tmp / Path(unquote(urlsplit(chosen.filename).path)).name
        digest = _download(client, chosen.url, archive)
    if chosen.sha256 and chosen.sha256 != digest:
        raise SourceError(f"The archive of {release.name} {release.version} ({chosen.filename}) does not have the "
                          "sha256 the package index gives; nothing was indexed. Try again, or check the index.")
    return archive, f"sha256:{digest}", chosen.url


def _verify(cert: str):
    """httpx's `verify` for pip's `cert` setting (a CA bundle file or folder), else its own certificates."""
    import ssl

    if not cert:
        return True
    try:
        return ssl.create_default_context(capath=cert) if Path(cert).is_dir() else \
            ssl.create_default_context(cafile=cert)
    except (OSError, ssl.SSLError):  # pip would fail on it too; the default certificates may still do
        return True


def _plain(url: str) -> str:
    """An index URL without its credentials, for messages."""
    parts = urlsplit(url)
    return url.replace(f"{parts.username}:{parts.password}@", "").replace(f"{parts.username}@", "") \
        if parts.username else url


def _not_found(release: Release, indexes: list[str], seen: set[str], failed: list[str]) -> str:
    where = f"the package index pip uses ({', '.join(_plain(i) for i in indexes)})"
    if failed and not seen:
        return (f"The package index pip uses cannot be reached: {'; '.join(failed)[:300]}; check the network or "
                f"pip's index-url, then try again. Nothing was indexed.")
    if not seen:
        return f"{release.name} is not on {where}; check the name (pip install {release.name} would fail too)."
    from packaging.version import Version

    newest = max(seen, key=Version)
    return f"{release.name} {release.version} is not on {where}; the versions there end at {newest}."


def index_files(client, index: str, name: str) -> list[IndexFile]:
    """The files an index lists for a project ([] when it has none); OSError when it cannot be read."""
    import httpx

    url = index.rstrip("/") + f"/{name}/"
    if url.startswith("file:"):
        return _local_index(Path(unquote(urlsplit(url).path)), url)
    try:
        r = client.get(url, headers={"Accept": "application/vnd.pypi.simple.v1+json, text/html;q=0.1"})
    except httpx.HTTPError as e:
        raise OSError(type(e).__name__) from None
    if r.status_code == 404:
        return []
    if r.status_code >= 400:
        raise OSError(f"HTTP {r.status_code}")
    if "json" in r.headers.get("content-type", ""):
        data = r.json()
        return [IndexFile(f["filename"], urljoin(str(r.url), f["url"]), (f.get("hashes") or {}).get("sha256", ""))
                for f in data.get("files", []) if isinstance(f, dict) and "filename" in f and "url" in f]
    return _anchors(r.text, str(r.url))


def _local_index(folder: Path, url: str) -> list[IndexFile]:
    """A file: index (pip reads those too): the project folder's index.html, else its files."""
    if (folder / "index.html").is_file():
        return _anchors((folder / "index.html").read_text(encoding="utf-8", errors="replace"), url)
    if not folder.is_dir():
        return []
    return [IndexFile(p.name, p.as_uri(), "") for p in sorted(folder.iterdir()) if p.is_file()]


ANCHOR = re.compile(r"<a\s[^>]*href=[\"']([^\"']+)[\"'][^>]*>([^<]*)</a>", re.IGNORECASE)


def _anchors(page: str, base: str) -> list[IndexFile]:
    out = []
    for href, text in ANCHOR.findall(page):
        link, _, fragment = href.partition("#")
        sha = fragment.removeprefix("sha256=") if fragment.startswith("sha256=") else ""
        filename = text.strip() or Path(urlsplit(link).path).name
        out.append(IndexFile(filename, urljoin(base, link), sha))
    return out


def _is_sdist(filename: str) -> bool:
    return filename.endswith((".tar.gz", ".zip"))


def _file_version(filename: str, name: str) -> tuple[str, str]:
    """(version, "sdist" | "wheel") of a distribution file of `name`, or ("", "")."""
    from packaging import utils
    from packaging.version import InvalidVersion, Version

    try:
        if filename.endswith(".whl"):
            dist, version, *_ = utils.parse_wheel_filename(filename)
            kind = "wheel"
        elif filename.endswith(".tar.gz"):
            dist, version = utils.parse_sdist_filename(filename)
            kind = "sdist"
        elif filename.endswith(".zip"):  # an old sdist: NAME-VERSION.zip
            dist, _, raw = filename[:-4].rpartition("-")
            version, kind = Version(raw), "sdist"
        else:
            return "", ""
    except (utils.InvalidSdistFilename, utils.InvalidWheelFilename, InvalidVersion, ValueError):
        return "", ""
    return (str(version), kind) if canonical_name(str(dist)) == name else ("", "")


def _same_version(a: str, b: str) -> bool:
    from packaging.version import Version

    return Version(a) == Version(b)


def _download(client, url: str, dest: Path) -> str:
    """Stream `url` into `dest`; its sha256 (hex)."""
    import httpx

    if url.startswith("file:"):
        shutil.copyfile(unquote(urlsplit(url).path), dest)
        return hashlib.sha256(dest.read_bytes()).hexdigest()
    h = hashlib.sha256()
    size = 0
    try:
        with client.stream("GET", url) as r, open(dest, "wb") as out:
            if r.status_code >= 400:
                raise SourceError(f"The package index answered HTTP {r.status_code} for {_plain(url)}; try again.")
            for part in r.iter_bytes(1 << 20):
                size += len(part)
                if size > MAX_ARCHIVE_BYTES:
                    raise SourceError(f"The archive at {_plain(url)} is larger than {MAX_ARCHIVE_BYTES:,} bytes; "
                                      "it was not indexed.")
                h.update(part)
                out.write(part)
    except httpx.HTTPError as e:
        raise SourceError(f"Downloading {_plain(url)} failed ({type(e).__name__}); check the network and try "
                          "again. Nothing was indexed.") from None
    return h.hexdigest()


# -- npm ----------------------------------------------------------------------------------------------
def _npm(args: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["npm", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                              env=child_environment(npm_config_update_notifier="false", npm_config_fund="false",
                                                    npm_config_audit="false"))
    except FileNotFoundError:
        raise SourceError("The `npm` command is not installed; install Node.js and npm to ingest npm: "
                          "sources.") from None
    except subprocess.TimeoutExpired:
        raise SourceError(f"npm took longer than {timeout:.0f} s; check the network or raise "
                          "ingest.git_timeout_s.") from None


def _fetch_npm(release: Release, tmp: Path, timeout: float) -> tuple[Path, str, str]:
    r = _npm(["pack", f"{release.name}@{release.version}", "--json", "--ignore-scripts", "--pack-destination",
              str(tmp)], tmp, timeout)
    if r.returncode != 0:
        raise SourceError(_npm_failure(release, r.stderr + r.stdout, tmp, timeout))
    try:
        packed = json.loads(r.stdout)[0]
        archive = tmp / packed["filename"]
        integrity = packed["integrity"]
    except (ValueError, LookupError, TypeError):
        raise SourceError(f"npm did not say what it fetched for {release.name}@{release.version}; try again.") \
            from None
    algorithm, _, expected = integrity.partition("-")
    if algorithm not in ("sha512", "sha256", "sha1") or not archive.is_file():
        raise SourceError(f"npm reported no usable integrity for {release.name}@{release.version}; nothing was "
                          "indexed.")
    actual = base64.b64encode(hashlib.new(algorithm, archive.read_bytes()).digest()).decode()
    if actual != expected:
        raise SourceError(f"The tarball of {release.name}@{release.version} does not have the {algorithm} npm "
                          "reports; nothing was indexed. Try again, or check the registry.")
    return archive, f"{algorithm}-{actual}", f"npm {packed.get('id', release.spec)}"


def _npm_failure(release: Release, said: str, tmp: Path, timeout: float) -> str:
    if re.search(r"ENOTFOUND|ECONNREFUSED|EAI_AGAIN|ETIMEDOUT|ECONNRESET|network", said):
        return ("The npm registry npm uses cannot be reached; check the network or npm's registry setting "
                "(`npm config get registry`), then try again. Nothing was indexed.")
    if "E404" in said or "404 Not Found" in said:
        return f"{release.name} is not on the npm registry npm uses; check the name."
    if "ETARGET" in said or "No matching version" in said:
        versions = _npm_versions(release.name, tmp, timeout)
        end = f"; the versions there end at {versions[-1]}" if versions else ""
        return f"{release.name} {release.version} is not on the npm registry npm uses{end}."
    lines = [ln.strip() for ln in said.splitlines() if ln.strip()]
    return f"npm could not fetch {release.name}@{release.version} ({(lines[-1] if lines else 'no detail')[:200]})."


def _npm_versions(name: str, tmp: Path, timeout: float) -> list[str]:
    r = _npm(["view", name, "versions", "--json"], tmp, timeout)
    try:
        versions = json.loads(r.stdout) if r.returncode == 0 else []
    except ValueError:
        return []
    versions = [versions] if isinstance(versions, str) else versions
    return sorted((v for v in versions if isinstance(v, str) and SEMVER.match(v)), key=semver_key)


# -- unpacking ------------------------------------------------------------------------------------------
def unpack(archive: Path, dest: Path) -> str:
    """Unpack a .tar.gz / .tgz / .zip / .whl into `dest`, safely; the one top folder it holds ("" if not one)."""
    dest.mkdir(parents=True, exist_ok=True)
    if zipfile.is_zipfile(archive):
        _unzip(archive, dest)
    else:
        try:
            with tarfile.open(archive) as tar:
                members = tar.getmembers()
                if len(members) > MAX_MEMBERS or sum(m.size for m in members) > MAX_UNPACKED_BYTES:
                    raise SourceError(f"{archive.name} unpacks to more than {MAX_UNPACKED_BYTES:,} bytes or "
                                      f"{MAX_MEMBERS:,} files; it was not indexed.")
                tar.extractall(dest, members=members, filter="data")
        except (tarfile.TarError, OSError) as e:
            raise SourceError(f"{archive.name} could not be unpacked ({type(e).__name__}: {str(e)[:120]}); it "
                              "was not indexed.") from None
    entries = list(dest.iterdir())
    return entries[0].name if len(entries) == 1 and entries[0].is_dir() else ""


def _unzip(archive: Path, dest: Path) -> None:
    with zipfile.ZipFile(archive) as z:
        infos = z.infolist()
        if len(infos) > MAX_MEMBERS or sum(i.file_size for i in infos) > MAX_UNPACKED_BYTES:
            raise SourceError(f"{archive.name} unpacks to more than {MAX_UNPACKED_BYTES:,} bytes or "
                              f"{MAX_MEMBERS:,} files; it was not indexed.")
        for info in infos:
            name = info.filename.replace("\\", "/")
            parts = [p for p in name.split("/") if p not in ("", ".")]
            if name.startswith("/") or ".." in parts or re.match(r"^[A-Za-z]:", name) or not parts:
                raise SourceError(f"{archive.name} holds a member named '{info.filename[:100]}' that would land "
                                  "outside its folder; it was not indexed.")
            if (info.external_attr >> 16) & 0o170000 == 0o120000:  # a symbolic link: not content
                continue
            target = dest.joinpath(*parts)
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with z.open(info) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)
