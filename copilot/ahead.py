"""Work done ahead: while the Guide's routing call is out, what the answer will need is started.

The question condensed into a search query when it needs it (a follow-up, another language: a
model call of its own), then the search of the local classifier's first pick for that query. The
answer takes each when it needs the same; either way it cites what it would have. Each kind of
work has its thread pool; `close` shuts them down.
"""
from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor

from copilot.assistants import GUIDE, AssistantSpec, retrieve_for
from copilot.condense import condense, searched_as_is
from copilot.config import Config
from copilot.turn import SearchAhead, Turn, conversation
from indexes.retrieve import Retrieval
from indexes.search import Index


class Ahead:
    """The pools the work done ahead runs on, and the hand-over of what it found to the answer."""

    def __init__(self, cfg: Config, index: Index):
        self.cfg = cfg
        self.index = index
        # Searches ahead of the Guide's routing answer queue for one thread per core: a burst of turns
        # has them run one after another while its routing calls are out, never all at once.
        self.search_pool = ThreadPoolExecutor(max(1, os.cpu_count() or 1), thread_name_prefix="search-ahead")
        # Follow-ups condensed during the routing call: each waits on the model, as a turn does.
        self.condense_pool = ThreadPoolExecutor(max(1, cfg.server.chat_threads), thread_name_prefix="condense-ahead")

    def start(self, text: str, history: list[dict], turn: Turn, guess: AssistantSpec | None) -> None:
        """Start what the answer to `text` will need, `guess` being who will likely give it."""
        corpus_language = self.cfg.chat.corpus_language
        if searched_as_is(text, history, corpus_language):
            if guess:
                self.search(guess, text, turn)
            return
        model = turn.usable_model()

        def condensed() -> tuple[str, str]:
            convo = conversation(history, self.cfg.chat.history_turns)
            query, how = condense(text, convo, model, corpus_language, GUIDE)
            if guess:
                self.search(guess, query, turn)  # before the answer can take the query: it will see this
            return query, how

        turn.condensed = self.condense_pool.submit(condensed)

    def search(self, spec: AssistantSpec, query: str, turn: Turn) -> None:
        """Queue `spec`'s retrieval for `query`; `take` hands it over when the assistant, the query and the
        KBs turn out the same (otherwise only the query's embedding, cached, is of use)."""
        kbs = turn.kbs_of(spec)
        turn.ahead = SearchAhead(spec.name, query, kbs, self.search_pool.submit(retrieve_for, self.index, spec,
                                                                                 query, kbs, turn.versions))

    def take(self, turn: Turn | None, spec: AssistantSpec, query: str, kbs: list[str]) -> Retrieval | None:
        """The turn's search ahead when it searched what `spec` needs now, else None (searched at once)."""
        ahead = turn.ahead if turn is not None else None
        if ahead is None:
            return None
        turn.ahead = None
        # Still queued: searched by the caller, at once (and a wrong guess never runs). Started: awaited.
        if not ahead.found.cancel() and ahead.searched(spec.name, query, kbs):
            return ahead.found.result()
        return None

    def query(self, turn: Turn, question: str, convo: list[dict], assistant: str) -> tuple[str, str]:
        """The turn's search query and how it was made: condensed once a turn (a later speaker searches
        for the same query); here, unless it already was or is being condensed during the routing call."""
        if turn.condensed is None or turn.condensed.cancel():
            turn.condensed = Future()
            turn.condensed.set_result(condense(question, convo, turn.usable_model(), self.cfg.chat.corpus_language,
                                               assistant))
        return turn.condensed.result()

    def drop(self, turn: Turn) -> None:
        """What was started for `turn` and not taken (the Guide answered itself, the client left) need not run."""
        for pending in (turn.ahead.found if turn.ahead else None, turn.condensed):
            if pending is not None:
                pending.cancel()

    def close(self) -> None:
        """Shut the pools down: queued work is dropped, running work finishes."""
        self.search_pool.shutdown(wait=True, cancel_futures=True)
        self.condense_pool.shutdown(wait=True, cancel_futures=True)
