"""A specialist's answer: what it cites, and what becomes of it.

Retrieval (indexes/retrieve.py) decides what is cited and whether it is too weak to answer from.
Then one of five outcomes, stored with the message: nothing indexed to read ("missing"), the
search is down ("down"), "I don't know" ("dont_know"), the best passages quoted when there is no
usable model ("offline"), or the model's answer ("model"; "offline" after all when the model
fails before saying anything). Whatever the outcome, its words stream through one loop.
"""
from __future__ import annotations

import logging
import uuid
from collections.abc import Generator, Iterable, Iterator
from dataclasses import astuple, dataclass, replace

from copilot.ahead import Ahead
from copilot.assistants import RANKING_K, AssistantSpec, retrieve_for
from copilot.config import Config
from copilot.events import END, NOTICE, SOURCES, START, TOKEN, Event, Source
from copilot.model_search import ModelSearch
from copilot.models import ModelUnavailable, StreamCut, clean_error
from copilot.monitor import Monitor
from copilot.prompts import (
    NO_MODEL_CHANGES,
    Stale,
    answer_messages,
    change_messages,
    cited_in,
    dont_know,
    flagged,
    graph_answer,
    language_of,
    no_model_line,
    offline_answer,
    offline_changes,
    out_of_date_notes,
    pieces,
)
from copilot.sessions import Sessions
from copilot.toolloop import Notice, ToolLoop
from copilot.turn import Turn, conversation
from indexes.page_kind import is_news
from indexes.retrieve import ChangeRetrieval, Retrieval, RetrievalDown, retrieve
from indexes.search import Hit, Index

log = logging.getLogger("devcopilot.chat")


@dataclass
class Outcome:
    """How an answer turned out: its words as they stream, and what it cites."""
    kind: str  # stored with the message: model | offline | dont_know | down | missing
    sources: list[Source]
    said: Iterable[str | Notice]  # streamed by the answer's one loop
    text: str = ""  # the whole answer (a model's, once it has streamed)
    model: str = ""  # the model that wrote it
    counter: str = ""  # the monitor's count of it, made once it has streamed


def spoken(kind: str, sources: list[Source], text: str, counter: str = "") -> Outcome:
    """An answer written at once, streamed in word-sized pieces."""
    return Outcome(kind, sources, pieces(text), text, counter=counter)


def paragraphs(text: str) -> list[str]:
    """Quoted passages stream a paragraph at a time, so their links arrive whole."""
    return [p + "\n\n" for p in text.split("\n\n")]


