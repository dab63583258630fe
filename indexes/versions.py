"""The versions of each library a knowledge base holds, and which one a question is answered from.

Each source records the library it holds and its version (indexes/catalog.py: a release's or an
installed package's version, a git source's tag or commit, a folder's commit). Two sources of one
library at two versions live side by side in a KB, sharing what they have in common.

A question is answered from one version of each library: the one the asker pins (`--version`, the
API's "version"/"versions", an MCP argument, the web chat's selector), else the one their project
pins (`--project DIR`, `[project] path`, an MCP client's root: indexes/project.py), else the newest
indexed. Newest is by the ecosystem's order: PEP 440 for Python (pypi:, pkg:), semver for npm,
tags read as versions for git, else the order they were indexed in. A KB holding one version of
each library is searched as it always was. A pinned version that is not indexed is said, with the
command that indexes it, and the newest is used meanwhile. "all" reads every version at once.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from ingest.release_names import canonical_name, semver_key
from ingest.sources import split_git_ref

EVERY = ("all", "*", "every")  # a version word: every version side by side
NEWEST = ("", "newest", "latest")


def ecosystem(spec: str) -> str:
    """"python", "npm" or "" for a source spec."""
    return "python" if spec.startswith(("pypi:", "pkg:")) else "npm" if spec.startswith("npm:") else ""


def _python_key(version: str):
    from packaging.version import InvalidVersion, Version

    try:
        return Version(version)
    except InvalidVersion:
        return None


def same_version(a: str, b: str) -> bool:
    """True when two spellings name one version ("v1.2.0", "1.2", "1.2.0")."""
    a, b = a.strip(), b.strip()
    if a == b:
        return True
    ka, kb = _python_key(a), _python_key(b)
    return ka is not None and ka == kb


@dataclass
class LibraryVersion:
    """One version of a library in a KB: the sources holding it (usually one)."""
    library: str
    version: str
    source_ids: list[str]
    specs: list[str]
    roots: list[str]
    kinds: list[str]
    indexed_at: float

    @property
    def source_id(self) -> str:
        return self.source_ids[0]

    @property
    def root(self) -> str:
        """The folder its first source was read from (kept on disk: a release, a clone, a folder)."""
        return self.roots[0]

    @property
    def spec(self) -> str:
        return self.specs[0]

    def label(self) -> str:
        return f"{self.library} {self.version}".strip()


def _order(versions: list[LibraryVersion]) -> list[LibraryVersion]:
    """Oldest first: by the ecosystem's version order when every version reads as one, else by indexing time."""
    kind = {ecosystem(s) for v in versions for s in v.specs}
    if kind == {"npm"} and all(semver_key(v.version)[0] >= 0 for v in versions):
        return sorted(versions, key=lambda v: semver_key(v.version))
    keys = [_python_key(v.version) for v in versions]
    if all(k is not None for k in keys):
        return [v for _, v in sorted(zip(keys, versions), key=lambda kv: kv[0])]
    return sorted(versions, key=lambda v: v.indexed_at)


def version_label(source: dict) -> str:
    """The version a source row holds: its recorded version, but a checkout at a tag (a folder or a git URL's
    default branch, recorded by commit since a branch moves) is that tag's version."""
    version, ref, commit = source["version"] or "", source.get("ref") or "", source.get("commit") or ""
    if ref.startswith("tag ") and version and commit.startswith(version):
        return ref[4:]
    return version


def library_versions(catalog, kb: str) -> dict[str, list[LibraryVersion]]:
    """library -> its versions in the KB, oldest first. Sources holding no library (a website) are left out."""
    grouped: dict[tuple[str, str], LibraryVersion] = {}
    names: dict[str, str] = {}
    for s in catalog.sources(kb):
        if not s["library"]:
            continue
        key = canonical_name(s["library"])
        names.setdefault(key, s["library"])
        version = version_label(s)
        found = next((v for (lib, _), v in grouped.items() if lib == key and same_version(v.version, version)), None)
        if found is None:
            grouped[(key, version)] = LibraryVersion(names[key], version, [s["id"]], [s["spec"]], [s["root"]],
                                                     [s["kind"]], s["indexed_at"] or s["scanned_at"] or 0.0)
        else:
            found.source_ids.append(s["id"])
            found.specs.append(s["spec"])
            found.roots.append(s["root"])
            found.kinds.append(s["kind"])
    out: dict[str, list[LibraryVersion]] = {}
    for (key, _), v in grouped.items():
        out.setdefault(names[key], []).append(v)
    return {lib: _order(vs) for lib, vs in out.items()}


def versions_of(index_or_catalog, kb: str, library: str) -> list[LibraryVersion]:
    """The versions of `library` indexed in `kb`, oldest first ([] when it holds none)."""
    catalog = getattr(index_or_catalog, "catalog", index_or_catalog)
    key = canonical_name(library)
    return next((vs for lib, vs in library_versions(catalog, kb).items() if canonical_name(lib) == key), [])


