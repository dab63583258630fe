"""The walker: which files of a source folder are indexed, and which are skipped and why."""
from __future__ import annotations

import os

from support.corpus import write_tree

from ingest.files import WalkReport, skipped_counts, walk


def _walk(root, **kw):
    report = WalkReport()
    files = {f.path: f for f in walk(root, report=report, **kw)}
    return files, report


def test_gitignore_hidden_and_vendored_folders_are_skipped(tmp_path):
    root = write_tree(tmp_path / "src", {
        ".gitignore": "build/\n*.log.md\nsecret.py\n",
        "keep.py": "x = 1\n",
        "secret.py": "TOKEN = 'x'\n",
        "build/out.py": "y = 2\n",
        "notes.log.md": "# log\n",
        "pkg/.gitignore": "generated.py\n",
        "pkg/generated.py": "z = 3\n",
        "pkg/real.py": "w = 4\n",
        ".hidden/inside.md": "# hidden\n",
        ".env.md": "# hidden file\n",
        "node_modules/lib/index.js": "module.exports = 1;\n",
        "vendor/thing.go": "package thing\n",
        "__pycache__/keep.cpython-311.py": "x = 1\n",
        "docs/guide.md": "# Guide\n",
    })
    files, report = _walk(root)
    assert sorted(files) == ["docs/guide.md", "keep.py", "pkg/real.py"]
    assert report.skipped["vendored folder"] == 3  # node_modules, vendor, __pycache__
    assert report.skipped["hidden folder"] == 1 and report.skipped["hidden file"] == 1  # .hidden/, .env.md
    assert files["keep.py"].kind == "code" and files["keep.py"].language == "python"
    assert files["docs/guide.md"].kind == "doc" and files["docs/guide.md"].language == "markdown"
    # as the ingest line, `status` and the web UI say it: most first, a plural for more than one
    assert skipped_counts(report.skipped) == ["3 vendored folders", "1 hidden folder", "1 hidden file"]
    assert skipped_counts({"binary": 2, "larger than 1,000 bytes": 1}) == ["2 binary", "1 larger than 1,000 bytes"]


def test_include_and_exclude_globs(tmp_path):
    root = write_tree(tmp_path / "src", {
        "a.py": "a = 1\n", "docs/b.md": "# b\n", "docs/c.rst": "c\n=\n", "tests/test_a.py": "def test(): pass\n",
        "lib/tests/test_b.py": "def test(): pass\n", "setup.cfg": "[x]\n",
    })

    def paths(**kw):
        return sorted(_walk(root, **kw)[0])

    assert paths(exclude=["tests"]) == ["a.py", "docs/b.md", "docs/c.rst", "setup.cfg"]
    assert paths(exclude=["tests/**"]) == ["a.py", "docs/b.md", "docs/c.rst", "lib/tests/test_b.py", "setup.cfg"]
    assert paths(exclude=["**/tests/**"]) == ["a.py", "docs/b.md", "docs/c.rst", "setup.cfg"]
    assert paths(include=["*.md"]) == ["docs/b.md"]
    assert paths(include=["*.md", "*.py"], exclude=["tests/**"]) == ["a.py", "docs/b.md", "lib/tests/test_b.py"]
    assert paths(include=["docs/**"]) == ["docs/b.md", "docs/c.rst"]
    assert paths(exclude=["*.rst", "*.cfg", "lib"]) == ["a.py", "docs/b.md", "tests/test_a.py"]


def test_binary_files_skipped_and_counted(tmp_path):
    root = write_tree(tmp_path / "src", {
        "logo.png": b"\x89PNG\r\n\x1a\n\0\0\0",
        "data.py": b"x = 1\n\0\0\0 binary payload",  # a .py file holding NUL bytes is binary
        "ok.py": "x = 1\n",
    })
    files, report = _walk(root)
    assert sorted(files) == ["ok.py"]
    assert report.skipped["binary"] == 2
    assert report.examples["binary"] in ("data.py", "logo.png")


def test_file_over_the_size_limit_is_counted_and_reported(tmp_path):
    root = write_tree(tmp_path / "src", {"big.md": "# Big\n" + "word " * 5000, "small.md": "# Small\n"})
    files, report = _walk(root, max_bytes=10_000)
    assert sorted(files) == ["small.md"]
    (reason,) = [r for r in report.skipped if "larger" in r]
    assert "10,000" in reason
    assert report.skipped[reason] == 1 and report.examples[reason] == "big.md"


def test_invalid_utf8_is_decoded_with_replacement(tmp_path):
    root = write_tree(tmp_path / "src", {"latin.md": b"# Caf\xe9\n\nna\xefve text \xff\xfe here\n"})
    files, report = _walk(root)
    text = files["latin.md"].text()
    assert "\ufffd" in text and "Caf\ufffd" in text and "here" in text
    assert not report.skipped


def test_symlink_loop_and_dangling_link_skipped(tmp_path):
    root = write_tree(tmp_path / "src", {"real.md": "# Real\n", "sub/x.py": "x = 1\n"})
    os.symlink("loop_b.md", root / "loop_a.md")
    os.symlink("loop_a.md", root / "loop_b.md")
    os.symlink("missing.md", root / "dangling.md")
    os.symlink("..", root / "sub" / "up")  # a folder link back up: would loop if followed
    files, report = _walk(root)
    assert sorted(files) == ["real.md", "sub/x.py"]
    assert report.skipped["broken or looping symbolic link"] == 3
    assert report.skipped["symbolic link to a folder"] == 1


def test_symlink_inside_followed_outside_skipped(tmp_path):
    outside = write_tree(tmp_path / "elsewhere", {"secret.md": "# Private\n"})
    root = write_tree(tmp_path / "src", {"real.md": "# Real\n"})
    os.symlink(outside / "secret.md", root / "leak.md")
    os.symlink(root / "real.md", root / "alias.md")
    files, report = _walk(root)
    assert sorted(files) == ["alias.md", "real.md"]
    assert report.skipped["symbolic link pointing outside the source"] == 1
    assert report.examples["symbolic link pointing outside the source"] == "leak.md"


def test_unsupported_types_counted_and_order_stable(tmp_path):
    root = write_tree(tmp_path / "src", {"z.md": "# z\n", "a/b.py": "b = 1\n", "notes.xyz": "??\n"})
    files, report = _walk(root)
    assert sorted(files) == ["a/b.py", "z.md"]
    assert list(files) == list(_walk(root)[0])
    assert report.skipped["unsupported file type"] == 1


def test_windows_line_endings_and_bom(tmp_path):
    root = write_tree(tmp_path / "src", {"win.md": b"\xef\xbb\xbf# Title\r\n\r\nBody line.\r\n", "unix.py": "x = 1\n"})
    files, _ = _walk(root)
    assert files["win.md"].text() == "# Title\n\nBody line.\n"
    assert files["unix.py"].text() == "x = 1\n"
