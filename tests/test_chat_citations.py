"""What the offline chat cites: the Guide's local routing looks where the search finds the answer, an assistant of
one kind cites its kind's hits in the order of the search of both kinds, and a question in Chinese is searched as
written. Real index, embedding model and chat; no language model."""
from __future__ import annotations

import pytest
from support.chat import World, make_copilot, run
from support.corpus import write_tree

from copilot.assistants import default_assistants
from copilot.condense import condense
from copilot.config import load_config
from copilot.routing import LEAD, classify, where_answered
from indexes.build import ingest
from indexes.retrieve import COVERED_BY, Retrieval, coverage, retrieve
from indexes.search import Hit, Index
from ingest.chunk import Chunk

A = default_assistants()
CODING, TUTORING = (next(a for a in A if a.name == name) for name in ("Coding", "Tutoring"))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A guide page on sending files, the code that retries a failed upload (in the words of a question the words
    alone would send to the docs), and a function named for the model used when none is named."""
    root = tmp_path_factory.mktemp("citations")
    project = write_tree(root / "project", {
        "docs/sending.md": """
            # Sending files

            Send a file to the server with `send(path)`. The server stores it under its name and answers
            with the stored file's address. Large files are sent in parts.
            """,
        "docs/agents.md": """
            # Agents and models

            Each agent names the model it uses, and a run config may name one for the whole run: which model
            an agent uses, and how the run config names one for every agent of the run.
            """,
        "docs/settings.md": """
            # Settings

            The PKG_MODEL environment variable picks the model when neither an agent nor the run config names one.
            """,
        "pkg/retry.py": '''
            def retry_failed_upload(path, attempts=3):
                """Retry a failed upload automatically: a failed upload is tried again, up to three attempts,
                waiting longer after each failed attempt."""
                for attempt in range(attempts):
                    if send(path):
                        return True
                return False


            def upload_failed(error) -> bool:
                """Whether a failed upload is retried automatically: a timeout or a dropped connection is."""
                return isinstance(error, (TimeoutError, ConnectionError))
            ''',
        "pkg/run.py": '''
            class RunConfig:
                """Settings for a whole run: the model every agent of the run uses, when the config names one."""
                workflow: str = "run"


            def model_for(agent, config):
                """The model an agent uses in a run: the agent's own, or the one the run config names."""
                return agent.model or config.model or get_default_model()
            ''',
        "pkg/models.py": '''
            import os


            def get_default_model() -> str:
                return os.getenv("PKG_MODEL", "small-1")
            ''',
    })
    cfg = load_config(env={}, overrides={"data_dir": str(root / "data")})
    index = Index(cfg)
    ingest(index, [str(project)], "default")
    return World(root, cfg, index)


def test_the_guide_hands_a_question_to_where_the_search_finds_its_answer(world, tmp_path):
    question = "Is a failed upload retried automatically?"
    assert classify(question, A) == [TUTORING]  # the words alone: no word asks for code
    found = retrieve(world.index, question, ["default"], k=10)
    assert found.hits[0].chunk.path == "pkg/retry.py" and where_answered(found) == "code"
    _, answers = run(make_copilot(world, tmp_path), question)
    assert [a[0] for a in answers] == ["Guide", "Coding"]
    assert answers[1][2][0].path == "pkg/retry.py"


def test_the_words_decide_when_the_search_does_not_say(world, tmp_path):
    # a greeting never searches; a question the search cannot answer keeps the words' choice
    assert classify("hello", A, lean=lambda: pytest.fail("a greeting needs no search")) == []
    assert classify("How do I bake sourdough bread?", A, lean=lambda: None) == [TUTORING]
    # both assistants, when the words ask for both: the one whose kind the search puts first speaks first
    both = "How can I expose only read_file and write_file from an MCP server?"
    assert classify(both, A) == [TUTORING, CODING]
    assert classify(both, A, lean=lambda: "code") == [CODING, TUTORING]


def _hits(*scored: tuple[str, float]) -> list[Hit]:
    return [Hit(Chunk(id=f"c{i}", path=f"f{i}", kind=kind, language="", text="x", start_line=1, end_line=1), score,
                "default")
            for i, (kind, score) in enumerate(scored)]


def test_where_the_answer_is_needs_a_clear_lead():
    assert where_answered(Retrieval(_hits(("code", 1.0), ("doc", 0.8)), weak=False)) == "code"
    assert where_answered(Retrieval(_hits(("doc", 1.0), ("doc", 0.99)), weak=False)) == "doc"  # one kind only
    near = LEAD + (1 - LEAD) / 2  # within the lead: a near race says nothing
    assert where_answered(Retrieval(_hits(("code", 1.0), ("doc", near)), weak=False)) is None
    assert where_answered(Retrieval(_hits(("code", 1.0), ("doc", 0.5)), weak=True)) is None  # nothing answers
    assert where_answered(Retrieval([], weak=True)) is None


def test_an_assistant_of_one_kind_cites_in_the_order_of_the_search_of_both_kinds(world, tmp_path):
    # The rules that read a default question (indexes/search.py) order the search of both kinds; a search of code
    # alone cannot apply them, and leaves the function named for the default behind.
    question = "Which model is used when neither the agent nor the run config names one?"
    alone = [h.chunk.symbol for h in retrieve(world.index, question, ["default"], kind="code", k=6).hits]
    both = [h.chunk.symbol for h in retrieve(world.index, question, ["default"], k=10).hits
            if h.chunk.kind == "code"]
    assert both.index("get_default_model") < alone.index("get_default_model")
    _, answers = run(make_copilot(world, tmp_path), f"@Coding {question}")
    cited = [s.title for s in answers[0][2]]
    assert cited[:len(both)] == both[:len(cited)]


def test_a_question_in_chinese_is_searched_as_written_without_a_model():
    question = "怎么用 MemoryStore 保存长期记忆？"  # the search reads 长期记忆 through its term map
    assert condense(question, [], None, "English", "Tutoring") == (question, "as-is")


def test_the_verdict_reads_the_passages_an_assistant_quotes(world):
    # Three passages that share little of the question, then the one that answers it: read as far as an assistant
    # quotes (six), the question is covered; read to the third, it would be "I don't know".
    question = "Which environment variable picks the model?"
    chunks = {h.chunk.path: h for h in retrieve(world.index, "retry failed upload send file model run", ["default"],
                                                k=10).hits}
    answer = retrieve(world.index, question, ["default"], kind="doc", k=3).hits[0]
    assert answer.chunk.path == "docs/settings.md"
    hits = [chunks[p] for p in ("pkg/retry.py", "docs/sending.md", "pkg/run.py")] + [answer]
    assert COVERED_BY >= 4 and coverage(world.index, question, hits) >= 0.9
    assert coverage(world.index, question, hits[:3]) < world.cfg.search.min_overlap


@pytest.fixture(scope="module")
def one_release(tmp_path_factory):
    """An unpacked sdist of one version (its PKG-INFO names it), whose changelog tells what each release added."""
    root = tmp_path_factory.mktemp("one_release")
    project = write_tree(root / "shop-2.0", {
        "PKG-INFO": "Metadata-Version: 2.1\nName: shop\nVersion: 2.0\n",
        "CHANGELOG.md": """
            # Changelog

            ## 2.0

            New in shop 2.0: baskets remember their owner.

            ## 1.5

            New in shop 1.5: gift cards. `Basket.add_gift_card(code)` takes a card's code and lowers the total.
            """,
        "shop/basket.py": '''
            class Basket:
                """A customer's basket."""

                def add_gift_card(self, code):
                    self.cards.append(code)
            ''',
    })
    cfg = load_config(env={}, overrides={"data_dir": str(root / "data")})
    index = Index(cfg)
    ingest(index, [str(project)], "default")
    return World(root, cfg, index)


def test_a_release_the_versions_cannot_compare_is_answered_from_the_changelog(one_release, tmp_path):
    _, answers = run(make_copilot(one_release, tmp_path), "What's new in shop 1.5?")
    speaker, text, sources = answers[-1]
    assert speaker == "Coding"
    # what to index to compare the code, then what the changelog says
    assert text.startswith("shop 1.5 is not indexed in KB 'default'; its versions are 2.0 — index it with "
                           "`devcopilot ingest pypi:shop==1.5`")
    assert sources and sources[0].path == "CHANGELOG.md" and "gift cards" in text
    assert "version 2.0" in sources[0].origin and "git" not in sources[0].origin  # from PKG-INFO, no checkout
    # With no release notes in the KB, the sentence alone (tests/test_changes_doors.py
    # `test_chat_names_a_version_not_indexed_in_one_sentence`).
