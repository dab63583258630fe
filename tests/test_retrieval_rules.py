"""Each retrieval rule, tested on its own and through a real index (real model, Chroma, BM25)."""
from __future__ import annotations

import re

import pytest
from support.corpus import write_tree

import indexes.search as search_module
from indexes.build import ingest
from indexes.lexical import TOKENIZER_VERSION, tokenize
from indexes.page_kind import asks_for_news, is_news
from indexes.plain_names import defaults_by_name
from indexes.query_kind import ASKS_DEFAULT, BEHAVIOUR, CREATES, WHICH_PART, read_intent, read_kind
from indexes.retrieve import named_symbols, picks_one, retrieve
from indexes.search import (
    Hit,
    Index,
    asked_kind,
    default_setter,
    fuse,
    fuse_scores,
    is_mostly_cjk,
    lift,
    lift_kind,
    spelled_names,
    spread_files,
)
from indexes.side_folders import asks_for_side_folders, in_docs_folder, in_side_folder
from indexes.terms_zh import english_terms
from ingest.chunk import Chunk


def indexed(tmp_path_factory, name: str, files: dict[str, str]) -> Index:
    """An Index over `files` written to a fresh folder and ingested into the default KB."""
    from copilot.config import load_config

    root = write_tree(tmp_path_factory.mktemp(name), files)
    index = Index(load_config(env={}, overrides={"data_dir": str(tmp_path_factory.mktemp("data"))}))
    ingest(index, [str(root)], "default")
    return index


def test_identifiers_are_kept_whole_and_split():
    toks = tokenize("Runner.run_streamed uses RunConfig and HTTPServer")
    expected = {"runner", "run_streamed", "run", "stream", "runconfig", "config", "httpserver", "http", "server"}
    assert expected <= set(toks)


def test_stop_words_and_contractions_are_dropped():
    toks = tokenize("What happens if I don't pass the model to the agent?")
    assert "the" not in toks and "don" not in toks and "if" not in toks
    assert "model" in toks and "agent" in toks


def test_cjk_text_becomes_overlapping_pairs():
    assert tokenize("多轮对话") == ["多轮", "轮对", "对话"]
    assert is_mostly_cjk("怎么配置重试？") and not is_mostly_cjk("how do I configure retries? 重")


def test_term_map_prefers_the_longest_term():
    # 环境变量 is "environment variable", not 环境 + 变量 ("variable") on its own
    assert english_terms("怎么读取环境变量？") == "environment variable read"
    assert english_terms("no chinese here") == ""


def test_reciprocal_rank_fusion_rewards_agreement():
    fused = dict(fuse([([("a", 1.0), ("b", 0.9)], 1.0), ([("b", 5.0), ("c", 4.0)], 1.0)], 60))
    assert fused["b"] > fused["a"] > fused["c"]


def test_score_fusion_lets_a_sure_retriever_outweigh_a_near_tie():
    lexical = [("a", 10.0), ("b", 9.9), ("c", 9.8)]  # three almost equal BM25 scores
    dense = [("c", 0.90), ("a", 0.50), ("b", 0.49), ("z", 0.48)]  # one clear winner
    by_rank = [cid for cid, _ in fuse([(lexical, 1.0), (dense, 1.0)], 60)]
    by_score = [cid for cid, _ in fuse_scores([(lexical, 1.0, 0.0), (dense, 1.0, None)], 3)]
    assert by_rank[0] == "a"  # reciprocal rank sees only the order
    assert by_score[0] == "c"
    assert "z" not in by_score  # read for scaling only: below the fused depth


def test_score_fusion_gives_nothing_for_a_list_missing_a_chunk():
    fused = dict(fuse_scores([([("a", 4.0), ("b", 2.0)], 0.6, 0.0), ([("b", 0.8), ("c", 0.7), ("d", 0.2)], 0.4, None)],
                             10))
    assert fused["a"] == pytest.approx(0.6)  # top of lexical, absent from dense
    assert fused["b"] == pytest.approx(0.6 * 0.5 + 0.4)
    assert fused["d"] == pytest.approx(0.0)  # the dense floor


def test_unknown_fusion_is_one_sentence(tmp_path):
    from copilot.config import ConfigError, load_config

    conf = tmp_path / "c.toml"
    conf.write_text('[search]\nfusion = "max"\n')
    with pytest.raises(ConfigError, match="Unknown search fusion 'max'; use score or rrf."):
        load_config(conf, env={})


@pytest.fixture(scope="module")
def bilingual(tmp_path_factory):
    """An English doc, its Chinese translation, and code, like a framework with translated docs."""
    return indexed(tmp_path_factory, "bilingual", {
        "docs/retries.md": """
            # Retries

            Calls that fail with a rate limit are retried with exponential backoff.
            Set `max_retries` on the client to change how many times a call is retried.
            """,
        "docs/zh/retries.md": """
            # 重试

            因为速率限制而失败的调用会以指数退避的方式重试。
            在客户端上设置 `max_retries` 可以改变重试的次数。
            """,
        "docs/sessions.md": """
            # Sessions

            A session keeps the conversation history so the agent remembers earlier turns.
            """,
        "pkg/client.py": '''
            class Client:
                """An API client."""

                def __init__(self, max_retries=2, timeout=30.0):
                    self.max_retries = max_retries
                    self.timeout = timeout
            ''',
    })


def test_english_question_ranks_the_original_above_its_translation(bilingual):
    paths = [h.chunk.path for h in bilingual.search("how are rate limited calls retried?", k=5)]
    assert "docs/retries.md" in paths and "docs/zh/retries.md" in paths
    assert paths.index("docs/retries.md") < paths.index("docs/zh/retries.md")


def test_chinese_question_finds_english_docs_through_the_term_map(bilingual):
    # No Chinese doc talks about sessions: only the English terms (会话 -> session,
    # 历史 -> history, 对话 -> conversation) can find docs/sessions.md.
    hits = bilingual.search("会话怎么保存对话历史？", k=3)
    assert hits and hits[0].chunk.path == "docs/sessions.md"


