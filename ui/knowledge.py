"""What the Knowledge tab may index from a browser, and how knowledge bases are described.

The CLI may ingest any folder its user can read; the browser may not: anyone who can open
the page could otherwise index (and then read back through citations) any file on the
server. So folders must lie under an allowed root, `..` is refused outright, and anything
else that reads this machine's files follows the same rule, however it is spelled (file: URLs
with any host or %-escapes, ssh to this machine, bundle files): `ingest.sources.local_path`
says where a spec reads. Installed packages are fine. A remote URL (a git repository, a docs
website) is fetched by the server, so it must name what the server may fetch for its doors
(ingest/outbound.py): public addresses, and what `server.fetch_allow` opens; this check refuses
the others up front in one sentence, and the fetch itself checks again, on every connection.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ingest.outbound import Outbound, OutboundRefused
from ingest.sources import is_git_url, is_website_url, local_path


class SourceRefused(ValueError):
    """A source the browser may not index; the message is one clear sentence."""


KB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
PUBLIC_ONLY = Outbound()  # the policy with nothing opened by server.fetch_allow


def allowed_roots(cfg, cwd: Path | None = None) -> list[Path]:
    """The configured roots, or by default the working directory and the data dir's sources/."""
    configured = list(getattr(getattr(cfg, "server", None), "allowed_roots", []) or [])
    roots = [Path(r).expanduser() for r in configured] or [cwd or Path.cwd(), cfg.data_dir / "sources"]
    return [r.resolve() for r in roots]


def outbound_policy(cfg) -> Outbound:
    """What the server may fetch for its doors: public addresses, and what `server.fetch_allow` opens."""
    return Outbound.from_settings(getattr(getattr(cfg, "server", None), "fetch_allow", []))


def check_source(spec: str, roots: list[Path], outbound: Outbound = PUBLIC_ONLY) -> str:
    """Return the spec to ingest, or raise SourceRefused saying why it cannot be. `outbound`: what
    the server may fetch (by default public addresses only)."""
    spec = (spec or "").strip()
    if not spec:
        raise SourceRefused("Give a folder path, a git URL, pkg:NAME or a docs website URL to add.")
    if any(ord(ch) < 32 for ch in spec):
        raise SourceRefused("The source contains control characters; type a plain path, git URL or pkg:NAME.")
    if ".." in re.split(r"[\\/]", spec):
        raise SourceRefused(f"'{spec}' contains '..'; give the folder's full path under an allowed root.")
    if spec.startswith(("llamaindex:", "documents:")):  # a reader runs code: only from the command line
        raise SourceRefused("LlamaIndex readers can only be added from the command line (`devcopilot ingest "
                            "llamaindex:MODULE.Class`).")
    if spec.startswith("pkg:"):
        if not re.fullmatch(r"pkg:[A-Za-z_][\w.-]*", spec):
            raise SourceRefused(f"'{spec}' is not a package name; write pkg: followed by the import name.")
        return spec
    if spec.startswith(("pypi:", "npm:")):  # a published release, fetched from the index pip or npm uses
        from ingest.release_names import ReleaseSpecError, normalize_release

        try:
            return normalize_release(spec)
        except ReleaseSpecError as e:
            raise SourceRefused(str(e)) from None
    folder = local_path(spec)
    if folder is None:  # remote: cloned or fetched into the data dir
        if not (is_git_url(spec) or is_website_url(spec)):
            raise SourceRefused(f"'{spec}' is not a folder, a git URL, a docs website URL or pkg:NAME.")
        _fetchable(spec, outbound)
        return spec
    if not folder.is_absolute():
        folder = roots[0] / folder
    if not _under(folder, roots):
        raise SourceRefused(_outside(spec, roots))
    if is_git_url(spec):  # a local repository under a root, read by git (over ssh: a fetch like any other)
        _fetchable(spec, outbound)
        return spec
    if not folder.exists():
        raise SourceRefused(f"The folder '{spec}' does not exist; check the path.")
    if not folder.is_dir():
        raise SourceRefused(f"'{spec}' is a file, not a folder; give the folder that contains it.")
    return str(folder.resolve())


def _fetchable(spec: str, outbound: Outbound) -> None:
    """SourceRefused unless the server may fetch `spec` (its host resolved now; the fetch checks again)."""
    try:
        outbound.check_url(spec)
    except OutboundRefused as e:
        raise SourceRefused(str(e)) from None


def check_kb(name: str) -> str:
    name = (name or "").strip() or "default"
    if not KB_NAME.match(name):
        raise SourceRefused(f"'{name}' is not a usable knowledge base name; use letters, digits, '.', '_' or '-'.")
    return name


def _under(folder: Path, roots: list[Path]) -> bool:
    try:
        real = folder.resolve()  # follows symbolic links, so a link pointing outside is caught
    except (OSError, RuntimeError):
        return False
    return any(real == r or real.is_relative_to(r) for r in roots)


def _outside(spec: str, roots: list[Path]) -> str:
    return (f"'{spec}' is outside the folders this server may index ({', '.join(str(r) for r in roots)}); "
            "copy or clone it under one of them, or add its parent to server.allowed_roots.")


@dataclass
class KBRow:
    name: str
    files: int
    chunks: int
    sources: int
    last_indexed: str
    embedding: str
    note: str = ""


def kb_rows(index) -> list[KBRow]:
    """One row per knowledge base, read from the catalog (the source of truth) and the writer lock."""
    from indexes.status import knowledge_status

    return [KBRow(kb["name"], kb["files"], kb["chunks"], len(kb["sources"]), kb["last_indexed"] or "never",
                  kb["embedding_model"], kb["state"]) for kb in knowledge_status(index)["knowledge_bases"]]


def source_rows(index, kb: str | None = None) -> list[list]:
    """One row per source: what it was indexed from (commit and tag, package version, folder scan time),
    when, and its state when an ingest of it is running or was interrupted."""
    from indexes.status import knowledge_status

    return [[k["name"], s["spec"], s["kind"], s["origin"], s["files"], s["chunks"],
             s["state"] or s["last_indexed"] or "never"]
            for k in knowledge_status(index)["knowledge_bases"] if kb is None or k["name"] == kb
            for s in k["sources"]]