def indexed_versions(sources: list[dict]) -> dict[str, list[str]]:
    """library -> its versions, oldest first, from `Catalog.sources(kb)` rows (for status and MCP)."""

    class _Rows:
        def sources(self, _kb):
            return sources

    return {lib: [v.version for v in vs] for lib, vs in library_versions(_Rows(), "").items()}


# -- choosing ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Pin:
    library: str  # "" = the KB's library with several versions (a bare --version)
    version: str
    origin: str = ""  # who pins it, for the sentences: "--version", "uv.lock in /work/app"


@dataclass(frozen=True)
class VersionChoice:
    """Which version of each library to answer from: the pins, else the newest; `every` reads all at once."""
    pins: tuple[Pin, ...] = ()
    every: bool = False
    notes: tuple[str, ...] = ()  # said with the answer (a lock file that could not be read)
    newest: bool = False  # asked for by name: the newest of each library, whatever a project pins

    @classmethod
    def parse(cls, version: str | None = None, library: str | None = None, versions: dict | None = None,
              origin: str = "") -> VersionChoice:
        """From a door's arguments: `version` (with `library`, or for the KB's library with several
        versions), or `versions` {library: version}; "all" reads every version, "newest" (or nothing) the
        newest. ValueError, one sentence, for what cannot be used."""
        pins: list[Pin] = []
        every = newest = False
        for lib, ver in ([(library or "", version)] if version is not None else []) + list((versions or {}).items()):
            if not isinstance(lib, str) or not isinstance(ver, str):
                raise ValueError("Versions are given as text: a version such as \"0.24.0\", \"newest\" or \"all\", "
                                 "by library name.")
            ver = ver.strip()
            if ver.lower() in EVERY:
                every = True
            elif ver.lower() in NEWEST:
                newest = newest or not lib  # "newest" for one library is that library unpinned
            else:
                if len(ver) > 100 or not re.fullmatch(r"[\w.+!~/-]+", ver):
                    raise ValueError(f"'{ver[:100]}' is not a version; give one such as 0.24.0, or \"newest\" or "
                                     "\"all\".")
                pins.append(Pin(lib.strip(), ver, origin))
        if library and version is None:
            raise ValueError("A library names whose version to use; give the version too (--version V).")
        return cls(tuple(pins), every, newest=newest)

    def with_defaults(self, fallback: VersionChoice | None) -> VersionChoice:
        """These pins, then the fallback's (a project's) for the libraries these do not name."""
        if fallback is None or self.every or self.newest:
            return self
        named = {canonical_name(p.library) for p in self.pins}
        loose = any(not p.library for p in self.pins)
        extra = tuple(p for p in fallback.pins if canonical_name(p.library) not in named and not loose)
        return VersionChoice(self.pins + extra, False, self.notes + fallback.notes)

    @property
    def chosen(self) -> bool:
        return bool(self.pins) or self.every


@dataclass(frozen=True)
class Missing:
    """A pinned version the KB does not hold: said, with how to index it, while another is used."""
    kb: str
    library: str
    version: str
    using: str  # the version answered from instead
    indexed: tuple[str, ...]
    spec: str  # the source that would index it ("" when none is known: a folder)
    origin: str = ""

    @property
    def command(self) -> str:
        if not self.spec:
            return ""
        url, ref = split_git_ref(self.spec)
        if ref and not self.spec.startswith(("pypi:", "npm:")):
            return f"devcopilot ingest {url} --ref {ref} --kb {self.kb}"
        return f"devcopilot ingest {self.spec} --kb {self.kb}"

    def sentence(self) -> str:
        by = f" (pinned by {self.origin})" if self.origin else ""
        how = f"; index it with `{self.command}`" if self.command else ""
        return (f"{self.library} {self.version}{by} is not indexed in knowledge base '{self.kb}' (it has "
                f"{', '.join(self.indexed)}); answering from {self.using}{how}.")


@dataclass
class Scope:
    """What one KB is searched in for a question: its sources at the chosen versions."""
    kb: str
    sources: frozenset[str] | None  # None: every source (one version of each library, or "all")
    answered: dict[str, str] = field(default_factory=dict)  # library -> version, where a choice was made
    missing: list[Missing] = field(default_factory=list)
    unmatched: list[Pin] = field(default_factory=list)  # pins no library of the KB with known versions took