def test_chinese_question_with_an_identifier_finds_the_code(bilingual):
    hits = bilingual.search("Client 的 max_retries 默认是多少？", k=3, kind="code")
    assert hits[0].chunk.path == "pkg/client.py" and hits[0].chunk.symbol.startswith("Client")


def test_a_tokenizer_change_recomputes_stored_tokens(bilingual):
    cat = bilingual.catalog
    cid = next(iter(cat.chunk_ids("default")))
    cat.db.execute("UPDATE chunks SET tokens='stale' WHERE kb='default' AND id=?", (cid,))
    cat.set_meta("tokenizer:default", "0")
    bilingual.rebuild_lexical("default")
    tokens = cat.db.execute("SELECT tokens FROM chunks WHERE kb='default' AND id=?", (cid,)).fetchone()[0]
    assert tokens != "stale" and cat.get_meta("tokenizer:default") == TOKENIZER_VERSION


def test_hits_say_where_each_retriever_ranked_them(bilingual):
    top = bilingual.search("max_retries client timeout", k=3)[0]
    assert top.chunk.path == "pkg/client.py"
    assert set(top.ranks) == {"lexical", "dense"} and max(top.ranks.values()) < 3


def test_rrf_fusion_stays_available(bilingual, tmp_path):
    from copilot.config import load_config

    cfg = load_config(env={}, overrides={"data_dir": str(bilingual.cfg.data_dir), "search": {"fusion": "rrf",
                                                                                        "read_kind": False}})
    hits = Index(cfg).search("how are rate limited calls retried?", k=3)
    assert hits[0].chunk.path == "docs/retries.md" and hits[0].score < 0.05  # a reciprocal-rank score


@pytest.mark.parametrize("question, kind", [
    ("How do I cancel a streamed run?", "doc"),
    ("How can I expose only read_file from an MCP server?", "doc"),  # how-to beats an identifier
    ("Is there a way to retry failed calls?", "doc"),
    ("How do my users turn on tab completion?", "doc"),
    ("What happens if I call cancel() twice?", "code"),
    ("If I don't pass a model, which provider is used?", "code"),  # no code word, but asks for a default
    ("How does the runner decide which tool to call first?", "code"),
    ("Runner.run 默认最多执行多少轮？", "code"),
    ("怎么在两个智能体之间做 handoff？", "doc"),
    ("retries", None),
    ("How are rate limited calls retried?", None),  # "calls" (tool calls, model calls) is everyday API talk
    ("Why was the 0.12.0 release yanked?", "doc"),  # a version number is no identifier
    ("What does Runner.run return in v2.1?", "code"),
])
def test_the_question_wording_tells_which_kind_it_asks_for(question, kind):
    assert read_kind(question) == kind


def _hits(*kinds: str) -> list[Hit]:
    return [Hit(Chunk(f"text {i}", f"f{i}", 1, 2, k, "md" if k == "doc" else "python"), 1.0 - i / 10, "default")
            for i, k in enumerate(kinds)]


def test_the_asked_for_kind_steps_ahead_of_close_hits_within_the_top_five():
    hits = _hits("doc", "code", "doc", "doc", "code", "code")
    # as if its rank were three times better: the second overtakes the first, the fifth the third
    # and fourth; the sixth, outside the top five, stays where it is
    assert [h.chunk.path for h in lift_kind(hits, "code")] == ["f1", "f0", "f4", "f2", "f3", "f5"]
    assert [h.chunk.path for h in lift_kind(hits, "doc")] == ["f0", "f2", "f3", "f1", "f4", "f5"]
    assert lift_kind(hits, None) == hits
    third = _hits("doc", "doc", "code")
    assert [h.chunk.path for h in lift_kind(third, "code")] == ["f0", "f2", "f1"]  # a third does not pass a first


def test_when_the_top_five_hold_none_of_the_asked_for_kind_the_best_of_the_top_fifteen_gets_a_place():
    hits = _hits(*["doc"] * 8, "code", "code", *["doc"] * 10)
    seated = [h.chunk.path for h in lift_kind(hits, "code")]
    # f8 takes the fifth place, then the lift carries it past the second to fourth; f9 stays below
    assert seated[:6] == ["f0", "f8", "f1", "f2", "f3", "f4"]
    assert seated.index("f9") == 9 and len(seated) == len(hits)
    assert [h.score for h in lift_kind(hits, "code")] == [h.score for h in hits]  # places keep their scores
    too_far = _hits(*["doc"] * 15, "code")
    assert lift_kind(too_far, "code") == too_far  # the sixteenth is left where it is
    has_one = _hits("doc", "doc", "doc", "doc", "code", "code")
    assert [h.chunk.path for h in lift_kind(has_one, "code")][:5] == ["f0", "f4", "f1", "f2", "f3"]  # only lifted


@pytest.fixture(scope="module")
def doc_and_code(tmp_path_factory):
    """A guide and the code it describes: both answer questions about cancelling."""
    return indexed(tmp_path_factory, "cancel", {
        "docs/streaming.md": """
            # Cancelling a streamed run

            Call `cancel()` on a streamed result to stop the run. By default it stops at once;
            pass `mode="after_turn"` to let the current turn finish first.
            """,
        "pkg/result.py": '''
            class StreamedResult:
                """The result of a streamed run."""

                def cancel(self, mode="immediate"):
                    """Stop the streamed run: at once, or after the current turn with mode="after_turn"."""
                    self._cancel_mode = mode
                    if mode == "immediate":
                        self._queue.clear()
                    self._stopped = True
            ''',
    })


def test_search_puts_first_the_kind_the_question_asks_for(doc_and_code):
    how = [h.chunk.kind for h in doc_and_code.search("How do I cancel a streamed run?", k=3)]
    what = [h.chunk.kind for h in doc_and_code.search("What happens if I cancel a streamed run?", k=3)]
    assert how[0] == "doc" and what[0] == "code"
    assert sorted(how) == sorted(what)  # the same chunks, in another order


