"""What a project pins: the versions of its dependencies, read from its lock and requirement files or
its installed environment, so answers are given for the versions it uses (indexes/versions.py).

Read, first found wins for each package:
1. lock files: uv.lock, poetry.lock (Python); package-lock.json, pnpm-lock.yaml (npm): every package
   they lock (for npm, the project's own dependencies: the top-level ones);
2. requirements*.txt: exact pins (`name==1.2.3`);
3. pyproject.toml: exact pins in [project] dependencies and optional dependencies (`name==1.2.3`) and
   in Poetry's tables (`name = "1.2.3"`);
4. the installed environment: a .venv (or venv) in the project, its site-packages' *.dist-info; and
   node_modules' top-level packages.

A file that cannot be read is one sentence naming it (its pins are then not known; the newest
indexed versions answer), and the other files are still read. Python names are compared in their
PEP 503 form; npm names as written.
"""
from __future__ import annotations

import json
import re
import threading
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from indexes.versions import Pin, VersionChoice
from ingest.release_names import canonical_name

LOCKS = ("uv.lock", "poetry.lock", "package-lock.json", "pnpm-lock.yaml")
REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*===?\s*([A-Za-z0-9][\w.+!-]*)\s*"
                         r"(?:;.*)?(?:\\)?$")
POETRY_EXACT = re.compile(r"^=?=?\s*(\d[\w.+!-]*)$")


class ProjectError(ValueError):
    """A project folder that cannot be used; one sentence."""


@dataclass
class ProjectPins:
    folder: Path
    pins: dict[str, str] = field(default_factory=dict)  # name (PEP 503 for Python) -> version
    origin: dict[str, str] = field(default_factory=dict)  # name -> the file that pins it
    problems: list[str] = field(default_factory=list)  # one sentence per file that could not be read

    def choice(self) -> VersionChoice:
        """The pins as a version choice: each library at its pinned version, the problems said with the answer."""
        where = f" in {self.folder}"
        return VersionChoice(tuple(Pin(name, version, self.origin[name] + where)
                                   for name, version in self.pins.items()), False, tuple(self.problems))


