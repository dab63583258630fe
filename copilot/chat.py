"""The copilot: a group chat of assistants answering from the indexes.

One turn: the message is checked, the speakers chosen (@mentions, else the Guide decides),
and each speaker in order retrieves, builds a prompt with numbered sources and streams its
answer; later speakers see the earlier answers. Every speaker yields start, tokens, sources,
end. Nothing a user or a model server does makes `chat()` raise: faults become notes.

`Copilot` is the one object the doors hold. It runs the turn (this module) with its parts, each
a module of its own: the conversations and usage (copilot/sessions.py), the work started while
the Guide decides (copilot/ahead.py), a specialist's answer and its outcomes (copilot/answer.py),
the model's tool-call rounds (copilot/toolloop.py). What is cited, and when retrieval is too weak
to answer from ("I don't know"), is decided by indexes/retrieve.py, the one retrieval call every
door uses. Doors fold the events with copilot/reply.py.
"""
from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from copilot.ahead import Ahead
from copilot.answer import Answers
from copilot.assistants import GUIDE, AssistantSpec, chat_kbs, load_assistants, rank
from copilot.condense import looks_like_follow_up
from copilot.config import Config
from copilot.conversations import ConversationError, Conversations, open_conversations  # noqa: F401 (re-exported)
from copilot.events import END, ERROR, NOTICE, SOURCES, START, TOKEN, Event, Source
from copilot.models import ModelUnavailable, ResilientModel, StreamCut, clean_error, describe_chat_model, make_model
from copilot.monitor import Monitor
from copilot.prompts import guide_messages, handover_line, language_of, pieces
from copilot.routing import (
    Decision,
    UnknownAssistant,
    classify,
    find_assistant,
    parse_mentions,
    routing_prompt,
    validate_decision,
    where_answered,
)
from copilot.sessions import Sessions, store_failed  # noqa: F401 (store_failed re-exported)
from copilot.toolloop import ToolLoop
from copilot.turn import Turn
from indexes.change_questions import plan_changes
from indexes.project import versions_for
from indexes.retrieve import Retrieval, RetrievalDown
from indexes.search import Index
from indexes.versions import VersionChoice

log = logging.getLogger("devcopilot.chat")

# Control and invisible characters, and lone surrogates (a JSON escape can spell them; no tokenizer
# or database takes them): dropped from a message before anything reads it.
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