def test_plain_words_that_spell_a_defined_name_name_it():
    from indexes.plain_names import named_in_plain_words, names_by_key

    names = names_by_key(["RealtimeRunner.__init__", "ModelSettings.resolve", "function_tool", "FunctionTool",
                          "isthe", "Agent"])
    assert named_in_plain_words("If I don't pass a model to the realtime runner's constructor?", names) \
        == {"RealtimeRunner"}  # possessive kept; "don't" is no word
    assert named_in_plain_words("Do the run-level model settings win?", names) == {"ModelSettings"}
    assert named_in_plain_words("How is a function tool built?", names) == {"function_tool", "FunctionTool"}
    assert named_in_plain_words("what is the agent doing", names) == set()  # one word, or stop words at the edge


def test_a_defined_name_written_as_code_names_it():
    from indexes.plain_names import named_in_plain_words, names_by_key

    names = names_by_key(["ModelSettings.resolve", "function_tool", "Agent", "Runner", "UserError"])
    assert named_in_plain_words("How strict is ModelSettings about extra keys?", names) == {"ModelSettings"}
    # an exception the question names is what went wrong, not what it asks about
    assert named_in_plain_words("I passed input_type and got a UserError. Why?", names) == set()
    # one hump is an ordinary capitalised word ("Agent", "Runner"), not a name written as code
    assert named_in_plain_words("Agent or Runner: which one holds the model?", names) == set()


def test_a_named_definition_is_lifted_then_the_asked_for_kind():
    hits = _hits("doc", "code", "code", "code")
    hits[3].chunk.symbol = "RetryPolicy.delay"
    named = lift(hits, lambda h: h.chunk.symbol.split(".")[0] == "RetryPolicy")
    assert [h.chunk.path for h in named] == ["f0", "f3", "f1", "f2"]  # fourth, three times better, overtakes two
    both = [h.chunk.path for h in lift_kind(named, "code")]
    assert both == ["f3", "f0", "f1", "f2"]  # then the kind: the named code chunk, now second, passes the doc


@pytest.fixture(scope="module")
def named_class(tmp_path_factory):
    """Many pages about a backoff schedule, and the class that holds its numbers."""
    pages = {f"docs/guide{i}.md": f"""
        # Waiting between attempts, part {i}

        When the server is busy, calls are retried. Each backoff waits longer, following the schedule:
        the backoff schedule doubles the wait after each busy answer. Part {i} explains the backoff
        schedule and its waits in detail, with the schedule for busy servers.
        """ for i in range(40)}
    return indexed(tmp_path_factory, "named", {**pages, "pkg/backoff.py": '''
        class BackoffSchedule:
            """Waiting times between attempts."""

            def __init__(self, first=0.5, factor=2.0, cap=30.0):
                self.first, self.factor, self.cap = first, factor, cap
        '''})


def test_search_lifts_the_definition_a_question_names_in_plain_words(named_class):
    q = "How long does the backoff schedule wait first?"
    assert "BackoffSchedule" in [h.chunk.symbol for h in named_class.search(q, k=5)]  # the class header
    named_class.cfg.search.plain_names = False
    try:
        assert "BackoffSchedule" not in [h.chunk.symbol for h in named_class.search(q, k=5)]
    finally:
        named_class.cfg.search.plain_names = True


def test_a_named_definition_retrieval_missed_joins_the_hits(named_class):
    named_class.cfg.search.plain_names = False
    try:
        hits = named_class.search("How long does the backoff schedule wait first?", k=3)
    finally:
        named_class.cfg.search.plain_names = True
    added = named_class._with_definitions("default", hits, {"BackoffSchedule", "NoSuchClass"})
    assert [h.chunk.symbol for h in added[:3]] == [h.chunk.symbol for h in hits]  # after the first ten (here: all)
    assert len(added) == 4 and added[3].chunk.symbol == "BackoffSchedule" and added[3].chunk.start_line == 1


def test_named_definitions_are_looked_up_through_an_index(tmp_path):
    from indexes.catalog import Catalog

    cat = Catalog(tmp_path / "catalog.sqlite")
    cat.db.execute("DROP INDEX chunks_by_symbol")  # a catalog written before the index existed
    cat.close()
    cat = Catalog(tmp_path / "catalog.sqlite")  # opening it adds the index
    for sql in ("SELECT DISTINCT symbol FROM chunks WHERE kb='k' AND kind='code' AND symbol != ''",
                "SELECT id FROM chunks WHERE kb='k' AND kind='code' AND symbol='X' ORDER BY path, start_line LIMIT 1"):
        plan = " ".join(str(row) for row in cat.db.execute("EXPLAIN QUERY PLAN " + sql))
        assert "chunks_by_symbol" in plan  # not a scan of every chunk's text


def test_lifted_hits_still_read_best_first_by_score():
    hits = _hits("doc", "code", "doc", "code")
    lifted = lift_kind(hits, "code")
    assert [h.chunk.path for h in lifted] == ["f1", "f0", "f3", "f2"]
    assert [h.score for h in lifted] == [h.score for h in hits]  # the places keep their scores
    assert hits[1].score == 0.9  # the caller's hits are not changed


@pytest.fixture(scope="module")
def busy_pages(tmp_path_factory):
    """Eight guide pages that all talk about retrying a busy server, and the small function that
    decides the delay, in words of its own."""
    pages = {f"docs/busy{i}.md": f"""
        # Busy servers, part {i}

        When the server is busy, a call fails and is retried after a delay. Part {i}: how long the wait
        before the next try is when the server stays busy, and what happens to calls that keep failing.
        """ for i in range(8)}
    return indexed(tmp_path_factory, "busy", {**pages, "pkg/retry.py": '''
        def next_delay(attempt: int) -> float:
            """Backoff for the given attempt, in seconds."""
            return min(60.0, 0.5 * 2 ** attempt)
        '''})


def test_a_question_about_what_the_code_does_gets_the_code_into_the_top_five(busy_pages):
    q = "What happens if the server stays busy: how long is the wait before the next try?"
    assert read_kind(q) == "code"
    assert "pkg/retry.py" in [h.chunk.path for h in busy_pages.search(q, k=5)]
    busy_pages.cfg.search.read_kind = False
    try:
        paths = [h.chunk.path for h in busy_pages.search(q, k=15)]
    finally:
        busy_pages.cfg.search.read_kind = True
    assert paths.index("pkg/retry.py") >= 5  # every guide page scores above it


