"""What changed in a library between two indexed versions: API and docs, each change cited in both.

`what_changed(index, library, from_version, to_version, symbol, kb)` is the one call behind every
door (`devcopilot changes`, the MCP tool `what_changed`, the Coding assistant's tool, GET
/v1/changes, the chat's "what changed in X since V?"). Two versions of a library are two sources of
one KB (`versions_of`); the comparison (`compare`) reads:

- the public API of each version: Python with griffe from the folder the version was indexed from
  (indexes/api_python.py), the other tree-sitter languages from the index's symbol chunks
  (indexes/api_chunks.py, less precise, and the report says so); then symbols added and removed,
  signature changes, deprecations and docstrings changed (indexes/api_symbols.py), the breaking ones
  as griffe's `find_breaking_changes` finds them;
- the doc pages of each version, from the catalog's doc chunks, by path: added, removed, or changed
  (their text differs), with the sections (headings) that changed.

Each change cites both versions (path, lines and link): a symbol added cites where it now is and the
module or class it joined as it was before; one removed, the reverse.
"""
from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from indexes.api_chunks import LANGUAGES as CHUNK_LANGUAGES
from indexes.api_chunks import chunk_api, form_filter
from indexes.api_python import PythonApiError, breaking_changes, load_api
from indexes.api_symbols import ApiSymbol, SymbolChange, diff_apis
from indexes.indexed_files import text_from_chunks
from indexes.search import Index
from indexes.versions import library_versions
from ingest.chunk import Chunk
from ingest.release_names import canonical_name

log = logging.getLogger("devcopilot.changes")

# The kinds of change, in the order listings group them, with their headings.
KINDS = {
    "added": "Added", "removed": "Removed", "signature": "Signature changed", "deprecated": "Deprecated",
    "undeprecated": "No longer deprecated", "docstring": "Docstring changed", "page_added": "Doc pages added",
    "page_removed": "Doc pages removed", "page_changed": "Doc pages changed",
}
MARKS = {"added": "+", "removed": "-", "signature": "~", "deprecated": "!", "undeprecated": "!", "docstring": "~",
         "page_added": "+", "page_removed": "-", "page_changed": "~"}
BREAKING_WORDS = re.compile(r"\b(removed|now required|renamed|moved|kind:)|added \(required")
CHUNK_NOTE = ("{languages}: read from the index's symbol chunks (tree-sitter), less precise than griffe is for "
              "Python: exported declarations only, parameters parsed from each definition's first lines, "
              "re-exports and plain constants not seen.")
GRIFFE_NOTE = "Python: read with griffe from each version's folder; breaking changes as griffe's check finds them."


class ChangesError(ValueError):
    """A comparison that cannot be made as asked; the message is one sentence saying what to do.
    `missing`: something named is not indexed (a KB, a library, a version), not a contradiction."""

    def __init__(self, message: str, missing: bool = True):
        super().__init__(message)
        self.missing = missing


# -- versions of a library in a KB ----------------------------------------------------------------
@dataclass
class Version:
    """One indexed version of a library: a source of the KB."""
    library: str
    version: str
    root: str  # the folder it was read from
    source_id: str
    spec: str = ""
    kind: str = ""
    indexed_at: float | None = None


def normal_name(name: str) -> str:
    """A library's name compared as package indexes do (PEP 503): `Openai_Agents` is `openai-agents`."""
    return canonical_name(name)


def versions_of(index: Index, kb: str, library: str | None = None) -> list[Version]:
    """The indexed versions of `library` in `kb` (every library's when None), oldest first, as
    indexes/versions.py (the one place that knows how versions are recorded) groups the sources."""
    return [v for lib, vs in libraries(index, kb).items() if library is None or normal_name(lib) == normal_name(library)
            for v in vs]


def libraries(index: Index, kb: str) -> dict[str, list[Version]]:
    """Each library of the KB with its versions, oldest first."""
    return {lib: [Version(lib, v.version, v.root, v.source_id, v.spec, v.kinds[0], v.indexed_at) for v in vs]
            for lib, vs in library_versions(index.catalog, kb).items()}