def _offer(library: str, version: str, versions: list[LibraryVersion]) -> str:
    """The source spec that would index `version` of `library`, from how its other versions were indexed."""
    for v in reversed(versions):
        for spec, kind in zip(v.specs, v.kinds):
            if spec.startswith(("pypi:", "pkg:")):
                return f"pypi:{canonical_name(library)}=={version}"
            if spec.startswith("npm:"):
                return f"npm:{library}@{version.removeprefix('v')}"
            if kind == "git":
                url, _ = split_git_ref(spec)
                tagged = any(x.version.startswith("v") for x in versions)
                return f"{url}#{'v' + version.removeprefix('v') if tagged else version}"
    return ""


def scope_for(catalog, kb: str, choice: VersionChoice | None = None) -> Scope:
    """The sources of `kb` to search for `choice` (None: the newest of each library)."""
    choice = choice or VersionChoice()
    libs = library_versions(catalog, kb)
    if choice.every or not libs:
        return Scope(kb, None, unmatched=[] if choice.every else list(choice.pins))
    pins = {canonical_name(p.library): p for p in choice.pins if p.library}
    loose = next((p for p in choice.pins if not p.library), None)
    several = [lib for lib, vs in libs.items() if len(vs) > 1]
    aimed: list[str] = []
    if loose is not None:  # a bare version: the libraries that have it, else those with several versions, or
        # the only library; one whose version is unknown (a folder outside git) takes no pin
        versioned = [lib for lib, vs in libs.items() if any(v.version for v in vs)]
        having = [lib for lib in versioned if any(same_version(v.version, loose.version) for v in libs[lib])]
        aimed = having or several or (versioned if len(libs) == 1 else [])
        for lib in aimed:
            pins.setdefault(canonical_name(lib), Pin(lib, loose.version, loose.origin))
    allowed: set[str] = set()
    scope = Scope(kb, None)
    for lib, versions in libs.items():
        pin = pins.get(canonical_name(lib))
        pick = versions[-1]
        if pin is not None and not any(v.version for v in versions):
            pin = None  # no version known to compare with (a folder outside git): it is what there is
        if pin is not None:
            match = [v for v in versions if same_version(v.version, pin.version)]
            if match:
                pick = match[0]
            else:
                scope.missing.append(Missing(kb, lib, pin.version, pick.version, tuple(v.version for v in versions),
                                             _offer(lib, pin.version, versions), pin.origin))
        if pin is not None or len(versions) > 1:
            scope.answered[lib] = pick.version
        allowed.update(pick.source_ids)
    if several:
        labels = catalog.source_labels(kb)
        allowed.update(sid for sid, (lib, _) in labels.items() if not lib)  # websites and the like: always read
        scope.sources = frozenset(allowed)
    known = {canonical_name(lib) for lib, vs in libs.items() if any(v.version for v in vs)}
    scope.unmatched = [p for p in choice.pins if (canonical_name(p.library) not in known if p.library
                                                  else not known.intersection(map(canonical_name, aimed)))]
    return scope


def unmatched_notes(catalog, scopes: dict[str, Scope]) -> list[str]:
    """A sentence for each version asked for that none of the KBs searched (`scopes`, KB -> its scope) could take
    (a library none holds, a bare version no library has), naming what each holds; the newest is read meanwhile.
    A project's pins are not said: a project pins many libraries the KBs need not hold."""
    if not scopes:
        return []
    first, *rest = scopes.values()
    common = [p for p in first.unmatched if not p.origin and all(p in s.unmatched for s in rest)]
    out = []
    for pin in dict.fromkeys(common):
        held = []
        for kb in scopes:
            libs = [f"{lib} {', '.join(v.version for v in vs)}" for lib, vs in library_versions(catalog, kb).items()
                    if any(v.version for v in vs)]
            held.append(f"'{kb}' holds " + (" and ".join(libs) if libs else "no library with a known version"))
        asked = f"{pin.library} {pin.version}" if pin.library else f"Version {pin.version}"
        out.append(f"{asked} matches nothing indexed ({'; '.join(held)}); answering from what is there.")
    return out


def side_by_side(catalog, kb: str) -> set[str]:
    """The libraries of which `kb` holds several versions (their citations say which)."""
    return {lib for lib, vs in library_versions(catalog, kb).items() if len(vs) > 1}


def choices(catalog, kbs: list[str]) -> list[tuple[str, str, str]]:
    """(label, library, version) of every version a selector may offer, over these KBs, newest first."""
    out: dict[tuple[str, str], str] = {}
    for kb in kbs:
        for lib, versions in library_versions(catalog, kb).items():
            for v in reversed(versions):
                out.setdefault((lib, v.version), f"{lib} {v.version}")
    return [(label, lib, ver) for (lib, ver), label in out.items()]


def describe_versions(catalog, kb: str) -> str:
    """"openai-agents 0.23.1, 0.24.0; zod 3.23.8" for the libraries of which the KB holds several versions."""
    return "; ".join(f"{lib} {', '.join(v.version for v in vs)}" for lib, vs in library_versions(catalog, kb).items()
                     if len(vs) > 1)
