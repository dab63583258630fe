"""The copilot: a group chat of assistants answering from the indexes.

One turn: the message is checked, the speakers chosen (@mentions, else the Guide decides),
and each speaker in order retrieves, builds a prompt with numbered sources and streams its
answer; later speakers see the earlier answers. Every speaker yields start, tokens, sources,
end. Nothing a user or a model server does makes `chat()` raise: faults become notes.

What is cited, and when retrieval is too weak to answer from ("I don't know"), is decided by
indexes/retrieve.py, the one retrieval call every door uses.
"""
from __future__ import annotations

import logging
import os
import re
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import astuple, dataclass, field

from copilot.assistants import GUIDE, AssistantSpec, chat_kbs, load_assistants, retrieve_for
from copilot.condense import condense, looks_like_follow_up, searched_as_is
from copilot.config import Config
from copilot.conversations import ConversationError, Conversations, open_conversations  # noqa: F401 (re-exported)
from copilot.database import DatabaseDown
from copilot.events import Event, Source
from copilot.models import ModelUnavailable, ResilientModel, StreamCut, clean_error, describe_chat_model, make_model
from copilot.monitor import Monitor
from copilot.prompts import (
    answer_messages,
    dont_know,
    guide_messages,
    handover_line,
    language_of,
    no_model_line,
    offline_answer,
    pieces,
)
from copilot.routing import (
    Decision,
    classify,
    parse_mentions,
    resolve_name,
    routing_prompt,
    validate_decision,
)
from copilot.tools import TOOL_SPECS, ToolBox
from indexes.retrieve import Retrieval, RetrievalDown
from indexes.search import Hit, Index

log = logging.getLogger("devcopilot.chat")


@dataclass
class SearchAhead:
    """A retrieval started before it is known to be needed (Copilot._search_ahead)."""
    assistant: str
    query: str
    kbs: list[str]
    found: Future  # of its Retrieval

    def searched(self, assistant: str, query: str, kbs: list[str]) -> bool:
        return (assistant, query, kbs) == (self.assistant, self.query, self.kbs)


@dataclass
class Turn:
    """What one turn's speakers share."""
    answers: list[dict] = field(default_factory=list)  # earlier speakers' answers in this turn
    model_down: str = ""  # set when the model failed in this turn: later steps skip it instead of retrying again
    kbs: list[str] = field(default_factory=list)  # the knowledge bases the chat reads for this turn
    narrowed: bool = False  # True when they were chosen (the KB selector, chat.kb), not "every indexed KB"
    ahead: SearchAhead | None = None  # a retrieval started during the Guide's routing call
    condensed: Future | None = None  # of (retrieval query, how): condensed once a turn, maybe during routing


# Control and invisible characters, and lone surrogates (a JSON escape can spell them; no tokenizer
# or database takes them): dropped from a message before anything reads it.
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
EXCERPT_CHARS = 4000


def store_failed(what: str) -> None:
    """Log a failure of the conversation store: one line when its database is out of reach (said again
    for every message while it is down), the traceback for anything else."""
    error = sys.exc_info()[1]
    if isinstance(error, DatabaseDown):
        log.warning("%s: %s", what, error)
    else:
        log.exception(what)