class Answers:
    """Each specialist's answer in a turn: retrieval, the outcome, its stream, its stored message."""

    def __init__(self, cfg: Config, index: Index, monitor: Monitor, sessions: Sessions, ahead: Ahead,
                 tools: ToolLoop):
        self.cfg = cfg
        self.index = index
        self.monitor = monitor
        self.sessions = sessions
        self.ahead = ahead
        self.tools = tools
        self.model_search = ModelSearch(cfg, monitor)  # off by default (search.rewrite_with_model, rerank_with_model)

    def answer(self, spec: AssistantSpec, question: str, sid: str, history: list[dict], turn: Turn,
               others: list[str]) -> Iterator[Event]:
        """`spec`'s answer to `question` in `turn` (`others` answer it too): start, tokens, sources, end."""
        mid = uuid.uuid4().hex
        yield Event(START, spec.name, message_id=mid)
        convo = conversation(history, self.cfg.chat.history_turns)
        query, how = self.ahead.query(turn, question, convo, spec.name)
        if how == "model-failed":
            turn.model_down = turn.model_down or "it did not answer"
        out = self.outcome(spec, question, query, convo, turn, others)
        name, said = spec.name, out.said
        try:
            for piece in said:  # the one loop: every outcome's words stream here
                if piece.__class__ is str:
                    yield Event(TOKEN, name, piece)
                else:
                    yield Event(NOTICE, name, piece.text)
        finally:  # a client that left stops the model's stream now (its generator and `out` hold each other)
            if isinstance(said, Generator):
                said.close()
        if out.counter:
            self.monitor.count(out.counter)
        yield Event(SOURCES, name, sources=out.sources)
        self.sessions.store(sid, "assistant", out.text, name, out.sources, out.model, message_id=mid,
                            outcome=out.kind)
        turn.answers.append({"role": "assistant", "assistant": name, "content": out.text, "sources": out.sources})
        yield Event(END, name, out.text, out.sources, mid)

    def outcome(self, spec: AssistantSpec, question: str, query: str, convo: list[dict], turn: Turn,
                others: list[str]) -> Outcome:
        """What `spec` cites for `query`, and which of the five outcomes its answer is."""
        kbs = turn.kbs_of(spec)
        found = None
        try:
            found = self.retrieve(spec, query, kbs, turn, convo)
            hits, weak, down, graph = found.hits, found.weak, "", found.graph
        except RetrievalDown as e:
            hits, weak, down, graph = [], True, f"{type(e.cause).__name__}: {clean_error(e.cause)[:160]}", None
        lead = ""  # what the answer says first: why the versions could not answer it
        if isinstance(found, ChangeRetrieval) and found.problem:
            # The versions cannot answer it (the one asked for, or a second to compare, is not indexed); the search
            # may, from the release notes and changelogs the KB holds. The sentence saying what to index leads.
            lead, found = found.problem, self.searched_instead(query, kbs, turn)
            if found is None or found.weak or not found.hits or not is_news(found.hits[0].chunk):
                return spoken("missing", [], lead)  # no release notes answer it either: what to index is the answer
            hits, weak, graph = found.hits, found.weak, None
        sources = [Source.of(n, h.chunk, h.kb, self.origin(h), self.versioned(h)) for n, h in enumerate(hits, 1)]
        stale = self.out_of_date(hits)
        lang = language_of(question)
        if isinstance(found, ChangeRetrieval):
            return self.about_changes(spec, question, query, found, sources, convo, turn, others)
        if not down and not hits and not any(self.index.catalog.kb(kb) for kb in kbs):
            return spoken("missing", sources, self.nothing_to_read(spec, kbs, turn))
        if down:
            return spoken("down", sources, f"I can't search the knowledge base right now ({down}). Check the vector "
                                           "store (`devcopilot status`) and ask again; nothing indexed is lost.",
                          "retrieval_failures")
        if weak:
            return spoken("dont_know", sources[:3], dont_know(sources[:3], lang), "dont_know_answers")
        lead = lead + "\n\n" if lead else ""
        model = turn.usable_model()
        if model is None:
            note = no_model_line(lang) if turn.model is None else self.fault_note(turn.model_down)
            if graph is not None:  # who calls X, what X calls: the sites, listed and cited
                text = graph_answer(graph, sources, note)
                return Outcome("offline", sources, paragraphs(text), text, counter="offline_answers")
            return self.quoted(sources, query, turn, note, stale, lead)
        out = Outcome("model", sources, (), model=model.model)
        msgs = answer_messages(spec, question, sources, model_history(convo, turn.answers), lang, others, graph,
                               flagged(sources, stale))
        out.said = self.from_model(out, spec, msgs, query, kbs, turn, lead + version_lead(sources), stale)
        return out

    def searched_instead(self, query: str, kbs: list[str], turn: Turn) -> Retrieval | None:
        """The search of both kinds for a question about a release the indexed versions cannot answer: the release
        notes, changelogs and blog posts it holds, which the search lifts for such a question, may; None when the
        store is down."""
        try:
            found = retrieve(self.index, query, kbs, k=RANKING_K, versions=turn.versions)
        except RetrievalDown:
            return None
        if found.searches:
            self.monitor.count("retrieval_calls", found.searches)
        return found

    def about_changes(self, spec: AssistantSpec, question: str, query: str, found: ChangeRetrieval,
                      sources: list[Source], convo: list[dict], turn: Turn, others: list[str]) -> Outcome:
        """A question about a release: the changes between the indexed versions, each cited in both
        (indexes/retrieve.py `change_hits`), listed as they are without a model, explained with one."""
        lang = language_of(question)
        model = turn.usable_model()
        if model is None:
            note = (NO_MODEL_CHANGES if lang is None else no_model_line(lang)) if turn.model is None \
                else self.fault_note(turn.model_down)
            text = offline_changes(found.listing, note)
            return Outcome("offline", sources, paragraphs(text), text, counter="offline_answers")
        out = Outcome("model", sources, (), model=model.model)
        msgs = change_messages(spec, question, found.listing, sources, model_history(convo, turn.answers), lang,
                               others)
        out.said = self.from_model(out, spec, msgs, query, turn.kbs_of(spec), turn)
        return out

    def quoted(self, sources: list[Source], query: str, turn: Turn, note: str, stale: Stale | None = None,
               lead: str = "") -> Outcome:
        """The best passages, quoted under `note` (why there is no model's answer) after `lead`, and a note under
        them for each that the docs check flagged (`stale`)."""
        # A second speaker in the same turn quotes what the first did not, when there is enough.
        quoted = {(s.path, s.start_line) for t in turn.answers for s in t["sources"]}
        fresh = [s for s in sources if (s.path, s.start_line) not in quoted]
        if len(fresh) >= 2 and len(fresh) < len(sources):
            sources = [Source(n, *astuple(s)[1:]) for n, s in enumerate(fresh, 1)]
        sources = sources[:3]
        text = lead + version_lead(sources) + offline_answer(sources, query, note) + \
            out_of_date_notes(flagged(sources, stale), sources)
        return Outcome("offline", sources, paragraphs(text), text, counter="offline_answers")

    def from_model(self, out: Outcome, spec: AssistantSpec, msgs: list[dict], query: str, kbs: list[str],
                   turn: Turn, lead: str = "", stale: Stale | None = None) -> Iterator[str | Notice]:
        """The model's answer as it streams, after `lead` (the versions it is for) once the model speaks;
        `out` learns its text, and its outcome when the model fails. Under it, a note for each source it
        cites that the docs check flagged (`stale`)."""
        parts: list[str] = []
        stream = self.tools.stream(turn.model, spec, msgs, out.sources, parts, kbs, turn.versions)
        try:
            for piece in stream:
                if lead and piece.__class__ is str:
                    parts.insert(0, lead)
                    yield lead
                    lead = ""
                yield piece
            tail = out_of_date_notes(flagged(out.sources, stale), cited_in("".join(parts), out.sources))
            if tail:
                parts.append(tail)
                yield tail
            out.text = "".join(parts)
        except ModelUnavailable as e:
            turn.model_down = str(e)
            out.sources = out.sources[:3]
            if parts:
                note = f"\n\n_(The model stopped before finishing: {e}. The sources below are what it was given.)_"
                out.text = "".join(parts) + note
                yield note
            else:  # nothing said yet: the passages, quoted
                out.text = version_lead(out.sources) + offline_answer(out.sources, query, self.fault_note(str(e))) \
                    + out_of_date_notes(flagged(out.sources, stale), out.sources)
                out.kind, out.counter = "offline", "offline_answers"
                yield from paragraphs(out.text)
        except StreamCut as e:
            note = f"\n\n_(The answer was cut off: {e}. What arrived is kept above; ask again for the rest.)_"
            out.text = "".join(parts) + note
            yield note
        finally:  # a client that left stops the model's stream now
            stream.close()

    def retrieve(self, spec: AssistantSpec, query: str, kbs: list[str], turn: Turn | None = None,
                 convo: list[dict] | None = None) -> Retrieval:
        """What `spec` cites for `query` from `kbs` (indexes/retrieve.py holds the policy); taken from
        the turn's search ahead when it searched the same. With the settings on, the model rewrites and
        reranks it (copilot/model_search.py; `convo` is what the rewrite reads)."""
        versions = turn.versions if turn is not None else None
        found = self.ahead.take(turn, spec, query, kbs)
        if found is None:
            ranking = turn.ranking.of(query, kbs) if turn is not None and turn.ranking is not None else None
            found = retrieve_for(self.index, spec, query, kbs, versions, ranking)
        if self.model_search.on:
            def search(q: str, k: int) -> Retrieval:
                return retrieve_for(self.index, replace(spec, top_k=k), q, kbs, versions)

            found = self.model_search.improve(found, query, convo or [], spec.name, spec.top_k, turn, search)
        if found.searches:
            self.monitor.count("retrieval_calls", found.searches)
        return found

    def out_of_date(self, hits: list[Hit]) -> Stale:
        """What the docs check (indexes/drift.py, run at ingest) found in the doc passages about to be cited."""
        from indexes.drift import findings_of

        out: Stale = {}
        by_kb: dict[str, list[Hit]] = {}
        for h in hits:
            if h.chunk.kind == "doc":
                by_kb.setdefault(h.kb, []).append(h)
        try:
            for kb, found in by_kb.items():
                # a passage two versions share: the findings at the version it is cited from
                flags = findings_of(self.index.catalog, kb, [h.chunk.id for h in found],
                                    {h.chunk.id: h.chunk.source_id for h in found})
                out.update({(kb, h.chunk.path, h.chunk.start_line): [f.message for f in flags[h.chunk.id]]
                            for h in found if h.chunk.id in flags})
        except Exception:  # a note must never cost the answer
            log.exception("could not read the docs check")
        return out

    def nothing_to_read(self, spec: AssistantSpec, kbs: list[str], turn: Turn) -> str:
        """Why there is nothing to answer from, and what to do."""
        if spec.kbs and turn.narrowed and not kbs:
            return (f"I answer from {', '.join(repr(k) for k in spec.kbs)}, and this chat is narrowed to "
                    f"{', '.join(repr(k) for k in turn.kbs)}: choose all knowledge bases (or one of mine) and ask "
                    "again.")
        if not kbs:
            return ("Nothing is indexed yet: run `devcopilot ingest SOURCE` (or add a source in the Knowledge tab), "
                    "then ask again.")
        return (f"I read the knowledge base {', '.join(repr(k) for k in kbs)}, which has not been indexed yet: "
                f"run `devcopilot ingest SOURCE --kb {kbs[0]}` (or add a source in the Knowledge tab).")

    def origin(self, hit: Hit) -> str:
        try:
            return self.index.origin(hit.kb, hit.chunk.source_id)
        except Exception:  # a citation's footnote must never cost the answer
            log.exception("source origin failed")
            return ""

    def versioned(self, hit: Hit) -> bool:
        """Whether the hit's KB holds several versions of its library (its citation then says which)."""
        try:
            return bool(hit.chunk.library) and hit.chunk.library in self.index.side_by_side(hit.kb)
        except Exception:  # a citation's label must never cost the answer
            log.exception("versions of the source failed")
            return False

    def fault_note(self, reason: str) -> str:
        if self.monitor.over_budget():
            return "_" + self.monitor.budget_message() + "_"
        return (f"_The language model could not answer ({reason}), so these are the best matching passages, "
                "quoted._")


def version_lead(sources: list[Source]) -> str:
    """"For openai-agents 0.23.1:" (the answer's first line) when the sources are of a library the KB holds
    several versions of; "" otherwise, as for a KB with one version of each library."""
    seen: dict[str, list[str]] = {}
    for s in sources:
        if s.version_label and s.version not in seen.setdefault(s.library, []):
            seen[s.library].append(s.version)
    if not seen:
        return ""
    return "For " + ", ".join(f"{lib} {' and '.join(vs)}" for lib, vs in seen.items() if vs) + ":\n\n"


def model_history(convo: list[dict], turn: list[dict]) -> list[dict]:
    """The conversation as the model reads it, then what earlier speakers in this turn answered."""
    out = []
    for h in convo:
        if h["role"] in ("user", "assistant"):
            out.append({"role": h["role"], "content": h["content"][:1500]})
    for t in turn:  # earlier speakers in this turn
        out.append({"role": "assistant", "content": f"({t['assistant']} answered:) {t['content'][:2500]}"})
    return out
