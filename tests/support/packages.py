"""Installed distributions made up for tests: packages written under a folder and declared the way
pip leaves them, with a .dist-info folder listing their files (what `pkg:NAME` requires)."""
from __future__ import annotations

from pathlib import Path


def declare_distribution(site: Path, name: str, version: str = "1.0") -> Path:
    """Declare every file under `site` (a folder that goes on sys.path) as installed by the
    distribution `name`; returns its .dist-info folder."""
    files = sorted(p.relative_to(site).as_posix() for p in site.rglob("*")
                   if p.is_file() and not any(part.endswith(".dist-info") for part in p.parts))
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8")
    tops = sorted({f.split("/")[0].removesuffix(".py") for f in files})
    (info / "top_level.txt").write_text("".join(f"{t}\n" for t in tops), encoding="utf-8")
    own = [f"{info.name}/{n}" for n in ("METADATA", "top_level.txt", "RECORD")]
    (info / "RECORD").write_text("".join(f"{f},,\n" for f in files + own), encoding="utf-8")
    return info