def test_side_folders_are_top_folders_of_examples_tests_scripts_and_benchmarks():
    for path in ("examples/basic/hello.py", "tests/test_x.py", "scripts/release.py", "benchmarks/run.py",
                 "typing-examples/mypy.py", "bench/x.py"):
        assert in_side_folder(path), path
    for path in ("docs/examples/recipes.md", "src/pkg/testing.py", "src/pkg/examples.py", "README.md", "pkg/script.py"):
        assert not in_side_folder(path), path


def test_a_question_that_asks_for_examples_or_tests_is_told_apart_from_one_that_says_for_example():
    for q in ("Show me an example of a custom tool", "Are there examples of streaming?", "Is there example code for X?",
              "How do I write a test for my handler?", "有没有流式输出的示例？"):
        assert asks_for_side_folders(q), q
    for q in ("Can I block a call, for example when it holds a key?", "What sample rate is assumed?",
              "Can I allow api.*.example.com?", "How does the runner decide to stop?"):
        assert not asks_for_side_folders(q), q


# A library function, and a script that uses it in the same words, more often (as an example or a docs snippet).
CACHE_LIBRARY = {"pkg/cache.py": '''
    def remember(fn, seconds=60):
        """Keeps each result of fn cached for `seconds`; older cached results are computed again."""
        store = {}
        def wrapper(key):
            if key not in store:
                store[key] = fn(key)
            return store[key]
        return wrapper
    '''}
CACHE_USE = '''
    # Cache results: how long cached results are kept, and cache expiry.
    from pkg.cache import remember

    def slow_lookup(key):
        return key * 2

    cached = remember(slow_lookup, seconds=5)  # cached results expire: cache kept 5 seconds
    print(cached(1), cached(1))
    '''


@pytest.fixture(scope="module")
def library_and_example(tmp_path_factory):
    """A library function and an example script that uses it in the same words, more often."""
    return indexed(tmp_path_factory, "side", {
        **CACHE_LIBRARY,
        "examples/cache_results.py": CACHE_USE,
        "examples/README.md": "# Examples\n\nSmall scripts, one per feature.\n",
    })


def _paths(index: Index, q: str, weight: float) -> list[str]:
    index.cfg.search.side_folder_weight = weight
    try:
        return [h.chunk.path for h in index.search(q, k=4)]
    finally:
        index.cfg.search.side_folder_weight = 0.7


def test_example_code_steps_behind_the_library_it_uses_at_close_scores(library_and_example):
    q = "How long are cached results kept by remember?"
    assert _paths(library_and_example, q, 1.0)[:3] == ["examples/cache_results.py"] * 2 + ["pkg/cache.py"]
    # the example's best chunk is far ahead and keeps its place; its second one steps behind
    assert _paths(library_and_example, q, 0.7)[:3] == ["examples/cache_results.py", "pkg/cache.py",
                                                        "examples/cache_results.py"]


def test_a_question_asking_for_an_example_keeps_examples_where_they_score(library_and_example):
    q = "Show me an example of how long cached results are kept"
    assert _paths(library_and_example, q, 0.7) == _paths(library_and_example, q, 1.0)
    assert _paths(library_and_example, q, 0.7)[0] == "examples/cache_results.py"


# -- issue 28: what the question's intent, the kind of page and the spread over files decide ---------------
@pytest.mark.parametrize("question, intent", [
    ("What's the difference between add_trace_processor and set_trace_processors?", "compare"),
    ("For a voice app, when should I use AudioInput and when StreamedAudioInput?", "compare"),
    ("Should I return an error string, raise ToolError, or raise MCPError?", "compare"),
    ("How can I expose only read_file from an MCP server?", "how_to"),
    ("有什么办法让 TemplateResponse 自动带上 context？", "how_to"),
    ("Why does my websocket endpoint throw on receive_text()?", "why"),
    ("What does add_trace_processor do with the processors already set?", None),
    ("How strict is the quote matching in CitationMixin?", None),
])
def test_the_question_wording_tells_its_intent(question, intent):
    assert read_intent(question) == intent


@pytest.fixture(scope="module")
def traced(tmp_path_factory):
    """A tracing guide that weighs two functions, their definitions, an exception, and a name defined thrice."""
    return indexed(tmp_path_factory, "traced", {
        "docs/tracing.md": """
            # Tracing

            ## Adding or replacing trace processors

            The difference between add_trace_processor and set_trace_processors: add_trace_processor
            adds a processor beside the default one, so traces still reach the default backend;
            set_trace_processors replaces the default processors with yours, so traces go only to your
            own backend. Use the first to add a backend, the second to replace it.
            """,
        "pkg/tracing.py": '''
            class TraceError(Exception):
                """A trace could not be exported."""


            def add_trace_processor(processor):
                """Adds a processor that receives every trace."""
                PROCESSORS.append(processor)


            def set_trace_processors(processors):
                """Sets the processors that receive traces, replacing the current ones."""
                PROCESSORS[:] = list(processors)
            ''',
        "CHANGELOG.md": """
            # Changelog

            ## 2.0.0

            - What changed for add_trace_processor: when you move to 2.0, it keeps the default processor
              beside yours (1.x replaced it).
            """,
        "pkg/a.py": "def handle(event):\n    return event\n",
        "pkg/b.py": "def handle(event):\n    return None\n",
        "pkg/c.py": "def handle(event):\n    raise ValueError(event)\n",
    })


def test_a_question_comparing_two_functions_keeps_the_page_that_weighs_them_first(traced):
    q = "What's the difference between add_trace_processor and set_trace_processors?"
    assert traced.search(q, k=5)[0].chunk.path == "docs/tracing.md"  # the ranking leads with the guide
    hits = retrieve(traced, q, ["default"], k=5).hits
    assert hits[0].chunk.path == "docs/tracing.md"  # not the first named definition
    assert {"add_trace_processor", "set_trace_processors"} <= {h.chunk.symbol for h in hits}  # both in the top 5


