"""Two versions of a small Python library and of a small TypeScript project, each a git repository
tagged with its version, indexed side by side in one KB (tests/test_changes.py, test_changes_doors.py).

Between the versions: a function renamed, a parameter added with a default, a default changed, a
return annotation changed, methods deprecated by decorator, by docstring and by a warning, a
docstring changed, a symbol added, a doc page added, changed and removed; in TypeScript an export
added and one removed, a parameter added and a method deprecated in JSDoc."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from support.corpus import write_tree
from support.git import commit_all, git

PY_V1 = {
    "mylib/__init__.py": '''
        """Mylib: stores and widgets."""
        from mylib.core import Store, legacy, make_widget, old_name

        __all__ = ["Store", "legacy", "make_widget", "old_name"]
        ''',
    "mylib/core.py": '''
        """The core."""


        class Store:
            """Keeps things."""

            def __init__(self, path):
                self.path = path

            def save(self, key, value):
                """Save a value."""
                return None

            def load(self, key):
                """Load a value."""
                return None

            def purge(self):
                """Remove everything."""
                return None


        def make_widget(kind, colour="red") -> dict:
            """Make a widget."""
            return {"kind": kind, "colour": colour}


        def old_name(a, b):
            """Add two numbers."""
            return a + b


        def legacy(x):
            """Do it the old way."""
            return x


        def _helper():
            return 1
        ''',
    "docs/guide.md": '''
        # Guide

        ## Install

        Run `pip install mylib`.

        ## Saving

        Call `Store.save(key, value)` to keep a value.
        ''',
    "docs/old.md": '''
        # Old page

        This page goes away in 2.0.
        ''',
}

PY_V2 = {
    "mylib/__init__.py": '''
        """Mylib: stores and widgets."""
        from mylib.core import Store, Widget, legacy, make_widget, new_name

        __all__ = ["Store", "Widget", "legacy", "make_widget", "new_name"]
        ''',
    "mylib/core.py": '''
        """The core."""
        import warnings

        from typing_extensions import deprecated


        class Store:
            """Keeps things."""

            def __init__(self, path):
                self.path = path

            def save(self, key, value, ttl=None):
                """Save a value for `ttl` seconds (forever when None)."""
                return None

            @deprecated("Use Store.get instead.")
            def load(self, key):
                """Load a value."""
                return None

            def purge(self):
                """Remove everything.

                .. deprecated:: 2.0
                   Use `Store.clear` instead.
                """
                return None


        class Widget:
            """A widget made by make_widget."""

            def __init__(self, kind):
                self.kind = kind


        def make_widget(kind, colour="blue") -> Widget:
            """Make a widget."""
            return Widget(kind)


        def new_name(a, b):
            """Add two numbers."""
            return a + b


        def legacy(x):
            """Do it the old way."""
            warnings.warn("legacy() goes away in 3.0", DeprecationWarning, stacklevel=2)
            return x


        def _helper():
            return 2
        ''',
    "docs/guide.md": '''
        # Guide

        ## Install

        Run `pip install mylib`.

        ## Saving

        Call `Store.save(key, value, ttl=60)` to keep a value for a minute.
        ''',
    "docs/caching.md": '''
        # Caching

        Values saved with a `ttl` expire.
        ''',
}

TS_V1 = {
    "src/index.ts": '''
        export interface Thing {
          name: string;
        }

        export function makeThing(name: string): Thing {
          return { name };
        }

        export function oldHelper(x: number): number {
          return x + 1;
        }

        export class Runner {
          constructor(name: string) {}

          run(input: string): Promise<string> {
            return Promise.resolve(input);
          }
        }

        function internal(): void {}
        ''',
    "README.md": '''
        # Things

        Make things with `makeThing`.
        ''',
}

TS_V2 = {
    "src/index.ts": '''
        export interface Thing {
          name: string;
          size: number;
        }

        export function makeThing(name: string, size: number = 3): Thing {
          return { name, size };
        }

        export function newHelper(x: number): number {
          return x + 2;
        }

        export class Runner {
          constructor(name: string) {}

          run(input: string): Promise<string> {
            return Promise.resolve(input);
          }

          /**
           * Run and wait.
           * @deprecated use run
           */
          runSync(input: string): string {
            return input;
          }
        }

        function internal(): void {}
        ''',
    "README.md": '''
        # Things

        Make things with `makeThing`.
        ''',
}


@dataclass
class TwoVersions:
    data: Path  # the data dir
    py: tuple[Path, Path]  # mylib v1.0.0, v2.0.0
    ts: tuple[Path, Path]  # things v1.0.0, v2.0.0


def tagged_repo(root: Path, files: dict[str, str], tag: str) -> Path:
    """`files` written under root as a git repository whose commit is tagged `tag`."""
    write_tree(root, files)
    git("init", "-q", cwd=root)
    commit_all(root, tag)
    git("tag", tag, cwd=root)
    return root


def two_versions(tmp: Path) -> TwoVersions:
    """Both libraries at v1.0.0 and v2.0.0, indexed into KB 'default' through the CLI."""
    from ui.cli import main

    py = (tagged_repo(tmp / "v1" / "mylib", PY_V1, "v1.0.0"), tagged_repo(tmp / "v2" / "mylib", PY_V2, "v2.0.0"))
    ts = (tagged_repo(tmp / "v1" / "things", TS_V1, "v1.0.0"), tagged_repo(tmp / "v2" / "things", TS_V2, "v2.0.0"))
    data = tmp / "data"
    assert main(["--data-dir", str(data), "ingest", *map(str, py + ts), "--quiet"]) == 0
    return TwoVersions(data, py, ts)
