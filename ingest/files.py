"""Walk a source folder: the files worth indexing, and a count of those skipped and why."""
from __future__ import annotations

import errno
import fnmatch
import hashlib
import os
import stat
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pathspec

from ingest.languages import BINARY_EXTENSIONS, classify

VENDORED_DIRS = {
    "node_modules", "vendor", "vendors", "third_party", "third-party", "__pycache__", "venv",
    "site-packages", "bower_components", "Pods",
}


@dataclass
class SourceFile:
    path: str  # relative to the source root, '/' separated
    abspath: Path
    kind: str
    language: str
    data: bytes

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def text(self) -> str:
        # Invalid UTF-8 is decoded with replacement characters rather than refused; Windows line
        # endings become '\n' (same line numbers) so chunks do not carry stray '\r'.
        return self.data.decode("utf-8", errors="replace").lstrip("\ufeff").replace("\r\n", "\n")


class Skip(Exception):
    """A file that is not indexed; the message is the reason, counted in the ingest's summary."""


def read_regular(path: Path, max_bytes: int) -> bytes:
    """The bytes of a regular file of at most `max_bytes`, or Skip saying why not.

    Opened without blocking and checked on the open descriptor: a FIFO, socket or device named
    like a doc is refused instead of blocking the ingest forever, even if it replaced a regular
    file after the scan; a file growing past the limit while it is read is refused too."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise Skip("not a regular file" if e.errno == errno.ENXIO else "unreadable") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise Skip("not a regular file")
        if st.st_size > max_bytes:
            raise Skip(f"larger than {max_bytes:,} bytes")
        parts, size = [], 0
        while True:
            part = os.read(fd, 1 << 20)
            if not part:
                break
            size += len(part)
            if size > max_bytes:
                raise Skip(f"larger than {max_bytes:,} bytes")
            parts.append(part)
        return b"".join(parts)
    except OSError:
        raise Skip("unreadable") from None
    finally:
        os.close(fd)


def printable(name: str) -> str:
    """A file name as text even when it is not valid UTF-8 (os.walk hands those over with surrogates)."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def valid_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# Reasons that name what was skipped, in the plural: "3 hidden files" (the others read as they are: "2 binary",
# "1 larger than 1,000,000 bytes", a website's "HTTP 404").
PLURALS = {"hidden file": "hidden files", "hidden folder": "hidden folders", "vendored folder": "vendored folders",
           "unsupported file type": "unsupported file types", "symbolic link to a folder": "symbolic links to folders",
           "broken or looping symbolic link": "broken or looping symbolic links",
           "symbolic link pointing outside the source": "symbolic links pointing outside the source",
           "not a regular file": "not regular files"}


def counted(n: int, noun: str) -> str:
    """"1 file", "2 files", "1,200 chunks": a count as the summaries say it."""
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def skipped_counts(skipped: Mapping[str, int]) -> list[str]:
    """What was skipped, most first: ["16 unsupported file types", "1 hidden file", "2 binary"]."""
    return [f"{n:,} {PLURALS.get(why, why) if n != 1 else why}"
            for why, n in sorted(skipped.items(), key=lambda item: -item[1])]


@dataclass
class WalkReport:
    skipped: Counter = field(default_factory=Counter)  # reason -> count
    examples: dict[str, str] = field(default_factory=dict)  # reason -> one example path

    def skip(self, reason: str, path: str) -> None:
        self.skipped[reason] += 1
        self.examples.setdefault(reason, path)


def _matches(path: str, patterns: list[str]) -> bool:
    name = path.rsplit("/", 1)[-1]
    for pat in patterns:
        pat = pat.rstrip("/")
        if fnmatch.fnmatchcase(path, pat) or fnmatch.fnmatchcase(name, pat):
            return True
        if pat.endswith("/**") and (path == pat[:-3] or path.startswith(pat[:-2])):
            return True
        if "/" not in pat and fnmatch.fnmatchcase(path.split("/")[0], pat):  # top folder name
            return True
        if path.startswith(pat + "/"):
            return True
        if pat.startswith("**/") and _matches(path, [pat[3:]]):  # as in .gitignore, '**/' matches at the top too
            return True
    return False