def test_a_question_about_a_function_itself_gets_its_definition_first(traced):
    hits = retrieve(traced, "What does add_trace_processor do with a processor?", ["default"], k=5).hits
    assert hits[0].chunk.symbol == "add_trace_processor"


def test_a_question_about_a_release_keeps_the_changelog_first(traced):
    q = "Which release changed add_trace_processor to keep the default processor?"
    assert traced.search(q, k=5)[0].chunk.path == "CHANGELOG.md"
    hits = retrieve(traced, q, ["default"], k=5).hits
    assert hits[0].chunk.path == "CHANGELOG.md" and "add_trace_processor" in [h.chunk.symbol for h in hits]


def test_only_a_name_that_picks_out_one_definition_is_put_first(traced):
    assert picks_one(traced, ["default"], "add_trace_processor", None)
    assert not picks_one(traced, ["default"], "TraceError", None)  # what went wrong, not what is asked about
    assert not picks_one(traced, ["default"], "__init__", None)  # every class has one
    assert not picks_one(traced, ["default"], "handle", None)  # three of them: the question does not say which
    assert named_symbols('I return `Image(data=b, format="jpg")` from a tool') == ["Image"]
    # a name used as a modifier is not what the question asks about
    assert named_symbols("Does the SentencePiece style pre-tokenizer honour add_prefix_space?") == ["add_prefix_space"]
    assert named_symbols("Can I build a FastApi-like router here?") == []
    assert named_symbols("Is FastApi here?") == ["FastApi"]


@pytest.fixture(scope="module")
def long_function(tmp_path_factory):
    """A function long enough for two chunks: its second part holds what a question asks about."""
    body = "\n".join(f"    step_{i} = prepare(schema, {i})  # an ordinary step" for i in range(40))
    code = (f'def build_schema(model):\n    """Builds the JSON schema of a model."""\n    schema = {{}}\n{body}\n'
            '    # Nullable fields: a field whose type allows None gets "nullable": true and no default.\n'
            '    for field in model.fields:\n        if field.allows_none:\n'
            '            schema[field.name] = {"nullable": True}\n    return schema\n')
    return indexed(tmp_path_factory, "long", {
        "pkg/schema.py": code,
        "docs/schema.md": "# Schemas\n\nEvery model gets a JSON schema.\n",
    })


def test_when_the_ranking_leads_with_part_of_a_named_function_that_part_stays_first(long_function):
    q = "Which fields does build_schema mark nullable, and do they keep a default?"
    ranked = long_function.search(q, k=5)
    assert ranked[0].chunk.symbol == "build_schema" and "def build_schema" not in ranked[0].chunk.text
    assert retrieve(long_function, q, ["default"], k=5).hits[0].chunk.id == ranked[0].chunk.id


@pytest.fixture(scope="module")
def guide_and_news(tmp_path_factory):
    """A guide to a feature, the blog post and the changelog that announced it in more of the same words."""
    return indexed(tmp_path_factory, "news", {
        "docs/guides/caching.md": """
            # Caching

            Turn on caching with `cache=True` on the client: responses are cached on disk, and a repeated
            prompt is answered from the cache.
            """,
        "docs/blog/posts/caching.md": """
            # Announcing: turn on caching of responses

            You can now turn on caching of responses: cached responses answer repeated prompts.
            """,
        "CHANGELOG.md": """
            # Changelog

            ## 2.0.0

            - Caching: responses can be cached on disk (turn on caching with cache=True).
            """,
    })


def test_news_pages_are_told_from_guides_by_path_and_heading():
    def doc(path, headings=()):
        return Chunk(path=path, start_line=1, end_line=2, kind="doc", language="markdown", text="x",
                     headings=list(headings))

    assert is_news(doc("docs/blog/posts/caching.md")) and is_news(doc("CHANGELOG.md"))
    assert is_news(doc("docs/history/hatch.md")) and is_news(doc("docs/release.md"))
    assert is_news(doc("docs/notes.md", ["Release notes", "2.0"]))
    assert not is_news(doc("docs/guides/caching.md")) and not is_news(doc("docs/ref/handoffs/history.md"))
    assert asks_for_news("What's new in 2.0?") and asks_for_news("Which version added caching?")
    assert not asks_for_news("How do I turn on caching?")
    assert not asks_for_news("How do I run my tests on every Python version from 3.10 to 3.13?")
    assert asks_for_news("When did the regex become optional?") and asks_for_news("Why was 0.12.0 released twice?")
    assert not asks_for_news("Since attrs writes __init__ for me, where do I call super().__init__()?")
    # Migrating to a version is about a release; migrating a project is not.
    assert asks_for_news("How do I migrate to 2.0?") and asks_for_news("Is there a migration guide for v3?")
    assert not asks_for_news("When the tool migrates a setup.py project, how does it read setup()?")
    assert asks_for_news("Is run_sync deprecated?")
    assert not asks_for_news("How do I mark an option as deprecated?")  # a recipe for a feature
    # "which version parts / scheme" asks about version numbers, not a release
    assert not asks_for_news("How do I bump my project from 1.4.2 to 1.5.0, and which version parts can be bumped?")
    assert not asks_for_news("What version scheme does it use?") and asks_for_news("Which versions support it?")


def test_a_guide_comes_before_the_news_that_announced_its_feature(guide_and_news, monkeypatch):
    q = "How do I turn on caching of responses?"
    monkeypatch.setattr(search_module, "NEWS_WEIGHT", 1.0)
    assert guide_and_news.search(q, k=3)[0].chunk.path == "docs/blog/posts/caching.md"  # without the rule
    monkeypatch.setattr(search_module, "NEWS_WEIGHT", 0.7)
    assert guide_and_news.search(q, k=3)[0].chunk.path == "docs/guides/caching.md"


def test_a_question_about_a_release_gets_the_news(guide_and_news, monkeypatch):
    q = "Which release added response caching, and what did the announcement say?"
    hits = guide_and_news.search(q, k=3)
    assert hits[0].chunk.path == "docs/blog/posts/caching.md" and "CHANGELOG.md" in [h.chunk.path for h in hits]
    monkeypatch.setattr(search_module, "NEWS_ASKED_WEIGHT", 1.0)
    plain = guide_and_news.search(q, k=3)[0]
    assert plain.chunk.path == hits[0].chunk.path and hits[0].score == pytest.approx(1.1 * plain.score)  # stepped up