# -- the report -------------------------------------------------------------------------------------
@dataclass
class Place:
    """A citation into one version: the file, the lines and the link of a symbol or a page."""
    version: str
    path: str
    start_line: int
    end_line: int
    link: str
    text: str = ""  # the cited lines as indexed (for the chat's sources)
    language: str = ""
    source_id: str = ""  # the version's source in the catalog

    def cite(self) -> str:
        return f"{self.path}:{self.start_line}-{self.end_line}"

    def to_json(self) -> dict:
        return {"version": self.version, "path": self.path, "start_line": self.start_line,
                "end_line": self.end_line, "link": self.link}


@dataclass
class Change:
    kind: str  # a key of KINDS
    name: str  # the symbol's public qualified name, or the page's path
    what: str  # function, method, class, attribute, interface, ..., page
    summary: str  # one line
    details: list[str] = field(default_factory=list)
    breaking: bool = False
    old: Place | None = None  # the citation into FROM
    new: Place | None = None  # the citation into TO
    old_is_context: bool = False  # `old` cites where an added symbol's container was, not the symbol
    new_is_context: bool = False  # `new` cites where a removed symbol's container is now
    canonical: str = ""  # where a Python symbol is defined (agents.run.Runner for agents.Runner), else its name

    def to_json(self) -> dict:
        return {"kind": self.kind, "name": self.name, "canonical": self.canonical or self.name, "what": self.what,
                "summary": self.summary,
                "details": self.details, "breaking": self.breaking,
                "from": self.old.to_json() | {"context": self.old_is_context} if self.old else None,
                "to": self.new.to_json() | {"context": self.new_is_context} if self.new else None}


@dataclass
class ChangeReport:
    library: str
    kb: str
    from_version: str
    to_version: str
    changes: list[Change]
    notes: list[str] = field(default_factory=list)  # how each language was read
    symbol: str = ""

    def counts(self) -> dict[str, int]:
        out = {k: 0 for k in KINDS}
        for c in self.changes:
            out[c.kind] += 1
        return {k: n for k, n in out.items() if n}

    def title(self) -> str:
        counts = self.counts()
        said = ", ".join(f"{n} {KINDS[k].lower()}" for k, n in counts.items()) or "no changes found"
        about = f" for `{self.symbol}`" if self.symbol else ""
        return f"{self.library} {self.from_version} → {self.to_version} (KB '{self.kb}'){about}: {said}"

    def to_json(self) -> dict:
        return {"library": self.library, "kb": self.kb, "from": self.from_version, "to": self.to_version,
                "symbol": self.symbol, "counts": self.counts(), "notes": self.notes,
                "changes": [c.to_json() for c in self.changes]}


def listing(report: ChangeReport, max_chars: int | None = None, links: bool = True,
            cite: Callable[[Place], str] | None = None, max_changes: int | None = None,
            more: str = "ask about one symbol, or read the JSON") -> str:
    """The report as text, grouped by kind; each change with its citations into both versions
    (`cite` writes one: default, its path, lines and link), at most `max_chars` long."""
    lines = [report.title()] + [f"({n})" for n in report.notes]
    size = sum(len(ln) + 1 for ln in lines)
    shown = 0
    for kind, heading in KINDS.items():
        group = [c for c in report.changes if c.kind == kind]
        if group:
            lines += ["", f"{heading} ({len(group)})"]
        for c in group:
            entry = _entry(c, report, links, cite)
            size += sum(len(ln) + 1 for ln in entry)
            if (max_chars is not None and size > max_chars - 150) or (max_changes is not None and shown >= max_changes):
                left = len(report.changes) - shown
                lines.append(f"\n({left} more change{'s' if left != 1 else ''} left out to stay short; {more}.)")
                return "\n".join(lines)
            lines += entry
            shown += 1
    if not report.changes:
        lines.append("")
        lines.append(f"No changes found between {report.from_version} and {report.to_version}"
                     + (f" for `{report.symbol}`." if report.symbol else "."))
    return "\n".join(lines)