def read_project(folder: str | Path) -> ProjectPins:
    """The versions the project in `folder` pins. ProjectError when the folder does not exist."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise ProjectError(f"The project folder '{folder}' does not exist; give the folder holding its lock or "
                           "requirement files.")
    out = ProjectPins(folder.resolve())
    readers = [("uv.lock", _uv_or_poetry), ("poetry.lock", _uv_or_poetry), ("package-lock.json", _package_lock),
               ("pnpm-lock.yaml", _pnpm_lock)]
    readers += [(p.name, _requirements) for p in sorted(folder.glob("requirements*.txt"))]
    readers += [("pyproject.toml", _pyproject)]
    for name, read in readers:
        path = folder / name
        if not path.is_file():
            continue
        try:
            found = read(path)
        except Exception as e:  # noqa: BLE001 - any fault of one file is that file's sentence
            out.problems.append(f"{name} in {out.folder} could not be read ({_why(e)}); the versions it pins are "
                                "not known, so the newest indexed versions answer for them.")
            continue
        _add(out, found, name)
    _add(out, _installed_python(folder), "the installed .venv")
    _add(out, _installed_npm(folder), "node_modules")
    return out


def _why(e: Exception) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"{type(e).__name__}: {text[:120]}" if text else type(e).__name__


def _add(out: ProjectPins, found: dict[str, str], origin: str) -> None:
    for name, version in found.items():
        if name and version and name not in out.pins:
            out.pins[name] = version
            out.origin[name] = origin


def _uv_or_poetry(path: Path) -> dict[str, str]:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    packages = data.get("package", [])
    if not isinstance(packages, list):
        raise ValueError("its [[package]] entries are not a list")
    return {canonical_name(str(p["name"])): str(p["version"]) for p in packages
            if isinstance(p, dict) and p.get("name") and p.get("version")}


def _package_lock(path: Path) -> dict[str, str]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError("it is not a JSON object")
    out: dict[str, str] = {}
    for key, entry in (data.get("packages") or {}).items():  # lockfileVersion 2 and 3
        name = key.removeprefix("node_modules/")
        if key.startswith("node_modules/") and "/node_modules/" not in key and isinstance(entry, dict) \
                and entry.get("version"):
            out[name] = str(entry["version"])
    for name, entry in (data.get("dependencies") or {}).items():  # lockfileVersion 1
        if isinstance(entry, dict) and entry.get("version"):
            out.setdefault(name, str(entry["version"]))
    return out


def _pnpm_lock(path: Path) -> dict[str, str]:
    import yaml

    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError("it is not a YAML mapping")
    groups = []
    importers = data.get("importers")
    if isinstance(importers, dict) and isinstance(importers.get("."), dict):  # pnpm 6 and later
        groups = [importers["."].get(k) for k in ("dependencies", "devDependencies", "optionalDependencies")]
    groups += [data.get(k) for k in ("dependencies", "devDependencies", "optionalDependencies")]  # pnpm 5
    out: dict[str, str] = {}
    for group in groups:
        for name, entry in (group or {}).items():
            version = entry.get("version") if isinstance(entry, dict) else entry
            if isinstance(version, (str, int, float)):
                version = re.sub(r"\(.*$", "", str(version)).strip()  # "3.23.8(react@18)": peers after it
                if re.match(r"^\d", version):
                    out.setdefault(name, version)
    return out


def _requirements(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = line.split(" #", 1)[0].strip()
        m = REQUIREMENT.match(line)
        if m:
            out[canonical_name(m.group(1))] = m.group(2)
    return out


def _pyproject(path: Path) -> dict[str, str]:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    out: dict[str, str] = {}
    project = data.get("project") or {}
    lines = list(project.get("dependencies") or [])
    for extra in (project.get("optional-dependencies") or {}).values():
        lines += list(extra or [])
    for line in lines:
        m = REQUIREMENT.match(str(line))
        if m:
            out.setdefault(canonical_name(m.group(1)), m.group(2))
    poetry = (data.get("tool") or {}).get("poetry") or {}
    tables = [poetry.get("dependencies"), poetry.get("dev-dependencies")]
    tables += [g.get("dependencies") for g in (poetry.get("group") or {}).values() if isinstance(g, dict)]
    for table in tables:
        for name, spec in (table or {}).items():
            spec = spec.get("version") if isinstance(spec, dict) else spec
            m = POETRY_EXACT.match(str(spec or "").strip())
            if m and name != "python":
                out.setdefault(canonical_name(name), m.group(1))
    return out


def _installed_python(folder: Path) -> dict[str, str]:
    out = {}
    for env in (".venv", "venv"):
        for info in sorted((folder / env).glob("lib/python*/site-packages/*.dist-info")):
            name, _, version = info.name.removesuffix(".dist-info").partition("-")
            if name and version:
                out.setdefault(canonical_name(name), version)
    return out


def _installed_npm(folder: Path) -> dict[str, str]:
    out = {}
    modules = folder / "node_modules"
    if not modules.is_dir():
        return out
    for manifest in [*modules.glob("*/package.json"), *modules.glob("@*/*/package.json")]:
        try:
            data = json.loads(manifest.read_text(encoding="utf-8"))
            out[str(data["name"])] = str(data["version"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return out


_cache: dict[str, tuple[tuple, ProjectPins]] = {}
_cache_lock = threading.Lock()


def _stamp(folder: Path) -> tuple:
    """What changes when the project's pins may have: its lock and requirement files' sizes and times."""
    files = [folder / n for n in (*LOCKS, "pyproject.toml")] + sorted(folder.glob("requirements*.txt"))
    files += [folder / ".venv", folder / "venv", folder / "node_modules"]
    out = []
    for f in files:
        try:
            st = f.stat()
            out.append((f.name, st.st_mtime_ns, st.st_size))
        except OSError:
            pass
    return tuple(out)


def project_pins(folder: str | Path) -> ProjectPins:
    """`read_project`, read again only when one of the project's files changed."""
    folder = Path(folder).expanduser()
    key = str(folder)
    stamp = _stamp(folder)
    with _cache_lock:
        cached = _cache.get(key)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    pins = read_project(folder)
    with _cache_lock:
        _cache[key] = (stamp, pins)
    return pins


def project_choice(folder: str | Path | None) -> VersionChoice | None:
    """The version choice of the project in `folder` (None when no folder is given)."""
    if not folder:
        return None
    return project_pins(folder).choice()


def versions_for(chosen: VersionChoice | None, project: str | Path | None) -> VersionChoice | None:
    """What a question is answered at: the versions `chosen`, then what the project in `project` pins for
    the libraries they do not name; None: the newest of each. A project folder that is gone is said with
    the answer (its pins are not known)."""
    try:
        pinned = project_choice(project)
    except ProjectError as e:
        pinned = VersionChoice(notes=(str(e),))
    return pinned if chosen is None else chosen.with_defaults(pinned)
