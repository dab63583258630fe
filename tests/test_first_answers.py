"""First answers right: on the knowledge base a first `make run` builds (this repository, indexed
into KB 'default'), in offline mode, the chat's example questions and a newcomer's first questions
answer from the right file, in headless Chromium against a real server.

The repository is indexed once for the module (as `serve` does on a first run); the questions
are the ones the web chat offers as examples and the ones a newcomer asks first.
"""
from __future__ import annotations

import pytest
from support.browser import (
    answers,
    ask,
    bot_messages,
    cited,
    first_cited_path,
    have_chromium,
    open_chat,
    settle,
    wait_idle,
)
from support.servers import ServerThread

from copilot.chat import Copilot
from copilot.config import load_config
from indexes.search import Index

pytest.importorskip("playwright.sync_api")
pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not have_chromium(), reason="Debian chromium is not installed")]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from ui.server import create_app, ensure_knowledge, repo_root

    cfg = load_config(env={}, overrides={"data_dir": str(tmp_path_factory.mktemp("first") / "data")})
    index = Index(cfg)
    assert ensure_knowledge(index, repo_root(), say=lambda _line: None)
    copilot = Copilot(cfg, index=index)
    assert copilot.model is None  # offline mode, as a first run without a key
    with ServerThread(create_app(copilot, cfg)) as url:
        yield url


@pytest.fixture
def page(browser, server):
    page = open_chat(browser, server)
    yield page
    page.context.close()


def click_example(page, text: str) -> dict:
    page.get_by_text(text, exact=True).first.click()
    page.wait_for_function("() => document.querySelectorAll('#dc-chat .dc-speaker').length > 0", timeout=60_000)
    wait_idle(page)
    settle(page)
    return bot_messages(page)[-1]


def test_the_greeting_example_says_who_is_here_and_what_is_indexed(page):
    from ui.app import EXAMPLES

    reply = click_example(page, EXAMPLES[0])
    assert reply["speaker"].endswith("Guide")
    assert "@Tutoring" in reply["text"] and "@Coding" in reply["text"] and "KB 'default'" in reply["text"]


@pytest.mark.parametrize("question, speaker, path, also", [
    # The chat's examples (ui/app.py EXAMPLES), sent by clicking them.
    ("How do I get started?", "Tutoring", "README.md", "make run"),
    # The command table (`COMMANDS`, what each subcommand runs) or `main`: either defines the command line.
    ("@Coding where is the command line defined?", "Coding", "ui/cli.py", ("COMMANDS = {", "def main")),
    ("@Tutoring how do I add a source and re-index?", "Tutoring", "README.md", "devcopilot ingest"),
])
def test_each_example_answers_from_the_right_file(page, question, speaker, path, also: str | tuple[str, ...]):
    click_example(page, question)
    answer = answers(page)[-1]
    assert answer["speaker"].endswith(speaker), answer
    assert first_cited_path(answer) == path, answer["links"]
    assert not answer["text"].lstrip().startswith("I don't know"), answer["text"][:300]
    assert any(a in answer["text"] for a in ((also,) if isinstance(also, str) else also)), answer["text"][:1500]


@pytest.mark.parametrize("question, speaker, path, also", [
    ("How do I get started?", "Tutoring", "README.md", "make run"),
    ("How do I ingest a git repository?", "Tutoring", "README.md", "devcopilot ingest https://"),
    ("How do I add my own assistant?", "Tutoring", "README.md", "[[assistants]]"),
    ("@Coding where is the hybrid search fusion implemented?", "Coding", "indexes/search.py", "fuse"),
])
def test_a_newcomers_first_questions_answer_from_the_right_file(page, question, speaker, path, also):
    ask(page, question)
    answer = answers(page)[-1]
    assert answer["speaker"].endswith(speaker), answer
    assert first_cited_path(answer) == path, answer["links"]
    assert not answer["text"].lstrip().startswith("I don't know"), answer["text"][:300]
    assert also in answer["text"], answer["text"][:1500]
    if speaker == "Tutoring":  # a how-to is answered from the docs: no code is quoted
        assert all(not a["text"].endswith(".py") and ".py:" not in a["text"] for a in cited(answer)), answer["links"]