def _entry(c: Change, report: ChangeReport, links: bool, cite: Callable[[Place], str] | None) -> list[str]:
    flag = " [breaking]" if c.breaking else ""
    out = [f"  {MARKS[c.kind]} {c.name} ({c.what}){flag}: {c.summary}"]
    out += [f"      · {d}" for d in c.details[:8]] + ([f"      · … {len(c.details) - 8} more"]
                                                       if len(c.details) > 8 else [])
    for label, place, version, context in (("from", c.old, report.from_version, c.old_is_context),
                                           ("to", c.new, report.to_version, c.new_is_context)):
        if place is None:
            out.append(f"      {label} {version}: (not there)")
            continue
        where = cite(place) if cite is not None else place.cite() + (f"  {place.link}" if links and place.link else "")
        out.append(f"      {label} {version}: {where}" + (" (where it would be)" if context else ""))
    return out


# -- comparing two versions ---------------------------------------------------------------------------
def what_changed(index: Index, library: str, from_version: str, to_version: str, symbol: str = "",
                 kb: str | None = None) -> ChangeReport:
    """What changed in `library` from `from_version` to `to_version` (as indexed in `kb`, default:
    the KB that holds the library), limited to `symbol` when given. ChangesError (one sentence) for an
    unknown KB or library, a version not indexed, or the same version twice."""
    kb, versions = find_library(index, library, kb)
    old = pick_version(versions, from_version, kb, library, newest=False)
    new = pick_version(versions, to_version, kb, library, newest=True)
    if old.source_id == new.source_id:
        raise ChangesError(f"FROM and TO are the same version of {library} ({old.version}); give two different "
                           "versions, e.g. " + ", ".join(v.version for v in versions[-2:]) + ".", missing=False)
    return compare(index, kb, old, new, symbol.strip().strip("`").removesuffix("()"))


def find_library(index: Index, library: str, kb: str | None) -> tuple[str, list[Version]]:
    """The KB holding `library` (`kb`, or the first KB that does) and its versions there."""
    names = [i.name for i in index.catalog.kbs()]
    if not names:
        raise ChangesError("Nothing is indexed yet; index two versions of a library first, e.g. `devcopilot ingest "
                           "pypi:NAME==1.0 pypi:NAME==1.1`.")
    if kb is not None and kb not in names:
        raise ChangesError(f"There is no knowledge base '{kb}'; the knowledge bases are {', '.join(names)}.")
    known: list[str] = []
    for name in [kb] if kb else names:
        found = versions_of(index, name, library)
        if found:
            return name, found
        known += [lib for lib in libraries(index, name) if lib not in known]
    where = f"in KB '{kb}'" if kb else f"in {'KB ' + repr(names[0]) if len(names) == 1 else 'any knowledge base'}"
    raise ChangesError(f"No library '{library}' is indexed {where}; the libraries there are "
                       f"{', '.join(sorted(known)) or 'none'}.")


def pick_version(versions: list[Version], wanted: str, kb: str, library: str, newest: bool) -> Version:
    """The indexed version `wanted` names: exactly, with or without a leading v, or as a prefix
    (`0.23` is 0.23.x: the oldest such for FROM, the newest for TO)."""
    wanted = wanted.strip()
    bare = wanted.lstrip("vV")
    exact = [v for v in versions if v.version == wanted or v.version.lstrip("vV") == bare]
    prefixed = [v for v in versions if v.version.lstrip("vV").startswith(bare + ".")]
    found = exact or prefixed
    if found and bare:
        return found[-1] if newest else found[0]
    listed = ", ".join(v.version or "(no version)" for v in versions)
    raise ChangesError(f"{library} {wanted} is not indexed in KB '{kb}'; its versions are {listed} — index it "
                       f"with `{ingest_hint(versions, library, wanted, kb)}`")