def _gitignore(folder: Path, rel: str, max_bytes: int, report: WalkReport) -> pathspec.PathSpec | None:
    """The folder's .gitignore, read like every other file of the walk (read_regular): a FIFO, socket or
    device by that name is skipped and counted, never opened in a way that could block the walk."""
    f = folder / ".gitignore"
    if not os.path.lexists(f):
        return None
    try:
        data = read_regular(f, max_bytes)
    except Skip as why:
        report.skip(str(why), rel)
        return None
    return pathspec.GitIgnoreSpec.from_lines(data.decode("utf-8", errors="replace").splitlines())


def walk(root: Path, walk_root: Path | None = None, include: list[str] | None = None,
         exclude: list[str] | None = None, max_bytes: int = 1_000_000,
         report: WalkReport | None = None):
    """Yield SourceFile for each indexable file under walk_root (default root), sorted.

    Paths are relative to `root`. Hidden and vendored folders, .gitignore'd paths, binary,
    oversized and unsupported files are skipped and counted in `report`, as are names that are not
    valid UTF-8 (they could not be stored or cited) and anything that is not a regular file (a
    FIFO would block the read), .gitignore files included. Symbolic links are followed only when
    they stay inside the root; loops and dangling links are skipped.
    """
    report = report if report is not None else WalkReport()
    root = root.resolve()
    walk_root = (walk_root or root).resolve()
    include, exclude = include or [], exclude or []
    ignores: list[tuple[Path, pathspec.PathSpec]] = []

    def ignored(rel_from: Path, is_dir: bool) -> bool:
        for base, spec in ignores:
            try:
                rel = rel_from.relative_to(base).as_posix()
            except ValueError:
                continue
            if spec.match_file(rel + ("/" if is_dir else "")):
                return True
        return False

    for dirpath, dirnames, filenames in os.walk(walk_root, followlinks=False):
        d = Path(dirpath)
        spec = _gitignore(d, (d / ".gitignore").relative_to(root).as_posix(), max_bytes, report)
        if spec is not None:
            ignores.append((d, spec))
        keep = []
        for name in sorted(dirnames):
            full = d / name
            rel = full.relative_to(root).as_posix()
            if not valid_utf8(name):
                report.skip("folder name is not valid UTF-8", printable(rel) + "/")
                continue
            if name.startswith("."):  # hidden folders (.github, .venv...) are never content
                if name not in (".git", ".hg", ".svn"):  # version control is not worth a mention
                    report.skip("hidden folder", rel + "/")
                continue
            if name in VENDORED_DIRS:
                report.skip("vendored folder", rel + "/")
                continue
            if full.is_symlink():
                report.skip("symbolic link to a folder", rel + "/")
                continue
            if ignored(full, True) or (exclude and _matches(rel, exclude)):
                continue
            keep.append(name)
        dirnames[:] = keep
        for name in sorted(filenames):
            full = d / name
            rel = full.relative_to(root).as_posix()
            if not valid_utf8(name):
                if not name.startswith("."):
                    report.skip("file name is not valid UTF-8", printable(rel))
                continue
            if name.startswith("."):
                if classify(rel) is not None:  # would have been indexed (.env.md); .gitignore is not
                    report.skip("hidden file", rel)
                continue
            if ignored(full, False):
                continue
            if exclude and _matches(rel, exclude):
                continue
            if include and not _matches(rel, include):
                continue
            if full.is_symlink():
                try:
                    target = full.resolve(strict=True)
                except (OSError, RuntimeError):
                    report.skip("broken or looping symbolic link", rel)
                    continue
                if not target.is_relative_to(root):
                    report.skip("symbolic link pointing outside the source", rel)
                    continue
            if Path(name).suffix.lower() in BINARY_EXTENSIONS:
                report.skip("binary", rel)
                continue
            kl = classify(rel)
            if kl is None:
                report.skip("unsupported file type", rel)
                continue
            try:
                data = read_regular(full, max_bytes)
            except Skip as why:
                report.skip(str(why), rel)
                continue
            if b"\0" in data[:8192]:
                report.skip("binary", rel)
                continue
            yield SourceFile(rel, full, kl[0], kl[1], data)
