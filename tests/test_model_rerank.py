"""The chat model's query rewrite and rerank (copilot/model_search.py), off by default: a real index and
embedding model, the real HTTP model client against the scripted model server."""
from __future__ import annotations

import copy
import logging
import re
from dataclasses import replace

import pytest
from support.chat import World, make_copilot, run
from support.corpus import write_tree
from support.llm_server import LLMServer, Reply, last_user, system_text

from copilot.assistants import default_assistants, retrieve_for
from copilot.config import ConfigError, load_config
from indexes.build import ingest
from indexes.search import Index

REWRITE = "You turn a developer's question"
RERANK = "You rank search results"
ANSWER = "A token bucket limits them [1]."
QUESTION = "How do I stop a user from sending too many requests to the server?"
REWRITTEN = "TokenBucket rate limit refill tokens"

# Ten request handlers whose words are the question's, and the one class that answers it in other words:
# searched as asked, TokenBucket is not in the top 6; searched as rewritten, first.
PARTS = ["accounts", "sessions", "profiles", "uploads", "search", "billing", "emails", "reports", "exports", "audit"]
SERVER = {f"server/{n}.py": f'''
    """The {n} part of the server: what each user asks of it."""


    def handle_{n}(user, request):
        """Answer one user's {n} request on the server."""
        return {{"user": user, "part": "{n}", "request": request}}
    ''' for n in PARTS} | {"server/bucket.py": '''
    """Token buckets."""


    class TokenBucket:
        """Refill tokens at a fixed rate; each call takes one, and waits when none is left."""

        def __init__(self, rate, burst):
            self.rate = rate
            self.burst = burst
    '''}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("model_search")
    cfg = load_config(env={}, overrides={"data_dir": str(root / "data")})
    index = Index(cfg)
    ingest(index, [str(write_tree(root / "server", SERVER))], "default")
    return World(root, cfg, index)


@pytest.fixture(scope="module")
def server():
    s = LLMServer().start()
    yield s
    s.stop()


@pytest.fixture
def llm(server):
    server.reset()
    server.default = Reply(text=ANSWER)
    return server


def copilot(world, tmp_path, llm=None, chat=None, **search):
    """A Copilot over the shared index with these `search` settings (and `chat` settings)."""
    cfg = copy.deepcopy(world.cfg)
    for k, v in search.items():
        setattr(cfg.search, k, v)
    return make_copilot(World(world.root, cfg, world.index), tmp_path, llm, **(chat or {}))


def cited(answers) -> list[tuple[str, str]]:
    return [(s.path, s.title) for s in answers[-1][2]]


def plain(world, k: int) -> list[tuple[str, str]]:
    """What Coding retrieves for the question, without the model's help."""
    coding = next(a for a in default_assistants() if a.name == "Coding")
    found = retrieve_for(world.index, replace(coding, top_k=k), QUESTION, ["default"])
    return [(h.chunk.path, h.chunk.title) for h in found.hits]


def asked(llm, prompt: str) -> list[dict]:
    return [b for b in llm.bodies() if prompt in system_text(b)]


def test_off_by_default_the_model_is_asked_only_for_the_answer(world, tmp_path, llm):
    cfg = load_config(env={})
    assert (cfg.search.rewrite_with_model, cfg.search.rerank_with_model) == (False, False)
    _, answers = run(copilot(world, tmp_path, llm), f"@Coding {QUESTION}")
    assert len(llm.requests) == 1 and not asked(llm, REWRITE) and not asked(llm, RERANK)
    assert answers[0][1] == ANSWER and cited(answers) == plain(world, 6)
    assert ("server/bucket.py", "TokenBucket") not in cited(answers)


def test_without_a_model_the_settings_do_nothing_and_say_so_once(world, tmp_path, caplog):
    _, off = run(copilot(world, tmp_path / "off"), f"@Coding {QUESTION}")
    cp = copilot(world, tmp_path / "on", rewrite_with_model=True, rerank_with_model=True)
    with caplog.at_level(logging.INFO, logger="devcopilot.model_search"):
        _, on = run(cp, f"@Coding {QUESTION}")
        run(cp, "@Coding what does handle_billing return?")
    assert on[0][1] == off[0][1] and on[0][2] == off[0][2]  # the same quoted answer, the same citations
    said = [r.getMessage() for r in caplog.records if r.name == "devcopilot.model_search"]
    assert said == ["search.rewrite_with_model and search.rerank_with_model do nothing without a chat model"]


def test_the_rewrite_is_searched_and_changes_what_is_cited(world, tmp_path, llm):
    cp = copilot(world, tmp_path, llm, rewrite_with_model=True)
    llm.rule(REWRITE, Reply(text=REWRITTEN))
    _, answers = run(cp, f"@Coding {QUESTION}")
    rewrite = asked(llm, REWRITE)
    assert len(rewrite) == 1 and f"Question: {QUESTION}" in last_user(rewrite[0])
    sources = cited(answers)
    assert ("server/bucket.py", "TokenBucket") in sources[:3] and len(sources) == 6
    assert set(plain(world, 6)) & set(sources)  # the question's own hits are fused in, not replaced
    answer = [b for b in llm.bodies() if "Rules:" in system_text(b)]
    assert len(answer) == 1 and "class TokenBucket" in last_user(answer[0])  # what the model answers from
    assert answers[0][1] == ANSWER
    assert cp.usage()["counters"]["model_rewrites"] == 1