@pytest.fixture(scope="module")
def release_and_code(tmp_path_factory):
    """A class whose option a release made optional, and the changelog that says which release did."""
    return indexed(tmp_path_factory, "release_code", {
        "pkg/pre_tokenizers.py": '''
            class ByteLevel:
                """The byte-level pre-tokenizer: the regex splits the text first, unless use_regex is off."""

                def __init__(self, add_prefix_space=True, use_regex=True):
                    # The regex is optional: turn use_regex off to keep the text whole.
                    self.use_regex = use_regex
            ''',
        # More code in the same words: enough to fill a short list of candidates ahead of the changelog.
        **{f"pkg/byte_level_{i}.py": f'''
            def byte_level_regex_{i}(text, use_regex=True):
                """The ByteLevel pre-tokenizer's regex, optional: split the text with the regex or keep it whole."""
                return REGEX.split(text) if use_regex else [text]
            ''' for i in range(3)},
        "CHANGELOG.md": """
            # Changelog

            ## 0.13.0

            - The regex of ByteLevel is optional now.

            ## 0.12.0

            - Faster training of vocabularies.
            """,
    })


def test_a_question_about_a_release_gets_the_release_notes_before_the_code_it_names(release_and_code, monkeypatch):
    q = "When did the regex in the ByteLevel pre-tokenizer become optional?"
    assert asks_for_news(q) and asked_kind(q) == "code"  # it names code, but asks about a release
    assert release_and_code.search(q, k=3)[0].chunk.path == "CHANGELOG.md"
    assert retrieve(release_and_code, q, ["default"], k=3).hits[0].chunk.path == "CHANGELOG.md"
    monkeypatch.setattr(search_module, "asks_for_news", lambda question: False)  # read as a question about code
    assert release_and_code.search(q, k=3)[0].chunk.path == "pkg/pre_tokenizers.py"


def test_a_release_note_the_hybrid_search_missed_joins_the_hits(release_and_code, monkeypatch):
    q = "When did the regex in the ByteLevel pre-tokenizer become optional?"
    monkeypatch.setattr(release_and_code.cfg.search, "candidates", 2)  # the code's chunks fill the candidates
    monkeypatch.setattr(Index, "_with_news", lambda self, kb, hits, *a, **kw: hits)
    assert "CHANGELOG.md" not in [h.chunk.path for h in release_and_code.search(q, k=3)]
    monkeypatch.undo()
    monkeypatch.setattr(release_and_code.cfg.search, "candidates", 2)
    hits = release_and_code.search(q, k=3)
    assert hits[0].chunk.path == "CHANGELOG.md" and "optional" in hits[0].chunk.text  # the 0.13.0 section
    news = release_and_code.news_ids("default", release_and_code.catalog.kb("default").generation)
    chunks = release_and_code.catalog.get_chunks("default", list(news))
    assert chunks and all(c.path == "CHANGELOG.md" for c in chunks.values())


@pytest.fixture(scope="module")
def one_long_page(tmp_path_factory):
    """A long page on retries (many chunks) and two short pages that also answer about retries."""
    sections = "\n\n".join(f"## Retrying failed calls, part {i}\n\nFailed calls are retried: how failed calls are "
                           f"retried, case {i}. " + "Failed calls are retried after a delay. " * 20 for i in range(8))
    return indexed(tmp_path_factory, "long_page", {
        "docs/retries.md": "# Retries\n\n" + sections,
        "docs/timeouts.md": "# Timeouts\n\nA call that times out counts as failed and is tried again.\n",
        "docs/errors.md": "# Errors\n\nAfter the last attempt the error is raised to the caller.\n",
    })


def test_at_most_three_chunks_of_one_file_in_the_top_ten(one_long_page, monkeypatch):
    q = "How are failed calls retried?"
    monkeypatch.setattr(search_module, "spread_files", lambda hits, *a, **kw: hits)
    crowded = [h.chunk.path for h in one_long_page.search(q, k=10)]
    assert crowded[:5].count("docs/retries.md") >= 4  # without the rule
    monkeypatch.undo()
    paths = [h.chunk.path for h in one_long_page.search(q, k=10)]
    assert paths[:5].count("docs/retries.md") == 3 and {"docs/timeouts.md", "docs/errors.md"} <= set(paths[:5])
    assert paths[5:] == ["docs/retries.md"] * (len(paths) - 5)  # nothing else qualifies: they come back after


def test_spread_files_keeps_order_and_scores_best_first():
    def hit(path, score):
        return Hit(Chunk(path=path, start_line=1, end_line=1, kind="doc", language="markdown", text=path), score, "kb")

    hits = [hit("a.md", 0.9), hit("a.md", 0.8), hit("a.md", 0.7), hit("a.md", 0.6), hit("b.md", 0.5)]
    spread = spread_files(hits, most=3, within=10)
    assert [h.chunk.path for h in spread] == ["a.md", "a.md", "a.md", "b.md", "a.md"]
    assert [h.score for h in spread] == [0.9, 0.8, 0.7, 0.6, 0.5]


def test_a_how_to_question_asks_for_the_docs_even_when_it_names_code():
    q = "How can I change `max_retries` and `timeout` on `Client`?"
    assert read_kind(q) == "code" and asked_kind(q) == "doc"
    behaviour = "How can I find out what `max_retries` defaults to on `Client`?"  # what the code does
    assert asked_kind(behaviour) == read_kind(behaviour) == "code"
    assert asked_kind("What does `Client` do with `max_retries`?") == "code"


def test_search_puts_the_recipe_first_for_a_how_to_question_naming_code(bilingual, monkeypatch):
    q = "How can I change `max_retries` and `timeout` on `Client`?"
    monkeypatch.setattr(search_module, "asked_kind", read_kind)
    assert bilingual.search(q, k=3)[0].chunk.path == "pkg/client.py"  # without the rule
    monkeypatch.undo()
    assert bilingual.search(q, k=3)[0].chunk.path == "docs/retries.md"


