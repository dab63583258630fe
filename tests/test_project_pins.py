"""What a project pins (indexes/project.py): each lock and requirement file kind, the installed
environment, which wins, and a file that cannot be read (one sentence naming it, the others still read)."""
from __future__ import annotations

import json

import pytest
from support.corpus import write_tree

from indexes.project import ProjectError, project_pins, read_project, versions_for
from indexes.versions import VersionChoice

UV_LOCK = """version = 1
requires-python = ">=3.11"

[[package]]
name = "openai-agents"
version = "0.23.1"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "Click"
version = "8.1.8"
"""

POETRY_LOCK = """[[package]]
name = "attrs"
version = "24.2.0"
description = "Classes Without Boilerplate"
optional = false

[metadata]
lock-version = "2.0"
"""

PACKAGE_LOCK_V3 = {"name": "app", "lockfileVersion": 3, "packages": {
    "": {"name": "app", "dependencies": {"zod": "^3.23.0"}},
    "node_modules/zod": {"version": "3.23.8"},
    "node_modules/@scope/kit": {"version": "1.2.0"},
    "node_modules/other/node_modules/zod": {"version": "1.0.0"}}}

PACKAGE_LOCK_V1 = {"name": "app", "lockfileVersion": 1, "dependencies": {"zod": {"version": "3.22.4"}}}

PNPM_V9 = """lockfileVersion: '9.0'
importers:
  .:
    dependencies:
      zod:
        specifier: ^3.23.0
        version: 3.23.8
    devDependencies:
      react-dom:
        specifier: ^18
        version: 18.3.1(react@18.3.1)
packages:
  zod@3.23.8:
    resolution: {integrity: sha512-x}
"""

PNPM_V5 = """lockfileVersion: 5.4
dependencies:
  zod: 3.21.4
"""

PYPROJECT = """[project]
name = "app"
dependencies = ["openai-agents==0.23.1", "httpx>=0.27", "starlette[full] == 0.38.0 ; python_version >= '3.8'"]

[project.optional-dependencies]
docs = ["mkdocs==1.6.1"]

[tool.poetry.dependencies]
python = "^3.11"
attrs = "24.2.0"
click = "^8.1"
rich = {version = "13.7.1", optional = true}
"""


@pytest.mark.parametrize("files, pins", [
    ({"uv.lock": UV_LOCK}, {"openai-agents": "0.23.1", "click": "8.1.8"}),
    ({"poetry.lock": POETRY_LOCK}, {"attrs": "24.2.0"}),
    ({"package-lock.json": json.dumps(PACKAGE_LOCK_V3)}, {"zod": "3.23.8", "@scope/kit": "1.2.0"}),
    ({"package-lock.json": json.dumps(PACKAGE_LOCK_V1)}, {"zod": "3.22.4"}),
    ({"pnpm-lock.yaml": PNPM_V9}, {"zod": "3.23.8", "react-dom": "18.3.1"}),
    ({"pnpm-lock.yaml": PNPM_V5}, {"zod": "3.21.4"}),
    ({"requirements.txt": "# pinned\nOpenAI_Agents==0.23.1  # the SDK\nhttpx>=0.27\n-r other.txt\n"
                          "click[extra]==8.1.8 \\\n    --hash=sha256:abc\n",
      "requirements-dev.txt": "pytest==8.3.2\n"},
     {"openai-agents": "0.23.1", "click": "8.1.8", "pytest": "8.3.2"}),
    ({"pyproject.toml": PYPROJECT}, {"openai-agents": "0.23.1", "starlette": "0.38.0", "mkdocs": "1.6.1",
                                     "attrs": "24.2.0", "rich": "13.7.1"}),
])
def test_each_kind_of_pin_file_is_read(tmp_path, files, pins):
    got = read_project(write_tree(tmp_path / "app", files))
    assert got.pins == pins and not got.problems