def test_the_rewrite_reads_the_conversation(world, tmp_path, llm):
    cp = copilot(world, tmp_path, llm, rewrite_with_model=True)
    llm.rule(REWRITE, Reply(text=REWRITTEN))
    sid = cp.new_session()
    run(cp, "@Coding what does handle_billing do?", sid)
    run(cp, f"@Coding {QUESTION}", sid)
    later = last_user(asked(llm, REWRITE)[-1])
    assert later.startswith("Conversation:\nuser: @Coding what does handle_billing do?\nassistant: " + ANSWER)
    assert later.endswith(f"Question: {QUESTION}\n\nSearch query:")


def test_the_rerank_orders_the_citations_from_deeper_than_they_go(world, tmp_path, llm):
    cp = copilot(world, tmp_path, llm, rerank_with_model=True)
    deep = plain(world, 20)
    assert len(deep) == 20
    llm.rule(RERANK, Reply(text='{"order": [10, 3]}'))  # the 10th first: not cited without the rerank
    _, answers = run(cp, f"@Coding {QUESTION}")
    rerank = asked(llm, RERANK)
    assert len(rerank) == 1 and rerank[0]["response_format"] == {"type": "json_object"}
    shown = re.findall(r"^\[(\d+)\] (\S+)(?: · (\S+))?$", last_user(rerank[0]), re.MULTILINE)
    assert [(p, t) for _, p, t in shown] == deep  # the top 20, as retrieved
    assert cited(answers) == [deep[9], deep[2], deep[0], deep[1], deep[3], deep[4]]
    assert deep[9] not in plain(world, 6)
    assert answers[0][1] == ANSWER and cp.usage()["counters"]["model_reranks"] == 1


def test_rewrite_and_rerank_are_counted_as_model_calls_of_the_assistant(world, tmp_path, llm):
    cp = copilot(world, tmp_path, llm, rewrite_with_model=True, rerank_with_model=True)
    llm.rule(REWRITE, Reply(text=REWRITTEN, prompt_tokens=30, completion_tokens=5))
    llm.rule(RERANK, Reply(text='{"order": [2, 1]}', prompt_tokens=400, completion_tokens=7))
    _, answers = run(cp, f"@Coding {QUESTION}")
    assert len(llm.requests) == 3
    coding = cp.usage()["assistants"]["Coding"]
    assert coding["calls"] == 3 and coding["input_tokens"] == 30 + 400 + 11
    assert answers[0][1] == ANSWER


@pytest.mark.parametrize("prompt, fault", [
    (RERANK, Reply(text="The second result looks most useful, then the first.")),  # not JSON
    (RERANK, Reply(text='{"order": [2, 99]}')),  # an id that was not shown
    (RERANK, Reply(text='{"ranking": "2, 1"}')),  # JSON, not an order
    (RERANK, Reply(status=500)),  # the model down (retried, then given up)
    (RERANK, Reply(delay=3)),  # slower than search.model_timeout_s
    (REWRITE, Reply(status=500)),
    (REWRITE, Reply(delay=3)),
    (REWRITE, Reply(text="")),  # nothing to search
])
def test_a_failed_rewrite_or_rerank_leaves_the_plain_order(world, tmp_path, llm, caplog, prompt, fault):
    settings = {"rewrite_with_model": True} if prompt == REWRITE else {"rerank_with_model": True}
    cp = copilot(world, tmp_path, llm, model_timeout_s=0.5, **settings)
    llm.rule(prompt, fault)
    with caplog.at_level(logging.WARNING, logger="devcopilot.model_search"):
        _, answers = run(cp, f"@Coding {QUESTION}")
    assert cited(answers) == plain(world, 6) and answers[0][1] == ANSWER  # the answer as without the setting
    assert cp.usage()["counters"]["model_search_fallbacks"] == 1
    assert [r.getMessage().split(" (")[0] for r in caplog.records if r.name == "devcopilot.model_search"] == \
        [f"the model's {'rewrite' if prompt == REWRITE else 'rerank'} was not used"]


@pytest.mark.parametrize("toml, says", [
    ('[search]\nrerank_with_model = "yes"\n', "Setting 'search.rerank_with_model' must be true or false, not 'yes'."),
    ("[search]\nrewrite_with_model = 1\n", "Setting 'search.rewrite_with_model' must be true or false, not 1."),
    ("[search]\nrerank_depth = 0\n", "Setting 'search.rerank_depth' must be a whole number from 1 to 100, not 0."),
    ('[search]\nmodel_timeout_s = "5"\n', "Setting 'search.model_timeout_s' must be a number above 0 and at most "
                                          "600, not '5'; write it without quotes."),
])
def test_the_settings_refuse_a_wrong_type_or_range(tmp_path, toml, says):
    path = tmp_path / "devcopilot.toml"
    path.write_text(toml, encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_config(path, env={})
    assert str(e.value) == says