@pytest.fixture(scope="module")
def timeouts(tmp_path_factory):
    """Three pages that speak of the client's timeout, and the code that picks it when none is given."""
    return indexed(tmp_path_factory, "timeouts", {
        "docs/timeouts.md": "# Timeouts\n\nEvery request to the server has a timeout. Pass a timeout to the client to "
                            "wait longer for slow requests.\n",
        "docs/client.md": "# The client\n\nCreate the client once and pass it around. The client sends requests to "
                          "the server, with a timeout.\n",
        "docs/retries.md": "# Retries\n\nA request that times out is retried: the client waits for the timeout, "
                           "then sends it again.\n",
        "pkg/client.py": '''
            class Client:
                """Sends requests."""

                def __init__(self, timeout=None):
                    # No timeout given: fall back to 30 seconds, or to DEVCLIENT_TIMEOUT when it is set.
                    self.timeout = timeout if timeout is not None else float(os.environ.get("DEVCLIENT_TIMEOUT", 30))
            ''',
    })


def test_a_question_about_what_the_code_does_in_a_case_gets_the_code_first(timeouts, monkeypatch):
    q = "What happens if I don't pass a timeout to the client?"
    plain = search_module.lift_kind
    monkeypatch.setattr(search_module, "lift_kind", lambda hits, wanted, by=3.0, **more: plain(hits, wanted, **more))
    monkeypatch.setattr(search_module, "default_setter", lambda names: None)  # the default's own lift, apart
    assert [h.chunk.path for h in timeouts.search(q, k=3)][:2] == ["docs/timeouts.md", "pkg/client.py"]  # x3
    monkeypatch.undo()
    assert timeouts.search(q, k=3)[0].chunk.path == "pkg/client.py"


@pytest.fixture(scope="module")
def library_and_docs_snippet(tmp_path_factory):
    """A library function and the snippet a docs page includes, which uses it in the same words, more often."""
    return indexed(tmp_path_factory, "docs_snippet", {
        **CACHE_LIBRARY,
        "docs_src/caching/tutorial001.py": CACHE_USE,
        "docs/caching.md": "# Caching\n\nSee the snippet below.\n",
    })


def test_code_in_a_docs_folder_steps_behind_the_library_it_uses(library_and_docs_snippet, monkeypatch):
    assert in_docs_folder("docs_src/caching/tutorial001.py") and in_docs_folder("docs/snippets/x.py")
    assert not in_docs_folder("src/docs.py") and not in_docs_folder("documentation.md")
    assert not in_side_folder("docs/examples/recipes.md")  # the API surface and the graph read side folders as before
    q = "How long are cached results kept by remember?"
    monkeypatch.setattr(search_module, "in_docs_folder", lambda path: False)
    without = [h.chunk.path for h in library_and_docs_snippet.search(q, k=3)]
    monkeypatch.undo()
    paths = [h.chunk.path for h in library_and_docs_snippet.search(q, k=3)]
    snippet = "docs_src/caching/tutorial001.py"
    assert without == [snippet, snippet, "pkg/cache.py"]
    assert paths == [snippet, "pkg/cache.py", snippet]  # its best chunk is far ahead and keeps its place


def test_a_question_offering_two_outcomes_of_the_code_gets_the_code_first(busy_pages):
    """"Does it do A, or does it do B?" asks what the code does in a case, as "what happens if" does; a question
    offering the asker's own two choices ("should I ... or") is a comparison, and a question in which the
    asker does something is not about the code."""
    q = "When the server stays busy, does the next try wait longer each time, or is the delay always the same?"
    assert BEHAVIOUR.search(q) and asked_kind(q) == "code"
    assert busy_pages.search(q, k=5)[0].chunk.path == "pkg/retry.py"
    merged = "If both set extra headers, does the run's dict replace the agent's or are they combined?"
    assert BEHAVIOUR.search(merged)
    assert not BEHAVIOUR.search("Should I use a session or pass the history by hand?")
    assert not BEHAVIOUR.search("Do I pass the key to the client, or is it read from the environment?")


def test_a_question_asking_which_part_of_the_code_does_something_gets_the_code_first(busy_pages):
    q = "Which function works out the wait before the next try when the server stays busy?"
    assert WHICH_PART.search(q) and not BEHAVIOUR.search(q) and asked_kind(q) == "code"
    assert busy_pages.search(q, k=5)[0].chunk.path == "pkg/retry.py"
    how_to = "How do I point the client at my own server, and which settings does it need?"
    assert WHICH_PART.search(how_to) and asked_kind(how_to) == "doc"  # still the recipe


@pytest.fixture(scope="module")
def waiting_client(tmp_path_factory):
    """Guide pages and a helper that talk about waiting and giving up, and the connection whose constructor gives
    the timeout a default, in words of its own."""
    pages = {f"docs/waiting{i}.md": f"""
        # Waiting for the server, part {i}

        The client waits for the server before it gives up. Part {i}: how long it waits, what it does when the
        server is slow, and how to make it wait longer or give up sooner.
        """ for i in range(6)}
    return indexed(tmp_path_factory, "waiting", {**pages, "pkg/retry.py": '''
        def client_gives_up(waited: float, budget: float) -> bool:
            """The timeout: how long the client waits for the server before it gives up. Once the client has
            waited for the server longer than the timeout, the client gives up waiting for the server."""
            return waited >= budget
        ''', "pkg/connection.py": '''
        class Connection:
            """A line to one host."""

            def __init__(self, host: str, timeout: float | None = None):
                self.host = host
                self.timeout = 30.0 if timeout is None else timeout
        '''})


def test_a_question_asking_for_a_default_gets_the_code_that_handles_the_name_it_spells(waiting_client):
    q = "If I don't pass a timeout, how long does the client wait for the server before it gives up?"
    assert ASKS_DEFAULT.search(q) and "timeout" in spelled_names(q)
    setter = default_setter({"timeout", "client"})
    for code in ("def __init__(self, host: str, timeout: float | None = None):", "connect(host, timeout=timeout)",
                 "if timeout is None:"):
        assert setter.search(code), code
    for code in ("if timeout == 0:", "timeout_s = 5", "timeout = 5  # a plain assignment"):
        assert not setter.search(code), code
    assert waiting_client.search(q, k=5)[0].chunk.path == "pkg/connection.py"