def ingest_hint(versions: list[Version], library: str, version: str, kb: str) -> str:
    """The command that indexes another version of a library, from how its versions were indexed."""
    on = f" --kb {kb}" if kb != "default" else ""
    specs = [v.spec for v in versions]
    if any(s.startswith("npm:") for s in specs):
        return f"devcopilot ingest npm:{library}@{version}{on}"
    git = next((v.spec for v in versions if v.kind == "git"), "")
    if git:
        return f"devcopilot ingest {git} --ref {version}{on}"
    if any(Path(v.root, "package.json").is_file() for v in versions):
        return f"devcopilot ingest npm:{library}@{version}{on}"
    return f"devcopilot ingest pypi:{library}=={version}{on}"


@dataclass
class Side:
    """One version as the comparison reads it."""
    version: Version
    chunks: list[Chunk]
    files: set[str]

    def file_chunks(self) -> dict[str, list[Chunk]]:
        out: dict[str, list[Chunk]] = defaultdict(list)
        for c in self.chunks:
            out[c.path].append(c)
        return out


def source_chunks(index: Index, kb: str, source_id: str) -> list[Chunk]:
    """Every chunk a version (a source) holds, as the catalog gives them."""
    # each as this version holds it: a chunk both versions share is cited at this version's file
    ids = index.catalog.chunk_ids_of_source(kb, source_id)
    return list(index.catalog.get_chunks(kb, ids, sources={source_id}).values())


def side_of(index: Index, kb: str, v: Version) -> Side:
    return Side(v, source_chunks(index, kb, v.source_id), set(index.catalog.manifest(kb, v.source_id)))


def compare(index: Index, kb: str, old: Version, new: Version, symbol: str = "") -> ChangeReport:
    """The changes from `old` to `new` (two versions of one library in `kb`), limited to `symbol`."""
    a, b = side_of(index, kb, old), side_of(index, kb, new)
    notes: list[str] = []
    old_api, new_api, breaking = read_apis(a, b, notes)
    cite = Citations(a, b)
    changes = [cite.change(sc, old_api, new_api, breaking.get(sc.name, [])) for sc in diff_apis(old_api, new_api)]
    changed = {c.name for c in changes}
    for name, reasons in breaking.items():  # what griffe finds and our walk does not (a symbol it deems public)
        if name not in changed:
            changes.append(Change("signature", name, "symbol", "; ".join(reasons), list(reasons), True))
    changes += page_changes(a, b, cite)
    if symbol:
        changes = [c for c in changes if about(c, symbol)]
    return ChangeReport(old.library, kb, old.version, new.version, changes, notes, symbol)


def about(c: Change, symbol: str) -> bool:
    """Whether a change is about `symbol`: the symbol itself, a member of it, or a doc page that names it."""
    if c.kind.startswith("page_"):
        text = "\n".join(p.text for p in (c.old, c.new) if p is not None) + "\n".join(c.details)
        return symbol in text or ".".join(symbol.split(".")[-2:]) in text
    return f".{symbol}." in f".{c.name}."


LANGUAGE_NAMES = {"typescript": "TypeScript", "tsx": "TSX", "javascript": "JavaScript", "go": "Go", "java": "Java",
                  "rust": "Rust", "python": "Python (its folder could not be read)"}


def read_apis(a: Side, b: Side, notes: list[str]) \
        -> tuple[dict[str, ApiSymbol], dict[str, ApiSymbol], dict[str, list[str]]]:
    """Both versions' public symbols, and griffe's breaking changes by symbol; `notes` learns how
    each language was read."""
    pythons = None
    if any(p.endswith((".py", ".pyi")) for p in a.files | b.files):
        try:
            pythons = (_python_api(a), _python_api(b))
        except PythonApiError as e:
            log.info("Python read from the chunks: %s", e)
    wanted = form_filter(a.files, b.files)
    old_api = _api(a, pythons[0] if pythons else None, wanted)
    new_api = _api(b, pythons[1] if pythons else None, wanted)
    _note(notes, a, b, pythons is not None, wanted)
    return old_api, new_api, breaking_changes(*pythons) if pythons else {}


