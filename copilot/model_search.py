"""The chat model's help with what an assistant cites: a query rewrite and a rerank, each behind a setting.

Both are off by default: their effect on the retrieval figures is unmeasured until a model runs
offline (docs/retrieval.md). When a model is configured and usable in the turn:

- `search.rewrite_with_model`: one short call turns the question (with the conversation, when there
  is one) into a search query; the question and the query are both retrieved and their hits fused
  by reciprocal rank (indexes/search.py `fuse`), the definitions the question names kept first.
- `search.rerank_with_model`: the top `search.rerank_depth` hits (path, symbol, first lines) are
  shown to the model, which returns their order; hits it leaves out keep their order after it.

Each call has `search.model_timeout_s` at most. Whatever goes wrong (no model, the model down or
slow, a reply that does not parse, ids that do not exist) leaves the plain ranking, logged; an
answer never fails for it. Model calls are counted by the monitor as every call is.
"""
from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace

from copilot.config import Config
from copilot.models import ResilientModel, parse_json_object
from copilot.monitor import Monitor
from copilot.turn import Turn
from indexes.retrieve import ChangeRetrieval, Retrieval, RetrievalDown
from indexes.search import Hit, fuse, spread_files, with_scores_of

log = logging.getLogger("devcopilot.model_search")

REWRITE_PROMPT = (
    "You turn a developer's question about a software framework into one search query for an index of its "
    "documentation and source code. Use the words its docs and code would use: the names of the classes, "
    "functions, modules and concepts that answer it. Keep names written in the question exactly as written. "
    "Output only the query, on one line, no quotes, no explanation.")
RERANK_PROMPT = (
    "You rank search results for a developer's question about a software framework. Each result has an id in "
    "brackets, its file, its symbol or heading, and its first lines. Reply with a JSON object only: "
    '{"order": [ids]}, the ids of the results that help answer the question, most useful first.')
FIRST_LINES = 8  # of each hit shown to the model for the rerank
LINE_CHARS = 160

Search = Callable[[str, int], Retrieval]  # (query, how many hits) -> what retrieve() cites for it


class ModelFailed(Exception):
    """A rewrite or rerank that could not be used; the plain ranking stands."""


@dataclass
class ModelSearch:
    """The rewrite and the rerank as the settings ask; `improve` is all the chat calls."""
    cfg: Config
    monitor: Monitor

    def __post_init__(self) -> None:
        s = self.cfg.search
        self.rewrites, self.reranks = s.rewrite_with_model, s.rerank_with_model
        self._said_no_model = False

    @property
    def on(self) -> bool:
        return self.rewrites or self.reranks

    def improve(self, found: Retrieval, query: str, convo: list[dict], assistant: str, k: int, turn: Turn | None,
                search: Search) -> Retrieval:
        """`found` (what `query` retrieves, `k` hits at most) rewritten and reranked as the settings ask; `found`
        itself when they are off, when there is no usable model, or when the model's help fails."""
        if not self.on or isinstance(found, ChangeRetrieval) or found.graph is not None:
            return found  # the changes between versions and the code graph's call sites have their own order
        model = turn.usable_model() if turn is not None else None
        if model is None:
            if not self._said_no_model and (turn is None or turn.model is None):
                self._said_no_model = True
                log.info("search.rewrite_with_model and search.rerank_with_model do nothing without a chat model")
            return found
        depth = max(k, self.cfg.search.rerank_depth) if self.reranks else k
        if depth > len(found.hits) and len(found.hits) == k:  # the rerank picks among more than are cited
            deeper = search(query, depth)
            deeper.searches += found.searches
            found = deeper
        if self.rewrites:
            found = self.rewritten(found, query, convo, assistant, depth, model, search)
        if self.reranks and not found.weak and len(found.hits) > 1:  # weak: "I don't know", no answer to rank for
            found = self.reranked(found, query, assistant, model)
        found.hits = found.hits[:k]
        return found

    def rewritten(self, found: Retrieval, query: str, convo: list[dict], assistant: str, depth: int,
                  model: ResilientModel, search: Search) -> Retrieval:
        """`found` fused with what the model's search query for `query` retrieves."""
        try:
            rewrite = self.rewrite(query, convo, assistant, model)
        except ModelFailed as e:
            return self.failed("rewrite", e, found)
        if rewrite.casefold() == query.casefold():
            return found
        try:
            other = search(rewrite, depth)
        except RetrievalDown as e:  # the question's own search went through: it is cited
            return self.failed("rewrite", ModelFailed(f"its search failed: {e}"), found)
        if isinstance(other, ChangeRetrieval) or other.graph is not None:
            return found
        log.info("searched %r as %r too", query[:200], rewrite)
        return fused(found, other, self.cfg.search.rrf_k)

    def rewrite(self, query: str, convo: list[dict], assistant: str, model: ResilientModel) -> str:
        """The model's search query for `query`, read with the conversation."""
        said = "\n".join(f"{h['role']}: {h['content'][:600]}" for h in convo[-4:])
        msgs = [{"role": "system", "content": REWRITE_PROMPT},
                {"role": "user", "content": (f"Conversation:\n{said}\n\n" if said else "")
                 + f"Question: {query}\n\nSearch query:"}]
        reply = self.call(model, msgs, assistant, 80)
        line = next((x.strip().strip('"`\'').strip() for x in reply.splitlines() if x.strip()), "")
        if not line or len(line) > 300:
            raise ModelFailed(f"a reply that is not a search query ({reply[:80]!r})")
        self.monitor.count("model_rewrites")
        return line

    def reranked(self, found: Retrieval, query: str, assistant: str, model: ResilientModel) -> Retrieval:
        """`found` with its top `rerank_depth` hits in the model's order."""
        shown = found.hits[:self.cfg.search.rerank_depth]
        try:
            order = self.rerank(query, shown, assistant, model)
        except ModelFailed as e:
            return self.failed("rerank", e, found)
        picked = set(order)
        left_out = [h for i, h in enumerate(shown) if i not in picked]
        # in the model's order, still at most three chunks of one file in the first ten (as retrieve() gives)
        found.hits = spread_files(with_scores_of(shown, [shown[i] for i in order] + left_out) + found.hits[len(shown):])
        return found

    def rerank(self, query: str, shown: list[Hit], assistant: str, model: ResilientModel) -> list[int]:
        """The model's order of `shown`: their indexes, best first (those it left out not among them)."""
        msgs = [{"role": "system", "content": RERANK_PROMPT},
                {"role": "user", "content": f"Question: {query}\n\nResults:\n\n" + "\n\n".join(
                    listed(n, h) for n, h in enumerate(shown, 1)) + '\n\nReply {"order": [ids, most useful first]}.'}]
        reply = self.call(model, msgs, assistant, 20 + 6 * len(shown), json_mode=True)
        order = model_order(reply, len(shown))
        self.monitor.count("model_reranks")
        return order

    def call(self, model: ResilientModel, msgs: list[dict], assistant: str, max_tokens: int,
             json_mode: bool = False) -> str:
        """The model's reply within `search.model_timeout_s`; else ModelFailed. The call runs on a thread of
        its own so a slow model (retries included) cannot hold the answer: one that answers late is counted,
        its reply dropped."""
        result: dict[str, object] = {}

        def ask() -> None:
            try:
                result["reply"] = model.complete(msgs, assistant=assistant, json_mode=json_mode,
                                                 max_tokens=max_tokens)
            except Exception as e:  # the model down, a stream cut, or anything else: the plain ranking stands
                result["error"] = e

        thread = threading.Thread(target=ask, name="model-search", daemon=True)
        thread.start()
        thread.join(self.cfg.search.model_timeout_s)
        if thread.is_alive():
            raise ModelFailed(f"no reply within {self.cfg.search.model_timeout_s:g} s")
        if "error" in result:
            e = result["error"]
            raise ModelFailed(f"{type(e).__name__}: {e}")
        return str(result["reply"])

    def failed(self, step: str, e: ModelFailed, found: Retrieval) -> Retrieval:
        log.warning("the model's %s was not used (%s); the plain ranking stands", step, e)
        self.monitor.count("model_search_fallbacks")
        return found


