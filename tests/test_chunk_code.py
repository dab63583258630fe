"""Code chunking with the real tree-sitter grammars: definitions, qualified symbols, line ranges."""
from __future__ import annotations

import itertools

import pytest

from ingest.code import chunk_code, parser_for

SMALL = 160  # a window small enough that every class below is split into its methods


def chunks_of(src: str, lang: str, window: int = SMALL, path: str = "f"):
    chunks = chunk_code(src, path, lang, window)
    lines = src.split("\n")
    for c in chunks:  # what is cited is exactly what is shown
        assert c.kind == "code" and c.language == lang and c.path == path
        assert "\n".join(lines[c.start_line - 1:c.end_line]) == c.text
    return chunks


def by_symbol(chunks) -> dict:
    out: dict = {}
    for c in chunks:
        out.setdefault(c.symbol, []).append(c)
    return out


def assert_every_line_covered(src: str, chunks) -> None:
    covered = {n for c in chunks for n in range(c.start_line, c.end_line + 1)}
    missing = [i + 1 for i, ln in enumerate(src.split("\n")) if ln.strip() and i + 1 not in covered]
    assert not missing, f"lines dropped: {missing}"


def test_all_grammars_are_installed():
    for lang in ("python", "javascript", "typescript", "go", "java", "rust"):
        assert parser_for(lang) is not None, lang


PY = '''"""Module docstring."""
import os

LIMIT = 10


class Store:
    """A store of things."""

    kind = "memory"

    def __init__(self, path):
        self.path = path

    # how many there are
    @property
    def size(self):
        """How many."""
        return 3

    def save(self, key, value):
        """Save one value under a key."""
        return os.path.join(self.path, key)


def helper(x):
    """Help with x."""
    return x + LIMIT


if __name__ == "__main__":
    print(helper(1))
'''


def test_python_functions_classes_methods():
    chunks = chunks_of(PY, "python")
    s = by_symbol(chunks)
    assert {"Store", "Store.__init__", "Store.size", "Store.save", "helper"} <= set(s)
    (save,) = s["Store.save"]
    assert '"""Save one value under a key."""' in save.text  # the docstring travels with its method
    assert save.context.startswith("class Store")  # and the class header situates it
    (size,) = s["Store.size"]
    assert size.text.startswith("    # how many there are\n    @property")  # comment and decorator kept
    (cls,) = s["Store"]
    assert cls.text.startswith("class Store:") and '"""A store of things."""' in cls.text
    assert 'kind = "memory"' in cls.text
    (fn,) = s["helper"]
    assert (fn.start_line, fn.end_line) == (26, 28) and '"""Help with x."""' in fn.text
    module = s[""]  # module-level code is kept: docstring and imports, the __main__ block
    assert any("import os" in c.text and "LIMIT = 10" in c.text for c in module)
    assert any('if __name__ == "__main__":' in c.text for c in module)
    assert_every_line_covered(PY, chunks)


def test_python_default_window_keeps_definitions_apart():
    chunks = chunks_of(PY, "python", 1200)
    s = by_symbol(chunks)
    # even a small class gives a header chunk and a chunk per method
    assert set(s) >= {"Store", "Store.__init__", "Store.size", "Store.save", "helper", ""}
    assert all(len(v) == 1 for k, v in s.items() if k)  # no definition is cut when it fits
    assert "kind = " in s["Store"][0].text and "def " not in s["Store"][0].text
    assert s["Store.save"][0].context.startswith("class Store")
    assert_every_line_covered(PY, chunks)


JS = '''import fs from "fs";

const DEFAULT = 3;

/** Greets people. */
export class Greeter {
  constructor(name) {
    this.name = name;
  }

  /** Say hello to someone else. */
  greet(other) {
    return `hi ${other}, I am ${this.name}`;
  }
}

export function add(a, b) {
  return a + b + DEFAULT;
}

const mul = (a, b) => a * b;

module.exports = { add, mul, fs };
'''


def test_javascript():
    chunks = chunks_of(JS, "javascript", 80)
    s = by_symbol(chunks)
    assert {"Greeter", "Greeter.constructor", "Greeter.greet", "add", "mul"} <= set(s)
    (greet,) = s["Greeter.greet"]
    assert greet.text.lstrip().startswith("/** Say hello") and greet.context == "export class Greeter {"
    assert any("module.exports" in c.text for c in s[""])
    assert not any(c.text.strip() == "}" for c in chunks)  # a lone closing brace is not a chunk
    assert_every_line_covered(JS, chunks)


TS = '''export interface Shape {
  area(): number;
}

export class Circle implements Shape {
  constructor(private r: number) {}

  area(): number {
    return Math.PI * this.r * this.r;
  }
}

export type Point = { x: number; y: number };

export function dist(a: Point, b: Point): number {
  return Math.hypot(a.x - b.x, a.y - b.y);
}
'''


