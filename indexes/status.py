"""What is indexed, from what, and in what state: one description for `devcopilot status`, the
Knowledge API and tab, and the citations.

Each source records what it was indexed from (a git commit and its tag or branch, a package's
version, a folder's scan time) and when. Its state comes from the catalog and the writer lock
together: begun and not finished while a writer holds the lock is "being indexed now"; without a
writer, whoever was killed (an ingest, a server running one), it is "interrupted".

Whatever text was stored (a source's spec, a job's description in the writer lock) is shown escaped
where it is not text (`escaped`): a lone surrogate or a NUL cannot break `status` or the Knowledge API.
"""
from __future__ import annotations

import re
import time
from pathlib import Path

from indexes.versions import indexed_versions
from indexes.writer import Holder, holder, running_server

UNPRINTABLE = re.compile("[\x00\ud800-\udfff]")


def escaped(text: str) -> str:
    """`text` with a lone surrogate or a NUL written as its escape (`\\ud800`), so that it can be
    printed, encoded as UTF-8 and stored; other text unchanged."""
    return UNPRINTABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _shown(value):
    """A status document with every string `escaped`."""
    if isinstance(value, str):
        return escaped(value)
    if isinstance(value, dict):
        return {_shown(k): _shown(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shown(v) for v in value]
    return value


def when(ts: float | None) -> str | None:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else None


def origin_text(source: dict) -> str:
    """What a source was indexed from, e.g. "git 1a2b3c4d5e6f (tag v1.2)", "package 0.24.0",
    "pypi release 0.24.0 (sha256:1a2b3c4d5e6f…)", "folder scanned 2025-11-28 04:20:11, version 1.2"."""
    version, ref = source.get("version") or "", source.get("ref") or ""
    at = f" ({ref})" if ref else ""
    if source["kind"] == "git":
        commit = (source.get("commit") or "")[:12] or version  # a source at a tag: its version is the tag
        return f"git {commit}{at}" if commit else "git"
    if source["kind"] == "release":
        digest = source.get("digest") or ""
        where = "npm" if source["spec"].startswith("npm:") else "pypi"
        return f"{where} release {version}" + (f" ({digest[:19]}…)" if digest else "")
    if source["kind"] == "package":
        return f"package {version}" if version else "package (version unknown)"
    scanned = f"folder scanned {when(source.get('scanned_at'))}" if source.get("scanned_at") else "folder"
    if source.get("commit"):  # a checkout: its commit is its version
        return scanned + f", git {source['commit'][:12]}{at}"
    return scanned + (f", version {version}" if version else "")  # as the project's own metadata declares it


def citation_origin(source: dict) -> str:
    """The line a citation's tooltip shows: where its source was indexed from, and when."""
    indexed = when(source.get("indexed_at"))
    return f"{source['spec']}: {origin_text(source)}" + (f"; indexed {indexed}" if indexed else "")


def state_text(unfinished: bool, writer: Holder | None, since: float | None) -> str:
    """'' when finished; else who is indexing it now (`writer`: the lock's holder, when it is the
    process writing this KB), or that it was interrupted."""
    if not unfinished:
        return ""
    if writer is not None:
        return f"being indexed now by {writer.describe()}"
    stamp = f" (started {when(since)})" if since else ""
    return f"interrupted{stamp}: the ingest stopped before it finished; run ingest again to complete it"


def knowledge_status(index) -> dict:
    """Every KB and its sources, with what each was indexed from, when, and its state."""
    data_dir = Path(index.cfg.data_dir)
    writer = holder(data_dir)
    catalog = index.catalog
    kbs = []
    for info in catalog.kbs():
        sources = catalog.sources(info.name)
        started = max((s["scanned_at"] or 0 for s in sources), default=0) or None
        # The lock's holder writes this KB only if it is the process that began writing it: another
        # KB's writer must not make a KB a killed writer left look as if it were being indexed.
        this_writer = writer if writer is not None and catalog.writer_of(info.name) == writer.pid else None
        kb_state = state_text(info.dirty, this_writer, started)
        kbs.append({
            "name": info.name, "embedding_model": info.embed_model, "store": info.store,
            "versions": indexed_versions(sources),
            "files": sum(s["files"] for s in sources), "chunks": catalog.count_chunks(info.name),
            "last_indexed": when(info.indexed_at), "interrupted": info.dirty and writer is None, "state": kb_state,
            "sources": [{"spec": s["spec"], "kind": s["kind"], "library": s["library"], "version": s["version"],
                         "ref": s["ref"], "commit": s["commit"], "digest": s["digest"],
                         "origin": origin_text(s), "scanned_at": when(s["scanned_at"]), "files": s["files"],
                         "chunks": s["chunks"], "skipped": s["skipped"], "include": s["include"],
                         "exclude": s["exclude"], "last_indexed": when(s["indexed_at"]),
                         "state": state_text(s["unfinished"] or (info.dirty and s["indexed_at"] is None),
                                             this_writer, s["scanned_at"])}
                        for s in sources]})
    server = running_server(data_dir)
    return _shown({"knowledge_bases": kbs, "writer": writer.describe() if writer else None,
                   "server": {"pid": server.pid, "url": server.url} if server else None})