class Copilot:
    def __init__(self, cfg: Config, index: Index | None = None, model: ResilientModel | None = None):
        self.cfg = cfg
        self.index = index if index is not None else Index(cfg)
        self.assistants: list[AssistantSpec] = load_assistants(cfg)
        self.monitor = Monitor(cfg)
        self.model = model if model is not None else make_model(cfg, self.monitor)
        if self.model is not None and self.model.monitor is None:
            self.model.monitor = self.monitor
        self.sessions = Sessions(open_conversations(cfg), self.monitor)
        self.ahead = Ahead(cfg, self.index)
        self.answers = Answers(cfg, self.index, self.monitor, self.sessions, self.ahead,
                               ToolLoop(cfg, self.index, self.monitor))
        self._warned_budget = False

    @property
    def guide(self) -> AssistantSpec:
        return self.assistants[0]

    def specialists(self) -> list[AssistantSpec]:
        return [a for a in self.assistants if not a.is_guide]

    def close(self) -> None:
        """Stop the work done ahead (its thread pools); the Copilot answers no more after this."""
        self.ahead.close()

    # -- its parts, under the names the doors know ----------------------------------------------------
    @property
    def conversations(self) -> Conversations:
        return self.sessions.conversations

    @property
    def ahead_pool(self) -> ThreadPoolExecutor:
        return self.ahead.search_pool

    @property
    def condense_pool(self) -> ThreadPoolExecutor:
        return self.ahead.condense_pool

    def new_session(self, history: list[dict] | None = None, owner: str = "", origin: str = "") -> str:
        """A new conversation; `history` ({role, content[, assistant]}) seeds it (e.g. from the API).
        `owner` is the signed-in user, `origin` the door ("web", "api", "cli")."""
        return self.sessions.new(history, owner, origin)

    def history(self, session_id: str) -> list[dict]:
        return self.sessions.history(session_id)

    def feedback(self, message_id: str, up: bool, comment: str = "") -> None:
        self.sessions.feedback(message_id, up, comment)

    def usage(self, owner: str | None = None) -> dict:
        """The monitor's figures, with what the conversations tell (copilot/sessions.py): `owner`'s
        conversations only, when given."""
        return self.sessions.usage(self.model_label(), owner)

    def model_label(self) -> str:
        return describe_chat_model(self.cfg)

    def retrieve(self, spec: AssistantSpec, query: str, kbs: list[str], turn: Turn | None = None) -> Retrieval:
        """What `spec` cites for `query` from `kbs` (copilot/answer.py)."""
        return self.answers.retrieve(spec, query, kbs, turn)

    def assistant_kbs(self, spec: AssistantSpec, turn: Turn) -> list[str]:
        """What `spec` reads: the chat's KBs, narrowed by its own `kbs` setting when it has one."""
        return turn.kbs_of(spec)

    def chat_kbs(self, kb: str | None = None) -> tuple[list[str], bool]:
        """The knowledge bases a turn reads, and whether they were chosen: `kb`, else `chat.kb`, else
        every KB in the catalog, read afresh for each message so a KB indexed meanwhile (from the
        Knowledge tab, the CLI or the API) is used at once."""
        try:
            return chat_kbs(self.index, (kb or "").strip() or self.cfg.chat.kb)
        except Exception:  # the catalog is unreadable: the answer says the KB cannot be searched
            log.exception("could not list the knowledge bases")
            return [], False

    # -- one turn -----------------------------------------------------------------------------------
    def chat(self, message: str, session_id: str, assistant: str | None = None,
             kb: str | None = None, versions: VersionChoice | None = None) -> Iterator[Event]:
        """Answer one message. `assistant` (a name) addresses one assistant like an @mention; `kb`
        narrows the chat to one knowledge base (default: `chat.kb`, else every indexed KB); `versions`
        chooses the version of each library answered from (default: what `project.path` pins, else the
        newest indexed: indexes/versions.py)."""
        try:
            yield from self._turn(message, session_id, assistant, kb, versions)
        except Exception as e:  # the chat never dies; the log keeps the details
            log.exception("chat turn failed")
            yield Event(ERROR, GUIDE, f"Something went wrong while answering ({type(e).__name__}: "
                                      f"{clean_error(e)[:200]}); the chat is still here, try again.")

    def _turn(self, message: str, sid: str, assistant: str | None, kb: str | None = None,
              versions: VersionChoice | None = None) -> Iterator[Event]:
        message = CONTROL.sub("", message if isinstance(message, str) else "").strip()
        limit = self.cfg.chat.max_message_chars
        if not message:
            yield Event(NOTICE, GUIDE, "The message is empty; type a question.")
            return
        if len(message) > limit:
            yield Event(ERROR, GUIDE, f"The message is {len(message):,} characters long and the limit is "
                                      f"{limit:,} (chat.max_message_chars); shorten it or ask about one part.")
            return
        history = self.sessions.read(sid)
        if not sid:
            sid = self.new_session()
        self.sessions.store(sid, "user", message)
        targets, text, unknown = self._addressed(message, assistant)
        if unknown:
            names = ", ".join("@" + u for u in unknown)
            yield from self._say(sid, self.guide, self._who_is_here(f"Nobody here is called {names}."))
            if not targets:
                return
        turn = Turn(self.model, self.monitor)
        turn.kbs, turn.narrowed = self.chat_kbs(kb)
        turn.versions = self.versions(versions)
        try:
            yield from self._speak(message, text, targets, sid, history, turn)
        finally:  # what was started ahead and not taken (the Guide answered itself, the client left) need not run
            self.ahead.drop(turn)

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
            decision = self._about_a_release(text, turn)
            if decision is None and turn.usable_model() is not None:  # while the Guide's routing call is out
                guess = classify(text, self.assistants)
                self.ahead.start(text, history, turn, guess[0] if guess else None)
            decision = decision or self._decide(text, history, turn)
            if not decision.targets:
                yield from self._say(sid, self.guide, decision.reply or self._greeting(text, turn))
                return
            targets = decision.targets
            yield from self._say(sid, self.guide, handover_line([t.name for t in targets], language_of(text)))
        for spec in targets:
            yield from self.answers.answer(spec, text, sid, history, turn, [t.name for t in targets if t is not spec])
        for note in self.version_notes(turn):  # after the answers, as the doors write notices
            yield Event(NOTICE, GUIDE, note)
        if self.monitor.budget_state() == "warn" and not self._warned_budget:
            self._warned_budget = True
            yield Event(NOTICE, GUIDE, self.monitor.budget_message())

    def versions(self, chosen: VersionChoice | None = None) -> VersionChoice | None:
        """The versions a turn is answered at: those `chosen`, then what the project (`project.path`) pins
        for the libraries they do not name; None: the newest of each."""
        return versions_for(chosen, self.cfg.project.path)

    def version_notes(self, turn: Turn) -> list[str]:
        """What a turn says about its versions before answering: a lock file that could not be read, and each
        pinned version not indexed (with the command that indexes it; the newest answers meanwhile), and a version
        asked for that no library of the KBs takes."""
        try:
            return self.index.version_notes(turn.kbs, turn.versions)
        except Exception:  # a note must never cost the answer
            log.exception("version notes failed")
            return list(getattr(turn.versions, "notes", ()))

    def _addressed(self, message: str, assistant: str | None) -> tuple[list[AssistantSpec], str, list[str]]:
        """(targets, question text, unknown names). Guide as target means: let the Guide decide."""
        m = parse_mentions(message, self.assistants)
        targets, unknown = list(m.targets), m.unknown + m.ambiguous
        if assistant:
            try:
                found = find_assistant(assistant, self.assistants)
                targets = [found] + [t for t in targets if t is not found]
            except UnknownAssistant as e:
                unknown = [e.name] + unknown
        text = m.text if (m.targets or m.unknown or m.ambiguous) else message
        targets = [t for t in targets if not t.is_guide]
        return targets, text, unknown

    # -- the Guide ------------------------------------------------------------------------------------
    def _decide(self, text: str, history: list[dict], turn: Turn) -> Decision:
        if turn.usable_model() is not None:
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
        return Decision(classify(text, self.assistants, lambda: self._lean(text, turn)), "", "classifier")

    def _lean(self, text: str, turn: Turn) -> str | None:
        """Where the answer to `text` is, for the local routing (copilot/routing.py `where_answered`), from the
        search of both kinds, which the turn keeps for the assistants to order their citations by; None when the
        store is down (the answer says so)."""
        try:
            turn.ranking = rank(self.index, text, turn.kbs, turn.versions)
        except RetrievalDown:
            return None
        return where_answered(turn.ranking.found)

    def _about_a_release(self, text: str, turn: Turn) -> Decision | None:
        """A question about what changed between indexed versions of a library, or whether one of its
        symbols is deprecated, goes to Coding, which answers from the comparison of the versions
        (indexes/change_questions.py reads the question; copilot/assistants.py `retrieve_for`)."""
        coding = next((a for a in self.specialists() if a.key == "coding"), None)
        try:
            if coding is None or plan_changes(self.index, turn.kbs, text) is None:
                return None
        except Exception:  # reading the versions must never cost the answer: the Guide decides as always
            log.exception("could not read the question as one about a release")
            return None
        self.monitor.count("routing_release")
        return Decision([coding], "", "release")

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
        if turn.usable_model() is not None:
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
        yield Event(START, spec.name, message_id=mid)
        for p in pieces(text):
            yield Event(TOKEN, spec.name, p)
        yield Event(SOURCES, spec.name, sources=list(sources or []))
        self.sessions.store(sid, "assistant", text, spec.name, sources, message_id=mid, outcome="guide")
        yield Event(END, spec.name, text, list(sources or []), mid)
