"""A bad file inside a source is skipped and counted with its reason; the rest is indexed, and every
re-run works too. Notebooks of the wrong shape or absurd nesting, names that are not UTF-8, a FIFO
named like a doc (which would block a plain read forever), a file that turns into a FIFO between
the scan and the read."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from support.corpus import write_tree

from indexes.build import ingest
from indexes.search import Index

BIN = Path(sys.executable).parent

NOTEBOOK = {"cells": [{"cell_type": "markdown", "source": ["# Good notebook\n", "Gadgets fold in half.\n"]},
                      {"cell_type": "code", "source": "def fold_gadget(g):\n    return g / 2\n"}],
            "metadata": {"kernelspec": {"language": "python"}}}

WRONG_SHAPES = {
    "list.ipynb": [1, 2, 3],
    "cells_number.ipynb": {"cells": 5},
    "cells_odd.ipynb": {"cells": [1, "x", None, {"cell_type": "code", "source": 5},
                                  {"cell_type": "markdown", "source": [1, None]}]},
    "metadata_string.ipynb": {"metadata": "python", "cells": []},
    "kernelspec_list.ipynb": {"metadata": {"kernelspec": ["python"]}, "cells": []},
    "scalar.ipynb": "just a string",
}


def messy_tree(root: Path) -> Path:
    files: dict[str, str | bytes] = {"good.md": "# Good\n\nThe zebra crossing is painted white.\n",
                                     "nb/good.ipynb": json.dumps(NOTEBOOK)}
    for name, body in WRONG_SHAPES.items():
        files[f"nb/{name}"] = json.dumps(body)
    files["nb/deep.ipynb"] = "[" * 200_000 + "]" * 200_000  # valid JSON a recursive parser cannot read
    files["nb/deep_cells.ipynb"] = '{"cells": ' + "[" * 50_000 + "]" * 50_000 + "}"
    write_tree(root, files)
    os.mkfifo(root / "pipe.md")  # a reader blocks on it until someone writes
    bad_name = os.fsencode(str(root)) + b"/caf\xe9-latin1.md"  # not valid UTF-8
    with open(bad_name, "wb") as f:
        f.write(b"# Latin-1 named\n\nA file whose name is not UTF-8.\n")
    return root


def test_bad_files_are_skipped_counted_and_the_rest_indexed(tmp_path, cfg):
    src = messy_tree(tmp_path / "src")
    index = Index(cfg)
    summary = ingest(index, [str(src)])
    indexed = {r[0] for r in index.catalog.db.execute("SELECT path FROM files")}
    assert "good.md" in indexed and "nb/good.ipynb" in indexed
    assert summary.skipped["not a regular file"] == 1
    assert summary.skipped["file name is not valid UTF-8"] == 1
    assert summary.skipped["could not be read as a notebook: nested too deeply"] == 2
    # JSON that is not a notebook at all is skipped; a notebook with odd cells or metadata is read
    # for what it holds.
    assert summary.skipped["could not be read as a notebook: not a notebook's shape"] == 3
    assert {"nb/cells_odd.ipynb", "nb/metadata_string.ipynb", "nb/kernelspec_list.ipynb"} <= indexed
    # Every skipped file is listed with its reason in the source's record, as `status` shows it.
    (source,) = index.catalog.sources("default")
    assert source["skipped"] == dict(summary.skipped)
    hits = index.search("zebra crossing painted", k=3)
    assert hits and hits[0].chunk.path == "good.md"
    assert any(h.chunk.path == "nb/good.ipynb" for h in index.search("fold_gadget gadgets fold in half", k=5))
    # A second run is not stopped by them either, and changes nothing.
    again = ingest(index, [str(src)])
    assert again.skipped == summary.skipped and again.changed == 0
    assert again.total_chunks == summary.total_chunks


def test_a_file_that_becomes_a_fifo_after_the_scan_is_skipped(tmp_path, cfg, monkeypatch):
    """The scan saw a regular file; by the time it is read again for chunking it is a FIFO."""
    import indexes.build as build

    src = write_tree(tmp_path / "src", {"a.md": "# A\n\nAlpha text.\n", "b.md": "# B\n\nBravo text.\n"})
    real = build._write_changed

    def swap_then_write(index, kb, pending, *args, **kwargs):
        (src / "b.md").unlink()
        os.mkfifo(src / "b.md")
        return real(index, kb, pending, *args, **kwargs)

    monkeypatch.setattr(build, "_write_changed", swap_then_write)
    summary = ingest(Index(cfg), [str(src)])
    assert summary.skipped["not a regular file"] == 1
    assert summary.total_chunks >= 1


def test_cli_ingest_of_a_folder_with_a_fifo_finishes_and_says_what_it_skipped(tmp_path):
    src = messy_tree(tmp_path / "src")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEVCOPILOT_")}
    env.update(HF_HUB_OFFLINE="1", ANONYMIZED_TELEMETRY="False")
    r = subprocess.run([str(BIN / "devcopilot"), "--data-dir", str(tmp_path / "data"), "ingest", str(src), "--quiet"],
                       capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    assert "1 not a regular file" in r.stdout and "1 file name is not valid UTF-8" in r.stdout
    status = subprocess.run([str(BIN / "devcopilot"), "--data-dir", str(tmp_path / "data"), "status"],
                            capture_output=True, text=True, timeout=120, env=env)
    assert "not a regular file" in status.stdout and "could not be read as a notebook" in status.stdout