def read_api(side: Side) -> dict[str, ApiSymbol]:
    """One version's public symbols (Python through griffe when it can, else the symbol chunks)."""
    python = None
    if any(p.endswith((".py", ".pyi")) for p in side.files):
        try:
            python = _python_api(side)
        except PythonApiError as e:
            log.info("Python read from the chunks: %s", e)
    return _api(side, python, form_filter(side.files, side.files))


def _python_api(side: Side):
    if not Path(side.version.root).is_dir():
        raise PythonApiError(f"the folder {side.version.root} is no longer on disk")
    return load_api(Path(side.version.root), side.files, (side.version.source_id, side.version.indexed_at))


def _api(side: Side, python, wanted) -> dict[str, ApiSymbol]:
    languages = CHUNK_LANGUAGES - ({"python"} if python is not None else set())
    out = dict(python.symbols) if python is not None else {}
    out.update(chunk_api([c for c in side.chunks if c.language in languages], wanted))
    return out


def _note(notes: list[str], a: Side, b: Side, griffe: bool, wanted) -> None:
    if griffe:
        notes.append(GRIFFE_NOTE)
    languages = CHUNK_LANGUAGES - ({"python"} if griffe else set())
    read = sorted({c.language for c in a.chunks + b.chunks if c.kind == "code" and c.symbol
                   and c.language in languages and wanted(c.path)})
    if read:
        notes.append(CHUNK_NOTE.format(languages=", ".join(LANGUAGE_NAMES[lang] for lang in read)))


class Citations:
    """Places in both versions: a symbol's lines, or those of its container; their links and text."""

    def __init__(self, a: Side, b: Side):
        self.sides = (a, b)
        self.files = (a.file_chunks(), b.file_chunks())

    def place(self, side: int, path: str, start: int, end: int) -> Place:
        v = self.sides[side].version
        chunks = self.files[side].get(path, [])
        web = next((c.link for c in chunks if c.link.startswith(("http://", "https://"))), "")
        link = anchored(web, start, end) if web else f"{Path(v.root, path).as_posix()}#L{start}-L{end}"
        text = "\n".join(text_from_chunks(chunks).splitlines()[start - 1:end]) if chunks else ""
        language = chunks[0].language if chunks else ""
        return Place(v.version, path, start, end, link, text, language, v.source_id)

    def of(self, side: int, s: ApiSymbol) -> Place:
        return self.place(side, s.path, s.start_line, s.end_line)

    def context(self, side: int, s: ApiSymbol, api: dict[str, ApiSymbol]) -> Place | None:
        """Where a symbol missing from one version would be there: its class or module, else its file."""
        parent = s.name.rpartition(".")[0]
        while parent:
            found = api.get(parent) or next((o for o in api.values() if o.name == parent and o.path == s.path), None)
            if found is not None:
                return self.of(side, found)
            parent = parent.rpartition(".")[0]
        chunks = self.files[side].get(s.path)
        if chunks:
            return self.place(side, s.path, 1, max(c.end_line for c in chunks))
        return None

    def change(self, sc: SymbolChange, old_api: dict[str, ApiSymbol], new_api: dict[str, ApiSymbol],
               griffe_says: list[str]) -> Change:
        old = self.of(0, sc.old) if sc.old else self.context(0, sc.new, old_api)
        new = self.of(1, sc.new) if sc.new else self.context(1, sc.old, new_api)
        details = list(sc.details)
        breaking = sc.breaking or bool(griffe_says) or (sc.kind == "signature" and any(
            BREAKING_WORDS.search(d) for d in details))
        if sc.kind in ("added", "removed"):
            if sc.kind == "added" and sc.new.deprecated:
                details.append(f"deprecated already: {sc.new.deprecated}")
            summary, details = sc.kind + (f" ({'; '.join(details)})" if details else ""), []
        else:
            summary, details = summarize(details)
        symbol = sc.new or sc.old
        return Change(sc.kind, sc.name, sc.what, summary, details, breaking and sc.kind != "added", old, new,
                      old_is_context=sc.old is None and old is not None,
                      new_is_context=sc.new is None and new is not None, canonical=symbol.canonical or sc.name)