def test_typescript():
    chunks = chunks_of(TS, "typescript", 60)
    s = by_symbol(chunks)
    assert {"Shape", "Circle", "Circle.area", "Point", "dist"} <= set(s)
    (area,) = s["Circle.area"]
    assert "Math.PI" in area.text and area.context.startswith("export class Circle")
    assert_every_line_covered(TS, chunks)


GO = '''package shapes

import "math"

// Circle is round.
type Circle struct {
	R float64
}

// Area of the circle.
func (c *Circle) Area() float64 {
	return math.Pi * c.R * c.R
}

func (c Circle) Scale(f float64) Circle {
	return Circle{R: c.R * f}
}

type Stack[T any] struct{ items []T }

func (s *Stack[T]) Push(t T) {
	s.items = append(s.items, t)
}

func New(r float64) *Circle {
	return &Circle{R: r}
}
'''


def test_go_receiver_methods():
    chunks = chunks_of(GO, "go")
    s = by_symbol(chunks)
    assert {"Circle", "Circle.Area", "Circle.Scale", "Stack", "Stack.Push", "New"} <= set(s)
    (area,) = s["Circle.Area"]  # pointer receiver, doc comment included
    assert area.text.startswith("// Area of the circle.\nfunc (c *Circle) Area()")
    assert any("package shapes" in c.text for c in s[""])
    assert_every_line_covered(GO, chunks)


JAVA = '''package com.example;

import java.util.List;

/** A box of items. */
public class Box {
    private final List<String> items;

    public Box(List<String> items) {
        this.items = items;
    }

    /** How many items. */
    public int size() {
        return items.size();
    }

    static class Inner {
        void poke() {
            System.out.println("poke");
        }
    }
}
'''


def test_java():
    chunks = chunks_of(JAVA, "java", 120)
    s = by_symbol(chunks)
    assert {"Box", "Box.Box", "Box.size", "Box.Inner"} <= set(s)
    (size,) = s["Box.size"]
    assert "/** How many items. */" in size.text and size.context == "public class Box {"
    assert "private final List<String> items;" in s["Box"][0].text  # fields stay with the header
    assert_every_line_covered(JAVA, chunks)


RUST = '''use std::fmt;

/// A point in space.
pub struct Point {
    pub x: f64,
    pub y: f64,
}

impl Point {
    /// Make a point.
    pub fn new(x: f64, y: f64) -> Self {
        Point { x, y }
    }

    pub fn norm(&self) -> f64 {
        (self.x * self.x + self.y * self.y).sqrt()
    }
}

impl fmt::Display for Point {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "({}, {})", self.x, self.y)
    }
}

pub struct Stack<T> {
    items: Vec<T>,
}

impl<T: Clone> Stack<T> {
    pub fn push(&mut self, t: T) {
        self.items.push(t);
    }
}

pub fn origin() -> Point {
    Point::new(0.0, 0.0)
}
'''


def test_rust_impl_methods():
    chunks = chunks_of(RUST, "rust", 80)
    s = by_symbol(chunks)
    assert {"Point", "Point.new", "Point.norm", "Point.fmt", "Stack", "Stack.push", "origin"} <= set(s)
    (new,) = s["Point.new"]
    assert new.text.lstrip().startswith("/// Make a point.") and new.context == "impl Point {"
    assert s["Point.fmt"][0].context == "impl fmt::Display for Point {"
    assert not any("<" in sym for sym in s)  # generic parameters are not part of the name
    assert_every_line_covered(RUST, chunks)


def test_definition_larger_than_window_split_without_dropping_lines():
    body = "".join(f"    x{i} = n * {i}  # step {i}\n" + ("\n" if i % 7 == 0 else "") for i in range(120))
    src = f'def huge(n):\n    """A very long function."""\n{body}    return n\n\n\nx = huge(2)\n'
    chunks = chunks_of(src, "python", 600)
    huge = by_symbol(chunks)["huge"]
    assert len(huge) >= 5
    assert all(len(c.text) <= 700 for c in huge)
    assert huge[0].start_line == 1 and '"""A very long function."""' in huge[0].text
    assert huge[-1].text.endswith("return n")
    assert all(c.context == "def huge(n):" for c in huge[1:])  # continuations say where they belong
    for a, b in itertools.pairwise(huge):  # consecutive, no gap, no overlap
        assert b.start_line > a.end_line
        assert all(not ln.strip() for ln in src.split("\n")[a.end_line:b.start_line - 1])
    assert any(c.symbol == "" and "x = huge(2)" in c.text for c in chunks)
    assert_every_line_covered(src, chunks)