class Copilot:
    def __init__(self, cfg: Config, index: Index | None = None, model: ResilientModel | None = None):
        self.cfg = cfg
        self.index = index if index is not None else Index(cfg)
        self.assistants: list[AssistantSpec] = load_assistants(cfg)
        self.monitor = Monitor(cfg)
        self.model = model if model is not None else make_model(cfg, self.monitor)
        if self.model is not None and self.model.monitor is None:
            self.model.monitor = self.monitor
        self.conversations = open_conversations(cfg)
        self._warned_budget = False
        # Searches ahead of the Guide's routing answer (`_search_ahead`) queue for one thread per core: a
        # burst of turns has them run one after another while its routing calls are out, never all at once.
        self.ahead_pool = ThreadPoolExecutor(max(1, os.cpu_count() or 1), thread_name_prefix="search-ahead")
        # Follow-ups condensed during the routing call (`_look_ahead`): each waits on the model, as a turn does.
        self.condense_pool = ThreadPoolExecutor(max(1, cfg.server.chat_threads), thread_name_prefix="condense-ahead")

    @property
    def guide(self) -> AssistantSpec:
        return self.assistants[0]

    def specialists(self) -> list[AssistantSpec]:
        return [a for a in self.assistants if not a.is_guide]

    # -- sessions ---------------------------------------------------------------------------------
    def new_session(self, history: list[dict] | None = None, owner: str = "", origin: str = "") -> str:
        """A new conversation; `history` ({role, content[, assistant]}) seeds it (e.g. from the API).
        `owner` is the signed-in user, `origin` the door ("web", "api", "cli")."""
        seed = [(h["role"], h["content"], h.get("assistant", "")) for h in history or []
                if h.get("role") in ("user", "assistant") and isinstance(h.get("content"), str)]
        try:
            return self.conversations.new(owner=owner, origin=origin, messages=seed)
        except Exception:  # the store is down: the conversation is answered, and recorded once it is back
            store_failed("could not start a stored conversation")
            return uuid.uuid4().hex

    def history(self, session_id: str) -> list[dict]:
        return [{k: m[k] for k in ("role", "assistant", "content", "sources", "message_id")}
                for m in self.conversations.messages(session_id)]

    def feedback(self, message_id: str, up: bool, comment: str = "") -> None:
        self.conversations.feedback(message_id, up, comment)

    def usage(self) -> dict:
        """The monitor's figures, with what the conversations tell: answers by kind and feedback per
        day, and the coverage gaps (questions answered "I don't know" or given a thumbs-down)."""
        figures = self.monitor.figures()
        figures["feedback"] = self.conversations.feedback_counts()
        figures["chat_model"] = self.model_label()
        figures["answers_by_day"] = self.conversations.outcomes_by_day()
        figures["feedback_by_day"] = self.conversations.feedback_by_day()
        figures["gaps"] = self.conversations.gaps()
        return figures

    def model_label(self) -> str:
        return describe_chat_model(self.cfg)

    # -- one turn -----------------------------------------------------------------------------------
    def chat(self, message: str, session_id: str, assistant: str | None = None,
             kb: str | None = None) -> Iterator[Event]:
        """Answer one message. `assistant` (a name) addresses one assistant like an @mention; `kb`
        narrows the chat to one knowledge base (default: `chat.kb`, else every indexed KB)."""
        try:
            yield from self._turn(message, session_id, assistant, kb)
        except Exception as e:  # the chat never dies; the log keeps the details
            log.exception("chat turn failed")
            yield Event("error", GUIDE, f"Something went wrong while answering ({type(e).__name__}: "
                                        f"{clean_error(e)[:200]}); the chat is still here, try again.")

    def chat_kbs(self, kb: str | None = None) -> tuple[list[str], bool]:
        """The knowledge bases a turn reads, and whether they were chosen: `kb`, else `chat.kb`, else
        every KB in the catalog, read afresh for each message so a KB indexed meanwhile (from the
        Knowledge tab, the CLI or the API) is used at once."""
        try:
            return chat_kbs(self.index, (kb or "").strip() or self.cfg.chat.kb)
        except Exception:  # the catalog is unreadable: the answer says the KB cannot be searched
            log.exception("could not list the knowledge bases")
            return [], False

    def assistant_kbs(self, spec: AssistantSpec, turn: Turn) -> list[str]:
        """What `spec` reads: the chat's KBs, narrowed by its own `kbs` setting when it has one."""
        if not spec.kbs:
            return list(turn.kbs)
        if not turn.narrowed:
            return list(spec.kbs)
        return [k for k in spec.kbs if k in turn.kbs]

    def _turn(self, message: str, sid: str, assistant: str | None, kb: str | None = None) -> Iterator[Event]:
        message = CONTROL.sub("", message if isinstance(message, str) else "").strip()
        limit = self.cfg.chat.max_message_chars
        if not message:
            yield Event("notice", GUIDE, "The message is empty; type a question.")
            return
        if len(message) > limit:
            yield Event("error", GUIDE, f"The message is {len(message):,} characters long and the limit is "
                                        f"{limit:,} (chat.max_message_chars); shorten it or ask about one part.")
            return
        history = self._stored_history(sid)
        if not sid:
            sid = self.new_session()
        self._store(sid, "user", message)
        targets, text, unknown = self._addressed(message, assistant)
        if unknown:
            names = ", ".join("@" + u for u in unknown)
            yield from self._say(sid, self.guide, self._who_is_here(f"Nobody here is called {names}."))
            if not targets:
                return
        turn = Turn()
        turn.kbs, turn.narrowed = self.chat_kbs(kb)
        try:
            yield from self._speak(message, text, targets, sid, history, turn)
        finally:  # what was started ahead and not taken (the Guide answered itself, the client left) need not run
            for ahead in (turn.ahead.found if turn.ahead else None, turn.condensed):
                if ahead is not None:
                    ahead.cancel()

    def _speak(self, message: str, text: str, targets: list[AssistantSpec], sid: str, history: list[dict],
               turn: Turn) -> Iterator[Event]:
        """The turn's messages once its knowledge bases are known: greetings, the Guide's pick, answers."""
        if not text:  # a bare mention: "@Coding" says who it is; "@Guide" greets
            for spec in targets:
                yield from self._say(sid, spec, f"{spec.avatar} I'm {spec.name}: {spec.description} "
                                                "What would you like to know?")
            if not targets:
                yield from self._say(sid, self.guide, self._greeting(message, turn))
            return
        if not targets:
            if self._usable_model(turn) is not None:
                self._look_ahead(text, history, turn)  # while the Guide's routing call is out
            decision = self._decide(text, history, turn)
            if not decision.targets:
                yield from self._say(sid, self.guide, decision.reply or self._greeting(text, turn))
                return
            targets = decision.targets
            yield from self._say(sid, self.guide, handover_line([t.name for t in targets], language_of(text)))
        for spec in targets:
            yield from self._answer(spec, text, sid, history, turn, [t.name for t in targets if t is not spec])
        if self.monitor.budget_state() == "warn" and not self._warned_budget:
            self._warned_budget = True
            yield Event("notice", GUIDE, self.monitor.budget_message())

    def _look_ahead(self, text: str, history: list[dict], turn: Turn) -> None:
        """Start, while the Guide's routing call is out, what the answer will need whoever is picked:
        the question condensed into a search query when it needs it (a follow-up, another language:
        a model call of its own), then the search of the local classifier's first pick for that query.
        The answer takes each when it needs the same; either way it cites what it would have."""
        guess = classify(text, self.assistants)
        if searched_as_is(text, history, self.cfg.chat.corpus_language):
            if guess:
                self._search_ahead(guess[0], text, turn)
            return
        model = self._usable_model(turn)

        def condensed() -> tuple[str, str]:
            query, how = condense(text, self._convo(history), model, self.cfg.chat.corpus_language, GUIDE)
            if guess:
                self._search_ahead(guess[0], query, turn)  # before the answer can take the query: it will see this
            return query, how

        turn.condensed = self.condense_pool.submit(condensed)

    def _search_ahead(self, spec: AssistantSpec, query: str, turn: Turn) -> None:
        """Queue `spec`'s retrieval for `query`; `retrieve` takes it when the assistant, the query and the
        KBs turn out the same (otherwise only the query's embedding, cached, is of use)."""
        kbs = self.assistant_kbs(spec, turn)
        turn.ahead = SearchAhead(spec.name, query, kbs, self.ahead_pool.submit(retrieve_for, self.index, spec, query,
                                                                                kbs))

    def _stored_history(self, sid: str) -> list[dict]:
        """The conversation so far; a store that cannot be read costs the context, not the answer."""
        try:
            return self.conversations.messages(sid) if sid and self.conversations.exists(sid) else []
        except Exception:
            store_failed("could not read the conversation")
            return []

    def _store(self, sid: str, role: str, content: str, assistant: str = "", sources=None, model: str = "",
               message_id: str | None = None, outcome: str = "") -> None:
        """Record a message; a failing disk costs the record, not the answer."""
        try:
            self.conversations.add(sid, role, content, assistant, sources, model, message_id, outcome)
        except Exception:
            store_failed("could not store a message")

    def _addressed(self, message: str, assistant: str | None) -> tuple[list[AssistantSpec], str, list[str]]:
        """(targets, question text, unknown names). Guide as target means: let the Guide decide."""
        m = parse_mentions(message, self.assistants)
        targets, unknown = list(m.targets), m.unknown + m.ambiguous
        if assistant:
            found = resolve_name(assistant.strip().lstrip("@"), self.assistants)
            if len(found) == 1:
                targets = [found[0]] + [t for t in targets if t is not found[0]]
            else:
                unknown = [assistant] + unknown
        text = m.text if (m.targets or m.unknown or m.ambiguous) else message
        targets = [t for t in targets if not t.is_guide]
        return targets, text, unknown

    # -- the Guide ------------------------------------------------------------------------------------
    def _decide(self, text: str, history: list[dict], turn: Turn) -> Decision:
        if self._usable_model(turn) is not None:
            earlier = [{"role": h["role"], "content": (f"({h['assistant']} answered:) " if h["assistant"] else "")
                        + h["content"][:500]} for h in history[-2:]]
            msgs = [{"role": "system", "content": routing_prompt(self.assistants, self.kb_summary(turn))},
                    *earlier, {"role": "user", "content": text}]
            try:
                raw = self.model.complete(msgs, assistant=GUIDE, json_mode=True, max_tokens=200)
                decision = validate_decision(raw, self.assistants)
                if decision is not None:
                    self.monitor.count(f"routing_{decision.how}")
                    return decision
                log.info("routing output could not be used: %r", raw[:200])
            except (ModelUnavailable, StreamCut) as e:
                log.info("routing model unavailable: %s", e)
                turn.model_down = str(e)
        self.monitor.count("routing_classifier")
        previous = self._previous_speaker(history)
        if previous is not None and looks_like_follow_up(text):  # "and what does it return?" stays with them
            return Decision([previous], "", "classifier")
        return Decision(classify(text, self.assistants), "", "classifier")

    def _previous_speaker(self, history: list[dict]) -> AssistantSpec | None:
        for h in reversed(history[-4:]):
            if h["role"] == "assistant" and h["assistant"] and h["assistant"] != GUIDE:
                found = [a for a in self.specialists() if a.name == h["assistant"]]
                return found[0] if found else None
        return None

    def _who_is_here(self, first: str) -> str:
        lines = "\n".join(f"- {a.avatar} **@{a.name}**: {a.description}" for a in self.assistants)
        return f"{first} In this chat:\n{lines}\n\nMention one of them, or just ask and I will pick."

    def _greeting(self, text: str, turn: Turn) -> str:
        if self._usable_model(turn) is not None:
            try:
                msgs = guide_messages(self.guide, text, self.about(turn), [], language_of(text))
                return self.model.complete(msgs, assistant=GUIDE, max_tokens=300)
            except (ModelUnavailable, StreamCut) as e:
                turn.model_down = str(e)
        if language_of(text) == "Chinese":
            intro = "你好！我是 Guide，负责把问题交给合适的助手。"
        else:
            intro = "Hi! I'm the Guide: I pass each question to the assistant who knows best."
        tip = ('Try "How do I …?" for the docs, or "@Coding what arguments does X take?" for the source.')
        return self._who_is_here(intro) + f"\n\n{self.kb_summary(turn)}.\n\n{tip}"

    def about(self, turn: Turn | None = None) -> str:
        lines = [f"- {a.name}: {a.description}" for a in self.assistants]
        return ("A developer copilot: ask about the indexed framework's docs and code; answers cite files and "
                "lines. Assistants:\n" + "\n".join(lines) + f"\n{self.kb_summary(turn)}. Mention an "
                "assistant with @Name to ask it directly.")

    def kb_summary(self, turn: Turn | None = None) -> str:
        """Which knowledge bases the chat reads, each with its size and first sources."""
        kbs, narrowed = (turn.kbs, turn.narrowed) if turn is not None else self.chat_kbs()
        parts = []
        try:
            for name in kbs:
                if self.index.catalog.kb(name) is None:
                    parts.append(f"KB '{name}' (not indexed yet)")
                    continue
                sources = self.index.catalog.sources(name)
                specs = ", ".join(s["spec"] for s in sources[:3]) + (f" and {len(sources) - 3} more"
                                                                    if len(sources) > 3 else "")
                parts.append(f"KB '{name}' ({self.index.catalog.count_chunks(name)} chunks from {specs})")
        except Exception:  # a summary must never break a greeting
            log.exception("kb summary failed")
        if not parts:
            return "Nothing is indexed yet: run `devcopilot ingest SOURCE` or add a source in the Knowledge tab"
        if narrowed:
            return "This chat reads " + "; ".join(parts) + " (narrowed to it; choose all KBs to read every one)"
        return ("This chat reads every indexed knowledge base: " if len(parts) > 1 else "This chat reads ") \
            + "; ".join(parts)

    def _say(self, sid: str, spec: AssistantSpec, text: str, sources: list[Source] | None = None) \
            -> Iterator[Event]:
        """A short message spoken at once (greetings, hand-overs, refusals), streamed in pieces."""
        mid = uuid.uuid4().hex
        yield Event("start", spec.name, message_id=mid)
        for p in pieces(text):
            yield Event("token", spec.name, p)
        yield Event("sources", spec.name, sources=list(sources or []))
        self._store(sid, "assistant", text, spec.name, sources, message_id=mid, outcome="guide")
        yield Event("end", spec.name, text, list(sources or []), mid)

    # -- specialists --------------------------------------------------------------------------------------
    def retrieve(self, spec: AssistantSpec, query: str, kbs: list[str], turn: Turn | None = None) -> Retrieval:
        """What `spec` cites for `query` from `kbs` (indexes/retrieve.py holds the policy); taken from
        the turn's search ahead when it searched the same."""
        ahead = turn.ahead if turn is not None else None
        found = None
        if ahead is not None:
            turn.ahead = None
            # Still queued: searched here, at once (and a wrong guess never runs). Started: awaited.
            if not ahead.found.cancel() and ahead.searched(spec.name, query, kbs):
                found = ahead.found.result()
        if found is None:
            found = retrieve_for(self.index, spec, query, kbs)
        if found.searches:
            self.monitor.count("retrieval_calls", found.searches)
        return found

    def _answer(self, spec: AssistantSpec, question: str, sid: str, history: list[dict], turn: Turn,
                others: list[str]) -> Iterator[Event]:
        mid = uuid.uuid4().hex
        yield Event("start", spec.name, message_id=mid)
        lang = language_of(question)
        convo = self._convo(history)
        # Condensed once a turn (a later speaker searches for the same query); here, unless it already was
        # or is being condensed during the routing call.
        if turn.condensed is None or turn.condensed.cancel():
            turn.condensed = Future()
            turn.condensed.set_result(condense(question, convo, self._usable_model(turn), self.cfg.chat.corpus_language,
                                               spec.name))
        query, how = turn.condensed.result()
        if how == "model-failed":
            turn.model_down = turn.model_down or "it did not answer"
        parts: list[str] = []
        model_name = ""
        outcome = "model"
        kbs = self.assistant_kbs(spec, turn)
        try:
            found = self.retrieve(spec, query, kbs, turn)
            hits, weak, down = found.hits, found.weak, ""
        except RetrievalDown as e:
            hits, weak, down = [], True, f"{type(e.cause).__name__}: {clean_error(e.cause)[:160]}"
        sources = [to_source(n, h, self._origin(h)) for n, h in enumerate(hits, 1)]
        if not down and not hits and not any(self.index.catalog.kb(kb) for kb in kbs):
            down, outcome = "missing", "missing"
            text = self._nothing_to_read(spec, kbs, turn)
            for p in pieces(text):
                yield Event("token", spec.name, p)
        elif down:
            outcome = "down"
            text = (f"I can't search the knowledge base right now ({down}). Check the vector store "
                    "(`devcopilot status`) and ask again; nothing indexed is lost.")
            for p in pieces(text):
                yield Event("token", spec.name, p)
            self.monitor.count("retrieval_failures")
        elif weak:
            outcome = "dont_know"
            sources = sources[:3]
            text = dont_know(sources, lang)
            for p in pieces(text):
                yield Event("token", spec.name, p)
            self.monitor.count("dont_know_answers")
        elif self._usable_model(turn) is None:
            note = no_model_line(lang) if self.model is None else self._fault_note(turn.model_down)
            # A second speaker in the same turn quotes what the first did not, when there is enough.
            quoted = {(s.path, s.start_line) for t in turn.answers for s in t["sources"]}
            fresh = [s for s in sources if (s.path, s.start_line) not in quoted]
            if len(fresh) >= 2 and len(fresh) < len(sources):
                sources = [Source(n, *astuple(s)[1:]) for n, s in enumerate(fresh, 1)]
            sources = sources[:3]
            text = offline_answer(sources, query, note)
            for p in text.split("\n\n"):
                yield Event("token", spec.name, p + "\n\n")
            self.monitor.count("offline_answers")
            outcome = "offline"
        else:
            model_name = self.model.model
            msgs = answer_messages(spec, question, sources, self._model_history(convo, turn.answers), lang, others)
            try:
                yield from self._stream_model(spec, msgs, sources, parts, kbs)
                text = "".join(parts)
            except ModelUnavailable as e:
                turn.model_down = str(e)
                sources = sources[:3]
                if parts:
                    note = f"\n\n_(The model stopped before finishing: {e}. The sources below are what it was given.)_"
                    text = "".join(parts) + note
                    yield Event("token", spec.name, note)
                else:
                    text = offline_answer(sources, query, self._fault_note(str(e)))
                    for p in text.split("\n\n"):
                        yield Event("token", spec.name, p + "\n\n")
                    self.monitor.count("offline_answers")
                    outcome = "offline"
            except StreamCut as e:
                note = f"\n\n_(The answer was cut off: {e}. What arrived is kept above; ask again for the rest.)_"
                text = "".join(parts) + note
                yield Event("token", spec.name, note)
        yield Event("sources", spec.name, sources=sources)
        self._store(sid, "assistant", text, spec.name, sources, model_name, message_id=mid, outcome=outcome)
        turn.answers.append({"role": "assistant", "assistant": spec.name, "content": text, "sources": sources})
        yield Event("end", spec.name, text, sources, mid)

    def _nothing_to_read(self, spec: AssistantSpec, kbs: list[str], turn: Turn) -> str:
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

    def _origin(self, hit: Hit) -> str:
        try:
            return self.index.origin(hit.kb, hit.chunk.source_id)
        except Exception:  # a citation's footnote must never cost the answer
            log.exception("source origin failed")
            return ""

    def _usable_model(self, turn: Turn) -> ResilientModel | None:
        if self.model is None or self.monitor.over_budget() or turn.model_down:
            return None
        return self.model

    def _fault_note(self, reason: str) -> str:
        if self.monitor.over_budget():
            return "_" + self.monitor.budget_message() + "_"
        return (f"_The language model could not answer ({reason}), so these are the best matching passages, "
                "quoted._")

    def _convo(self, history: list[dict]) -> list[dict]:
        """The conversation an answer (and its condensed query) goes by."""
        return [{"role": h["role"], "content": h["content"], "sources": h.get("sources", [])}
                for h in history[-self.cfg.chat.history_turns:]]

    def _model_history(self, convo: list[dict], turn: list[dict]) -> list[dict]:
        out = []
        for h in convo:
            if h["role"] in ("user", "assistant"):
                out.append({"role": h["role"], "content": h["content"][:1500]})
        for t in turn:  # earlier speakers in this turn
            out.append({"role": "assistant", "content": f"({t['assistant']} answered:) {t['content'][:2500]}"})
        return out

    def _stream_model(self, spec: AssistantSpec, msgs: list[dict], sources: list[Source],
                      parts: list[str], kbs: list[str]) -> Iterator[Event]:
        use_tools = spec.tools and self.cfg.chat.tools and self.model.supports_tools
        box = ToolBox(self.index, kbs, self.cfg.chat.max_tool_calls)
        for _round in range(self.cfg.chat.max_tool_calls + 1):
            tools = TOOL_SPECS if use_tools and not box.exhausted else None
            final = None
            said: list[str] = []
            for d in self.model.stream(msgs, assistant=spec.name, tools=tools,
                                       on_retry=lambda m: log.info("retrying: %s", m)):
                if d.text:
                    parts.append(d.text)
                    said.append(d.text)
                    yield Event("token", spec.name, d.text)
                elif d.notice:
                    yield Event("notice", spec.name, d.notice)
                else:
                    final = d
            if not (tools and final is not None and final.tool_calls):
                return
            msgs.append({"role": "assistant", "content": "".join(said),
                         "tool_calls": [{"id": tc.id, "type": "function",
                                         "function": {"name": tc.name, "arguments": tc.arguments}}
                                        for tc in final.tool_calls]})
            for tc in final.tool_calls:
                self.monitor.count("tool_calls")
                if box.exhausted:
                    result = "error: no more tool calls for this answer; answer with what you have."
                else:
                    r = box.run(tc.name, tc.arguments)
                    refs = []
                    for c in r.chunks:
                        n = _source_number(sources, c)
                        refs.append(f"[{n}] {c.path} lines {c.start_line}-{c.end_line}")
                    result = (("Cite these as: " + "; ".join(refs) + "\n\n") if refs else "") + r.text
                msg = {"role": "tool", "tool_call_id": tc.id, "content": result[:8000]}
                if self.model.provider == "dashscope":  # DashScope also wants the tool's name
                    msg["name"] = tc.name
                msgs.append(msg)


def to_source(n: int, hit: Hit, origin: str = "") -> Source:
    c = hit.chunk
    return Source(n, c.path, c.start_line, c.end_line, c.title, c.link, c.kind, c.language,
                  c.text[:EXCERPT_CHARS], hit.kb, origin)


def _source_number(sources: list[Source], chunk) -> int:
    for s in sources:
        if s.path == chunk.path and s.start_line == chunk.start_line and s.end_line == chunk.end_line:
            return s.n
    n = len(sources) + 1
    sources.append(Source(n, chunk.path, chunk.start_line, chunk.end_line, chunk.title, chunk.link, chunk.kind,
                          chunk.language, chunk.text[:EXCERPT_CHARS]))
    return n

