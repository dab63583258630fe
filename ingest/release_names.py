"""How releases and libraries are named: `pypi:NAME==VERSION` and `npm:NAME@VERSION` specs spelled one
way, Python names in their PEP 503 form, npm's version order, and the library a source holds.

Plain functions with no other part of ingest/ below them: the source specs (ingest/sources.py), the
releases (ingest/releases.py) and the catalog all name things the same way through here.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

RELEASE_PREFIXES = ("pypi:", "npm:")
PYPI_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")
NPM_NAME = re.compile(r"^(@[a-z0-9~-][a-z0-9._~-]*/)?[a-z0-9~-][a-z0-9._~-]*$")
SEMVER = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$")


class ReleaseSpecError(ValueError):
    """A release spec that cannot be used; the message is one sentence saying how to write it."""


def is_release_spec(spec: str) -> bool:
    return spec.strip().startswith(RELEASE_PREFIXES)


@dataclass(frozen=True)
class Release:
    ecosystem: str  # "pypi" | "npm"
    name: str  # canonical: PEP 503 for Python, as published for npm
    version: str  # canonical: PEP 440 for Python, semver for npm

    @property
    def spec(self) -> str:
        return f"pypi:{self.name}=={self.version}" if self.ecosystem == "pypi" else f"npm:{self.name}@{self.version}"

    @property
    def folder(self) -> str:
        return re.sub(r"[^A-Za-z0-9._-]+", "-", f"{self.ecosystem}-{self.name}-{self.version}").strip("-")


def canonical_name(name: str) -> str:
    """A Python distribution's name as indexes and lock files compare it (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_release(spec: str) -> Release:
    """The release a `pypi:NAME==VERSION` or `npm:NAME@VERSION` spec names, or ReleaseSpecError saying how
    to write it."""
    spec = spec.strip()
    if spec.startswith("pypi:"):
        name, sep, version = spec[5:].strip().partition("==")
        name, version = name.strip(), version.strip()
        if not sep or not version:
            bare = re.split(r"[<>=!~,;\s]", name, maxsplit=1)[0]
            if bare != name:  # `pypi:six>=1.0`: a requirement, not a release
                raise ReleaseSpecError(f"'{spec}' names a range of versions; a release is one: write "
                                       f"pypi:{bare or 'NAME'}==VERSION.")
            raise ReleaseSpecError(f"'{spec}' names no version; write pypi:{name or 'NAME'}==VERSION (the installed "
                              f"package is pkg:{name or 'NAME'}).")
        if not PYPI_NAME.match(name):
            raise ReleaseSpecError(f"'{name}' is not a Python package name; write pypi:NAME==VERSION.")
        from packaging.version import InvalidVersion, Version

        try:
            version = str(Version(version))
        except InvalidVersion:
            raise ReleaseSpecError(f"'{version}' is not a version pip understands; write pypi:{name}==1.2.3.") from None
        return Release("pypi", canonical_name(name), version)
    if spec.startswith("npm:"):
        body = spec[4:].strip()
        at = body.rfind("@")
        name, version = (body[:at], body[at + 1:]) if at > 0 else (body, "")
        if not version:
            raise ReleaseSpecError(f"'{spec}' names no version; write npm:{name or 'NAME'}@VERSION (an exact version "
                              "such as 3.23.8).")
        if not NPM_NAME.match(name):
            raise ReleaseSpecError(f"'{name}' is not an npm package name; write npm:NAME@VERSION.")
        if not SEMVER.match(version):
            raise ReleaseSpecError(f"'{version}' is not an exact version; write npm:{name}@1.2.3 (a release never "
                              "changes; a range or a tag would).")
        return Release("npm", name, version.removeprefix("v"))
    raise ReleaseSpecError(f"'{spec}' is not a release spec; write pypi:NAME==VERSION or npm:NAME@VERSION.")


def normalize_release(spec: str) -> str:
    """The spec spelled one way (so one release is one source): canonical name and version."""
    return parse_release(spec).spec


def semver_key(version: str) -> tuple:
    """Order of npm versions: numbers, then a release above its pre-releases."""
    m = SEMVER.match(version.strip())
    if not m:
        return (-1, -1, -1, 0, ())
    pre = m.group(4)
    parts = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split(".")) if pre else ()
    return (int(m.group(1)), int(m.group(2)), int(m.group(3)), 0 if pre else 1, parts)


def library_of(spec: str, kind: str, root: str = "") -> str:
    """The library a source holds, by its spec: a release's or a package's name, a repository's, a folder's.

    Python names are canonical (PEP 503), so `pkg:agents` (distribution openai-agents), `pypi:openai_agents==1`
    and a lock file's `openai-agents` are one library; "" for sources that are no library (a website)."""
    spec = spec.strip()
    if is_release_spec(spec):
        try:
            return parse_release(spec).name
        except ReleaseSpecError:
            return ""
    if spec.startswith("pkg:"):
        return canonical_name(spec[4:].split(".")[0])
    if kind == "git":
        url = spec.split("#", 1)[0].rstrip("/")
        return re.split(r"[/:]", url)[-1].removesuffix(".git")
    if kind == "folder":
        return Path(root or spec).name
    return ""


def project_of(folder: Path) -> tuple[str, str]:
    """(name, version) that a folder's own metadata declares: an unpacked sdist's PKG-INFO, pyproject.toml's
    [project] (or [tool.poetry]), package.json, Cargo.toml's [package]; the first that names the project wins,
    ("", "") when none does. Python names in their PEP 503 form; a version computed at build time is ""."""
    for read in (_pkg_info, _pyproject, _package_json, _cargo):
        try:
            name, version = read(folder)
        except (OSError, ValueError, TypeError, AttributeError):  # unreadable or malformed: the next one
            continue
        if isinstance(name, str) and name.strip():
            return name.strip(), version.strip() if isinstance(version, str) else ""
    return "", ""


def _small_text(path: Path) -> str:
    if not path.is_file() or path.stat().st_size > 1_000_000:  # metadata is small; anything else is not it
        raise OSError(path)
    return path.read_text(encoding="utf-8", errors="replace")


def _pkg_info(folder: Path) -> tuple[str, str]:
    fields = dict(re.findall(r"^(Name|Version):[ \t]*(.+?)[ \t]*$", _small_text(folder / "PKG-INFO"), re.MULTILINE))
    return canonical_name(fields.get("Name", "")), fields.get("Version", "")


def _pyproject(folder: Path) -> tuple[str, str]:
    import tomllib

    data = tomllib.loads(_small_text(folder / "pyproject.toml"))
    table = data.get("project") or data.get("tool", {}).get("poetry") or {}
    name = table.get("name", "")
    return (canonical_name(name) if isinstance(name, str) else ""), table.get("version", "")


def _package_json(folder: Path) -> tuple[str, str]:
    import json

    data = json.loads(_small_text(folder / "package.json"))
    return data.get("name", ""), data.get("version", "")


def _cargo(folder: Path) -> tuple[str, str]:
    import tomllib

    package = tomllib.loads(_small_text(folder / "Cargo.toml")).get("package") or {}
    version = package.get("version", "")
    return package.get("name", ""), version if isinstance(version, str) else ""  # `version.workspace = true`