@pytest.fixture(scope="module")
def guide_and_example_readme(tmp_path_factory):
    """A guide section on exposing some of a server's tools, and an example's README that shows it, in more of the
    question's words, plus code that shares none of them."""
    return indexed(tmp_path_factory, "example_readme", {
        "docs/servers.md": "# Servers\n\n## Filtering tools\n\nA server may offer many tools; pass `allowed_tools` "
                           "with the names an agent may call, and the others stay hidden from it.\n",
        "examples/files_server/README.md": "# Files server example\n\nThis example exposes only a couple of tools "
                                           "from a files server to an agent: read_file and write_file.\n",
        "pkg/server.py": "def serve(port: int) -> None:\n    \"\"\"Listen on a port.\"\"\"\n",
    })


def test_the_docs_a_how_to_question_asks_for_are_the_guides_not_an_examples_readme(guide_and_example_readme,
                                                                                   monkeypatch):
    q = "How can I expose only a couple of tools, say read_file and write_file, from a server to my agent?"
    assert asked_kind(q) == "doc"
    assert guide_and_example_readme.search(q, k=3)[0].chunk.path == "docs/servers.md"
    plain = search_module.lift_kind  # the README lifted as the guide is: it leads, on more of the question's words
    monkeypatch.setattr(search_module, "lift_kind", lambda hits, wanted, by=3.0, examples=False:
                        plain(hits, wanted, by=by, examples=True))
    assert guide_and_example_readme.search(q, k=3)[0].chunk.path == "examples/files_server/README.md"
    monkeypatch.undo()
    # a question that asks for an example lifts the example's README with the guides
    asked = "Is there an example that exposes only read_file and write_file from a server to my agent?"
    assert guide_and_example_readme.search(asked, k=3)[0].chunk.path == "examples/files_server/README.md"


@pytest.fixture(scope="module")
def upload_queue(tmp_path_factory):
    """A class whose methods speak of its files and folder more than its constructor, which picks the folder."""
    methods = "".join(f'''
                def step_{i}(self, name):
                    """Step {i}: moves the queued upload's files between folders and sends the files on."""
                    return self.folder / "files" / name
            ''' for i in range(6))
    return indexed(tmp_path_factory, "upload_queue", {
        "pkg/queue.py": f'''
            class UploadQueue:
                """Uploads files in the background."""

                def __init__(self, folder=None):
                    """No folder given: ~/.cache/uploads."""
                    self.folder = folder if folder is not None else Path.home() / ".cache" / "uploads"
            {methods}''',
    })


@pytest.mark.parametrize("question, reads", [
    ("If I create the upload queue without a folder, where are its files kept?", True),
    ("What does the agent constructor check?", True),
    ("Is the client instantiated once per thread?", True),
    ("Where does the upload queue keep its files?", False),
    ("Does it recreate the index?", False),
])
def test_speaking_of_making_an_object_is_read(question, reads):
    assert (CREATES.search(question) is not None) is reads


def test_a_question_about_creating_a_named_class_gets_its_constructor(upload_queue, monkeypatch):
    q = "If I create the upload queue with no folder, where are the files kept?"
    assert "UploadQueue.__init__" in [h.chunk.symbol for h in upload_queue.search(q, k=3)]
    monkeypatch.setattr(search_module, "CREATES", re.compile("(?!)"))  # never reads a creation
    assert "UploadQueue.__init__" not in [h.chunk.symbol for h in upload_queue.search(q, k=3)]


def test_definitions_named_for_a_default_are_keyed_by_the_name_they_default():
    keyed = defaults_by_name(["get_default_model", "pkg.tracing.default_exporter", "DEFAULT_CACHE_CAPACITY",
                              "Builder.timeout_default", "getDefaultRegion", "defaults", "is_default", "default_"])
    assert keyed == {"model": {"get_default_model"}, "exporter": {"pkg.tracing.default_exporter"},
                     "cache_capacity": {"DEFAULT_CACHE_CAPACITY"}, "timeout": {"Builder.timeout_default"},
                     "region": {"getDefaultRegion"}}


@pytest.fixture(scope="module")
def default_model(tmp_path_factory):
    """Code and pages that speak of agents, runs, configs and models in the question's words, and the function that
    picks the model when none is named, in words of its own; plus an example with a default of its own."""
    pages = {f"docs/agents{i}.md": f"""
        # Agents and models, part {i}

        Each agent names the model it uses, and a run config may name one for the whole run. Part {i}: which
        model an agent uses, and how the run config names one for every agent of the run.
        """ for i in range(4)}
    return indexed(tmp_path_factory, "default_model", {**pages, "pkg/run.py": '''
        class RunConfig:
            """Settings for a whole run: the model every agent of the run uses, when the config names one."""
            workflow: str = "run"


        def model_for(agent, config):
            """The model an agent uses in a run: the agent's own, or the one the run config names."""
            return agent.model or config.model or get_default_model()
        ''', "pkg/models.py": '''
        import os


        def get_default_model() -> str:
            return os.getenv("PKG_MODEL", "small-1")
        ''', "examples/chat/app.py": '''
        def _default_model():
            return "tiny-0"
        '''})


def test_a_question_asking_for_a_default_gets_the_definition_named_for_it(default_model, monkeypatch):
    q = "Which model is used when neither the agent nor the run config names one?"
    assert ASKS_DEFAULT.search(q) and "model" in spelled_names(q)
    symbols = [h.chunk.symbol for h in default_model.search(q, k=5)]
    assert "get_default_model" in symbols[:4]
    assert "_default_model" not in symbols  # the example's own default is not the library's: not lifted
    monkeypatch.setattr(search_module, "defaults_by_name", lambda symbols: {})  # no definition named for a default
    default_model._names.clear()
    assert "get_default_model" not in [h.chunk.symbol for h in default_model.search(q, k=4)]
