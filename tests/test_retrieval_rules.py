"""Each retrieval rule, tested on its own and through a real index (real model, Chroma, BM25)."""
from __future__ import annotations

import pytest
from conftest import write_tree

from indexes.build import ingest
from indexes.lexical import TOKENIZER_VERSION, tokenize
from indexes.search import Index, fuse, is_mostly_cjk
from indexes.terms_zh import english_terms


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


@pytest.fixture(scope="module")
def bilingual(tmp_path_factory):
    """An English doc, its Chinese translation, and code, like a framework with translated docs."""
    from copilot.config import load_config

    root = write_tree(tmp_path_factory.mktemp("bilingual"), {
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
    cfg = load_config(env={}, overrides={"data_dir": str(tmp_path_factory.mktemp("data"))})
    index = Index(cfg)
    ingest(index, [str(root)], "default")
    return index


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