def listed(n: int, hit: Hit) -> str:
    """One hit as the model reads it for the rerank: [n] path · symbol or heading, then its first lines."""
    c = hit.chunk
    about = c.title
    lines = [line[:LINE_CHARS] for line in c.text.strip().splitlines()[:FIRST_LINES]]
    return f"[{n}] {c.path}" + (f" · {about}" if about else "") + "\n" + "\n".join(lines)


def model_order(reply: str, count: int) -> list[int]:
    """The 0-based indexes the model's reply lists, best first, from `{"order": [3, 1, 2]}` (or a bare list) of
    1-based ids; a repeated id counts once. ModelFailed for a reply that does not parse or an id not shown."""
    data = parse_json_object(reply)
    if data is None:  # a reply around the JSON ("Here you are: {...}")
        found = re.search(r"\{.*\}|\[.*\]", reply, re.DOTALL)
        data = parse_json_object(found.group(0)) if found else None
    ids = data.get("order") if isinstance(data, dict) else data
    if not isinstance(ids, list) or not ids:
        raise ModelFailed(f"a reply that is not an order ({reply[:80]!r})")
    order: list[int] = []
    for i in ids:
        if isinstance(i, str) and i.strip().strip("[]").isdigit():
            i = int(i.strip().strip("[]"))
        if isinstance(i, bool) or not isinstance(i, int) or not 1 <= i <= count:
            raise ModelFailed(f"an id that was not shown ({i!r})")
        if i - 1 not in order:
            order.append(i - 1)
    return order


def fused(first: Retrieval, second: Retrieval, rrf_k: int) -> Retrieval:
    """The hits of both retrievals fused by reciprocal rank, the definitions `first` put first kept there;
    weak only when both are."""
    def key(h: Hit) -> str:
        return f"{h.kb}\0{h.chunk.id}"

    lead, own = first.hits[:first.named], first.hits[first.named:]
    by_key = {key(h): h for h in [*second.hits, *first.hits]}  # the question's own hit where both have it
    ranked = fuse([([(key(h), h.score) for h in own], 1.0), ([(key(h), h.score) for h in second.hits], 1.0)],
                  rrf_k)
    led = {key(h) for h in lead}
    hits = lead + [by_key[cid] for cid, _ in ranked if cid not in led]
    scores = sorted((h.score for h in hits), reverse=True)  # still best first by score, as retrieve() returns
    hits = [replace(h, score=s) for h, s in zip(hits, scores)]
    return Retrieval(hits, first.weak and second.weak, first.named, first.searches + second.searches,
                     first.missing)