def summarize(details: list[str], width: int = 160) -> tuple[str, list[str]]:
    """(one line, the lines under it): the details themselves when they fit on the line."""
    joined = "; ".join(details)
    if len(joined) <= width:
        return joined, []
    return f"{len(details)} changes", details


def place_chunk(place: Place, name: str, kind: str = "code") -> Chunk:
    """A citation into one version as a chunk the chat can cite: its lines as indexed, titled with the
    name and the version."""
    return Chunk(text=place.text, path=place.path, start_line=place.start_line, end_line=place.end_line, kind=kind,
                 language=place.language, symbol=f"{name} @ {place.version}", source_id=place.source_id,
                 link=place.link)


def anchored(link: str, start: int, end: int) -> str:
    """A forge link anchored at lines start..end, in the forge's own anchor style."""
    base = re.sub(r"#L\d+(-L?\d+)?$", "", link)
    if "gitlab" in base.split("/")[2].lower():
        return f"{base}#L{start}-{end}"
    return f"{base}#L{start}-L{end}"


# -- doc pages --------------------------------------------------------------------------------------
def _sections(chunks: list[Chunk]) -> dict[str, tuple[str, int, int]]:
    """A page's sections by heading trail: (text, first line, last line)."""
    out: dict[str, list[Chunk]] = defaultdict(list)
    for c in sorted(chunks, key=lambda c: c.start_line):
        out[" > ".join(c.headings) or "(top of the page)"].append(c)
    return {k: ("\n".join(c.text for c in cs).strip(), cs[0].start_line, max(c.end_line for c in cs))
            for k, cs in out.items()}


def page_changes(a: Side, b: Side, cite: Citations) -> list[Change]:
    """Doc pages added, removed, or whose text changed (with the sections that did), by path."""
    old_pages = {p: cs for p, cs in cite.files[0].items() if cs and cs[0].kind == "doc"}
    new_pages = {p: cs for p, cs in cite.files[1].items() if cs and cs[0].kind == "doc"}
    out: list[Change] = []
    for path in sorted(old_pages.keys() | new_pages.keys()):
        old, new = old_pages.get(path), new_pages.get(path)
        if old is None or new is None:
            chunks = new or old
            side = 1 if old is None else 0
            place = cite.place(side, path, 1, max(c.end_line for c in chunks))
            title = next((c.headings[0] for c in sorted(chunks, key=lambda c: c.start_line) if c.headings), "")
            kind = "page_added" if old is None else "page_removed"
            out.append(Change(kind, path, "page", ("added" if old is None else "removed")
                              + (f": {title}" if title else ""), [], False,
                              place if side == 0 else None, place if side == 1 else None))
            continue
        before, after = _sections(old), _sections(new)
        if [t for t, _, _ in before.values()] == [t for t, _, _ in after.values()] and before.keys() == after.keys():
            continue
        details = [f"section '{h}' changed" for h in before if h in after and before[h][0] != after[h][0]]
        details += [f"section '{h}' added" for h in after if h not in before]
        details += [f"section '{h}' removed" for h in before if h not in after]
        details = details or ["sections reordered"]
        first = next((h for h in list(before) + list(after) if before.get(h, ("",))[0] != after.get(h, ("",))[0]), "")
        at_old = before.get(first, ("", 1, max(c.end_line for c in old)))
        at_new = after.get(first, ("", 1, max(c.end_line for c in new)))
        summary, listed = summarize(details)
        out.append(Change("page_changed", path, "page", summary, listed, False,
                          cite.place(0, path, at_old[1], at_old[2]), cite.place(1, path, at_new[1], at_new[2])))
    return out