def test_an_installed_environment_is_read_after_the_files(tmp_path):
    app = write_tree(tmp_path / "app", {
        "requirements.txt": "click==8.1.8\n",
        ".venv/lib/python3.11/site-packages/click-8.2.0.dist-info/METADATA": "Name: click\n",
        ".venv/lib/python3.11/site-packages/openai_agents-0.24.0.dist-info/METADATA": "Name: openai-agents\n",
        "node_modules/zod/package.json": json.dumps({"name": "zod", "version": "3.23.8"}),
        "node_modules/@scope/kit/package.json": json.dumps({"name": "@scope/kit", "version": "1.0.0"})})
    got = read_project(app)
    assert got.pins == {"click": "8.1.8", "openai-agents": "0.24.0", "zod": "3.23.8", "@scope/kit": "1.0.0"}
    assert got.origin["click"] == "requirements.txt" and got.origin["openai-agents"] == "the installed .venv"


def test_a_lock_file_wins_over_requirements_and_pyproject(tmp_path):
    got = read_project(write_tree(tmp_path / "app", {"uv.lock": UV_LOCK, "requirements.txt": "click==7.0\n",
                                                      "pyproject.toml": PYPROJECT}))
    assert got.pins["click"] == "8.1.8" and got.origin["click"] == "uv.lock"
    assert got.pins["mkdocs"] == "1.6.1" and got.origin["mkdocs"] == "pyproject.toml"


@pytest.mark.parametrize("name, text", [
    ("uv.lock", "[[package]\nname = "),
    ("package-lock.json", "{not json"),
    ("pnpm-lock.yaml", "importers: [unclosed"),
    ("poetry.lock", "package = 3\n"),
])
def test_a_file_that_does_not_parse_is_one_sentence_naming_it_and_the_others_are_read(tmp_path, name, text):
    app = write_tree(tmp_path / "app", {name: text, "requirements.txt": "click==8.1.8\n"})
    got = read_project(app)
    assert got.pins == {"click": "8.1.8"}
    assert len(got.problems) == 1
    said = got.problems[0]
    assert said.startswith(f"{name} in {app.resolve()} could not be read (") and said.endswith(
        "the newest indexed versions answer for them.") and "\n" not in said


def test_the_pins_become_a_version_choice_and_yield_to_versions_asked_for(tmp_path):
    app = write_tree(tmp_path / "app", {"uv.lock": UV_LOCK})
    choice = versions_for(None, app)
    assert {(p.library, p.version) for p in choice.pins} == {("openai-agents", "0.23.1"), ("click", "8.1.8")}
    assert next(p for p in choice.pins if p.library == "click").origin == f"uv.lock in {app.resolve()}"
    asked = versions_for(VersionChoice.parse("8.2.0", "click"), app)
    assert {(p.library, p.version) for p in asked.pins} == {("click", "8.2.0"), ("openai-agents", "0.23.1")}
    assert versions_for(VersionChoice.parse("newest"), app).pins == ()  # by name: the project is not read
    assert versions_for(VersionChoice.parse("all"), app).every
    gone = versions_for(None, tmp_path / "gone")
    assert gone.pins == () and "does not exist" in gone.notes[0]


def test_the_pins_are_read_again_when_a_file_changes(tmp_path):
    app = write_tree(tmp_path / "app", {"requirements.txt": "click==8.1.8\n"})
    assert project_pins(app).pins == {"click": "8.1.8"}
    (app / "requirements.txt").write_text("click==8.2.0\n# longer now\n")
    assert project_pins(app).pins == {"click": "8.2.0"}


def test_a_project_folder_that_does_not_exist_is_one_sentence(tmp_path):
    with pytest.raises(ProjectError, match="does not exist; give the folder holding its lock or requirement files"):
        read_project(tmp_path / "nowhere")


def test_version_words_and_bad_versions():
    assert VersionChoice.parse("all").every and VersionChoice.parse("newest").newest
    assert VersionChoice.parse("0.23.1", "openai-agents").pins[0].library == "openai-agents"
    with pytest.raises(ValueError, match="is not a version"):
        VersionChoice.parse("0.23; rm -rf /")
    with pytest.raises(ValueError, match="give the version too"):
        VersionChoice.parse(None, "openai-agents")