def test_large_class_methods_split_and_qualified():
    methods = "\n".join(f"    def m{i}(self):\n        \"\"\"Method {i}.\"\"\"\n" +
                        "".join(f"        v = {j} * {i}\n" for j in range(8)) + "        return v\n"
                        for i in range(10))
    src = f"class Big(Base):\n    \"\"\"A big class.\"\"\"\n\n{methods}"
    chunks = chunks_of(src, "python", 1200)
    s = by_symbol(chunks)
    assert [f"Big.m{i}" for i in range(10)] == [k for k in s if k.startswith("Big.")]
    assert all(s[f"Big.m{i}"][0].context == "class Big(Base):" for i in range(10))
    assert s["Big"][0].text.startswith("class Big(Base):")
    assert_every_line_covered(src, chunks)


def test_syntax_errors_still_chunked():
    src = '''import os

def good(a):
    return a + 1

def broken(x:
    return x +

class Fine:
    def m(self):
        return 2

print(good(1)
'''
    chunks = chunks_of(src, "python", 1200)
    assert "good" in by_symbol(chunks)
    assert_every_line_covered(src, chunks)
    ts = "export function ok(a: number) { return a }\nfunction bad( { return 1\nconst z = 3;\n"
    chunks = chunks_of(ts, "typescript", 1200)
    assert_every_line_covered(ts, chunks)


@pytest.mark.parametrize("lang", ["ruby", "toml", "make"])
def test_unknown_language_falls_back_to_line_windows(lang):
    src = "class Foo\n  def bar\n    1\n  end\nend\n\n" * 30
    chunks = chunks_of(src, lang, 300)
    assert len(chunks) > 3
    assert all(c.symbol == "" for c in chunks)
    assert all(len(c.text) <= 300 + 100 for c in chunks)
    assert_every_line_covered(src, chunks)


def test_empty_file():
    assert chunk_code("", "e.py", "python") == []
    assert chunk_code("\n\n", "e.rb", "ruby") == []


def test_embedded_text_situates_the_chunk_shown_text_is_the_source():
    src = "class Store:\n    \"\"\"Keeps things.\"\"\"\n\n" + "".join(
        f"    def save_{i}(self, key):\n        return key * {i}\n\n" for i in range(12))
    chunks = chunks_of(src, "python", 200, path="pkg/memory_store.py")
    (c,) = [c for c in chunks if c.symbol == "Store.save_3"]
    assert c.text == "    def save_3(self, key):\n        return key * 3"
    embedded = c.embed_text()
    assert embedded.endswith(c.text)  # the source itself, after the situating lines
    head = embedded[: -len(c.text)]
    assert "memory store" in head and "pkg" in head  # the path, in words
    assert "Store" in head and "save 3" in head  # the qualified symbol
    assert "class Store:" in head  # the class header


def test_a_constructor_is_situated_by_what_its_class_is_for():
    # Defaults are set in constructors, which rarely say what the class is for: the class's summary (a docstring,
    # or the doc comment above it) joins the constructor's embedded context. Other methods keep the header alone.
    src = ('class SQLiteSession:\n    """Keeps a conversation\'s history in SQLite.\n\n    More words.\n    """\n\n'
           '    def __init__(self, session_id, db_path=":memory:"):\n        self.db_path = db_path\n\n'
           '    def clear(self):\n        pass\n')
    s = by_symbol(chunks_of(src, "python", 1200))
    (init,) = s["SQLiteSession.__init__"]
    assert init.context == "class SQLiteSession:\nKeeps a conversation's history in SQLite."
    assert "Keeps a conversation" in init.embed_text() and init.text.lstrip().startswith("def __init__")
    assert s["SQLiteSession.clear"][0].context == "class SQLiteSession:"
    dataclass_src = '@dataclass\nclass Limits:\n    """Caps on one run."""\n\n    n: int = 1\n\n' \
        '    def __post_init__(self):\n        assert self.n > 0\n'
    (post,) = by_symbol(chunks_of(dataclass_src, "python", 1200))["Limits.__post_init__"]
    assert post.context == "class Limits:\nCaps on one run."
    (ctor,) = by_symbol(chunks_of(JS, "javascript"))["Greeter.constructor"]
    assert ctor.context == "export class Greeter {\nGreets people."
    java = by_symbol(chunks_of(JAVA, "java", 120))
    assert java["Box.Box"][0].context == "public class Box {\nA box of items."
    assert java["Box.size"][0].context == "public class Box {"
    bare = "class Bare:\n    def __init__(self):\n        self.x = 1\n"
    (plain,) = by_symbol(chunks_of(bare, "python"))["Bare.__init__"]
    assert plain.context == "class Bare:"  # no summary, nothing added


def test_tsx_components():
    src = '''import React from "react";

export function Greeting({ name }: { name: string }) {
  return <h1>Hello {name}</h1>;
}

export const Button = (props: Props) => <button onClick={props.onClick}>{props.label}</button>;

export default class App extends React.Component {
  render() {
    return <Greeting name="x" />;
  }
}
'''
    chunks = chunks_of(src, "tsx", 80)
    assert {"Greeting", "Button", "App", "App.render"} <= set(by_symbol(chunks))
    assert_every_line_covered(src, chunks)
