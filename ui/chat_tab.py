"""The web app's Chat tab: the group chat, the conversation list, the knowledge-base and version selectors.

No retrieval or routing here: it renders the events `Copilot.chat` yields (ui/render.py) and the
conversations the Copilot keeps, each signed-in user seeing only their own.
"""
from __future__ import annotations

import logging
import secrets
import time
from pathlib import Path

import gradio as gr

from copilot.chat import store_failed
from copilot.events import END, START, TOKEN
from copilot.reply import Note, Reply
from ui import render
from ui.auth import user_of
from ui.strings import unfit

log = logging.getLogger("devcopilot.ui")

# Each one sends when clicked, and each answers from this repository on a first `make run`.
EXAMPLES = [
    "Hello! Who can help me here?",
    "How do I get started?",
    "@Coding where is the command line defined?",
    "@Tutoring how do I add a source and re-index?",
]

ALL_KBS = "All knowledge bases"
# The version selector's own choices; each indexed version of a library is "LIBRARY==VERSION".
PROJECT, NEWEST, EVERY = "project", "newest", "all"
STREAM_INTERVAL_S = 0.05  # at most ~20 screen updates a second while tokens arrive


class ChatTab:
    """The Chat tab's components and handlers; `layout()` builds it inside a `gr.Tab`."""

    def __init__(self, copilot, cfg):
        self.copilot = copilot
        self.cfg = cfg
        # Indexes a version the chat offers (the Knowledge tab's `index_version`: the server's job queue).
        self.index_version = None
        self.avatars = {a.name: a.avatar for a in copilot.assistants}
        self.max_chars = int(getattr(getattr(cfg, "chat", None), "max_message_chars", 0) or 0)

    def avatar_of(self, name: str) -> str:
        return self.avatars.get(name, "🤖")

    # -- conversations ---------------------------------------------------------------
    def conversation_choices(self, user: str) -> list[tuple[str, str]]:
        try:
            return [(_short(c["title"]), c["id"]) for c in self.copilot.conversations.listing(owner=user)]
        except Exception:  # the conversation store is out of reach (a shared database down): the chat goes on
            store_failed("could not list the conversations")
            return []

    def sidebar(self, user: str, current: str | None):
        choices = self.conversation_choices(user)
        return gr.update(choices=choices, value=current if any(c[1] == current for c in choices) else None)

    def owned(self, cid: str | None, user: str) -> bool:
        try:
            return bool(cid) and self.copilot.conversations.owner_of(cid) == user
        except Exception:  # cannot be checked while the store is out of reach: a new conversation then
            store_failed("could not read the conversation's owner")
            return False

    def open_conversation(self, cid: str | None, request: gr.Request):
        """Show a stored conversation, with its sources, or an empty chat."""
        user = user_of(request)
        if not self.owned(cid, user):
            return [], [], None, None, self.sidebar(user, None)
        history, ids = render.history(self.copilot.conversations.messages(cid), self.avatar_of)
        return history, ids, cid, cid, self.sidebar(user, cid)

    def restore_conversation(self, cid: str | None, request: gr.Request):
        """On page load: the browser's last conversation. With none, the chat is left as it is: it
        starts empty, and a question asked (or an example clicked) before this answer arrives must not
        be wiped by it."""
        if not self.owned(cid, user_of(request)):
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), self.sidebar(user_of(request), None)
        return self.open_conversation(cid, request)

    def new_chat(self, request: gr.Request):
        return [], [], None, None, self.sidebar(user_of(request), None), "", gr.update(interactive=True)

    def delete_chat(self, cid: str | None, request: gr.Request):
        user = user_of(request)
        if self.owned(cid, user):
            self.copilot.conversations.delete(cid)
        return [], [], None, None, self.sidebar(user, None)

    # -- chat --------------------------------------------------------------------------
    def run_chat(self, message: str, history: list, ids: list, session_id: str, kb: str, version: str = PROJECT):
        """Stream one user turn: yields (history, ids) as events arrive."""
        history = list(history or [])
        ids = list(ids or [])
        history.append({"role": "user", "content": message})
        ids.append("")
        yield history, ids
        reply = Reply()
        current = None  # index in history of the answer being streamed
        last = 0.0
        try:
            for ev in self.copilot.chat(message, session_id, kb=kb or None, versions=chosen_versions(version)):
                said = reply.feed(ev)
                if isinstance(said, Note):
                    history.append({"role": "assistant", "content": _notice(ev, self.avatar_of)})
                    ids.append("")
                    yield history, ids
                    continue
                if said is None:
                    continue
                if ev.type == START:
                    history.append({"role": "assistant", "content": ""})
                    ids.append(said.message_id)
                    current = len(history) - 1
                elif ev.type == END:
                    ids[current] = said.message_id
                history[current] = {"role": "assistant", "content": render.assistant_message(
                    said.assistant, self.avatar_of(said.assistant), said.text, said.sources,
                    streaming=not said.ended)}
                now = time.monotonic()
                if ev.type != TOKEN or now - last >= STREAM_INTERVAL_S:
                    last = now
                    yield history, ids
        except Exception as e:  # the chat never dies in the browser: one sentence, details in the log
            log.exception("chat failed")
            history.append({"role": "assistant", "content": render.notice_message(_one_line(e), error=True)})
            ids.append("")
        yield history, ids

    def submit(self, message: str, history: list, ids: list, session_id: str | None, kb: str, version: str,
               request: gr.Request):
        """Answer one message; the conversation is created on the first one and listed in the sidebar."""
        user = user_of(request)
        message = (message or "").strip()
        if not message:
            yield history, ids, session_id, session_id, gr.update(), "", gr.update()
            return
        if self.max_chars and len(message) > self.max_chars:
            gr.Warning(f"That message is {len(message):,} characters; the limit is {self.max_chars:,}. Shorten it.")
            yield history, ids, session_id, session_id, gr.update(), message, gr.update()
            return
        if unfit(message):  # refused before a conversation is started or anything stored
            gr.Warning(_unfit_sentence(message))
            yield history, ids, session_id, session_id, gr.update(), "", gr.update()
            return
        if not self.owned(session_id, user):
            session_id = self.copilot.new_session(owner=user, origin="web")
        listed = False
        for h, i in self.run_chat(message, history, ids, session_id, kb, version):
            # Listed (titled by its first question) as soon as it holds the question; Send is off meanwhile.
            side = gr.update()
            if not listed and len(h) > len(history or []) + 1:
                side, listed = self.sidebar(user, session_id), True
            yield h, i, session_id, session_id, side, "", gr.update(interactive=False)
        yield h, i, session_id, session_id, self.sidebar(user, session_id), "", gr.update(interactive=True)

    def send_example(self, history: list, ids: list, session_id: str | None, kb: str, version: str,
                     data: gr.SelectData, request: gr.Request):
        value = data.value if isinstance(data.value, str) else (data.value or {}).get("text", "")
        yield from self.submit(value, history, ids, session_id, kb, version, request)

    def retry(self, history: list, ids: list, session_id: str | None, kb: str, version: str, data: gr.RetryData,
              request: gr.Request):
        user = user_of(request)
        idx = data.index if isinstance(data.index, int) else data.index[0]
        message = _text_of(history[idx]["content"]) if idx < len(history) else ""
        if not message or unfit(message):
            if message:
                gr.Warning(_unfit_sentence(message))
            yield history, ids, session_id
            return
        if not self.owned(session_id, user):
            session_id = self.copilot.new_session(owner=user, origin="web")
        for h, i in self.run_chat(message, history[:idx], ids[:idx], session_id, kb, version):
            yield h, i, session_id

    def like(self, ids: list, data: gr.LikeData):
        idx = data.index if isinstance(data.index, int) else data.index[0]
        message_id = ids[idx] if ids and idx < len(ids) else ""
        if not message_id:
            return
        up = data.liked is True or data.liked == "Like"
        if data.liked in (False, True, "Like", "Dislike"):
            self.copilot.feedback(message_id, up)

    def kb_choices(self, current: str | None = None):
        names = [info.name for info in self.copilot.index.catalog.kbs()]
        value = current if current in names else ""
        return gr.update(choices=[(ALL_KBS, "")] + [(n, n) for n in names], value=value)

    # -- versions ---------------------------------------------------------------------------
    def chat_kbs(self, kb: str | None) -> list[str]:
        return self.copilot.chat_kbs(kb or None)[0]

    def version_choices(self, kb: str | None = None, current: str | None = None):
        """The version selector: the project's (when one is set), the newest, every version, and each version
        indexed in the KBs the chat reads."""
        project = self.cfg.project.path if getattr(self.cfg, "project", None) else ""
        own = ([(f"The project's versions ({Path(project).name})", PROJECT)] if project else []) + \
            [("Newest versions", NEWEST), ("All versions", EVERY)]
        try:
            listed = [(label, f"{lib}=={ver}") for label, lib, ver in version_options(self.copilot.index,
                                                                                      self.chat_kbs(kb))]
        except Exception:  # the catalog out of reach: the selector still offers its own choices
            log.exception("could not list the versions")
            listed = []
        values = [v for _, v in own + listed]
        value = current if current in values else (PROJECT if project else NEWEST)
        return gr.update(choices=own + listed, value=value)

    def offer(self, kb: str | None, version: str):
        """The button offering to index a pinned version the chat's KBs do not hold (and what it would do)."""
        try:
            choice = self.copilot.versions(chosen_versions(version))
            missing = [m for name in self.chat_kbs(kb) if self.copilot.index.catalog.kb(name) is not None
                       for m in self.copilot.index.scope(name, choice).missing if m.spec]
        except Exception:
            log.exception("could not work out the versions to offer")
            missing = []
        if not missing or self.index_version is None:
            return gr.update(visible=False), None
        m = missing[0]
        return gr.update(visible=True, value=f"Index {m.library} {m.version}"), [m.kb, m.spec]

    def take_offer(self, offered: list | None, kb: str | None, version: str):
        """Submit the offered version to the server's job queue; the chat says so (and the Knowledge tab shows it)."""
        if not offered or self.index_version is None:
            return gr.update(visible=False), None, ""
        note = self.index_version(offered[1], offered[0])
        return gr.update(visible=False), None, note

    # -- layout ---------------------------------------------------------------------------
    def states(self) -> None:
        """The page's state (made before the tabs): the browser's conversation, the session, message ids."""
        self.browser = gr.BrowserState(None, storage_key="devcopilot-conversation", secret=browser_secret(self.cfg))
        self.session = gr.State(None)
        self.message_ids = gr.State([])

    def layout(self) -> None:
        """The tab's components (inside the caller's `gr.Tab`); `wire(demo)` connects them."""
        team = " · ".join(f"{render.avatar_html(a.name, a.avatar)} **{a.name}**" for a in self.copilot.assistants)
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=200, elem_id="dc-sidebar"):
                self.new = gr.Button("New chat", size="sm", elem_id="dc-new", variant="primary")
                self.conversations = gr.Radio(choices=[], label="Conversations", elem_id="dc-conversations",
                                              container=False)
                self.delete = gr.Button("Delete this chat", size="sm", elem_id="dc-delete")
            with gr.Column(scale=5, min_width=320):
                with gr.Row(elem_id="dc-chat-bar", equal_height=True):
                    self.kb_select = gr.Dropdown(choices=[(ALL_KBS, "")], value="", label="Knowledge base",
                                                 show_label=False, elem_id="dc-kb-select", interactive=True,
                                                 container=False, scale=1, min_width=200)
                    first = PROJECT if getattr(getattr(self.cfg, "project", None), "path", "") else NEWEST
                    self.version_select = gr.Dropdown(choices=[(first, first)], value=first, label="Version",
                                                      show_label=False, elem_id="dc-version-select",
                                                      interactive=True, container=False, scale=1, min_width=160)
                    gr.Markdown(f"{team} · **@Name** asks one directly", elem_id="dc-team")
                with gr.Row(elem_id="dc-offer-bar"):
                    self.offer_button = gr.Button("Index", visible=False, size="sm", elem_id="dc-offer")
                    self.offer_note = gr.Markdown(elem_id="dc-offer-note")
                self.offered = gr.State(None)
                self.chatbot = gr.Chatbot(
                    label="Group chat", show_label=False, elem_id="dc-chat", height="calc(100dvh - 255px)",
                    min_height=320, group_consecutive_messages=False, autoscroll=False,
                    feedback_options=("Like", "Dislike"), buttons=["copy"], layout="bubble",
                    placeholder="**Ask about the docs or the code.** Answers cite the files and lines they "
                                "come from.", examples=[{"text": q} for q in EXAMPLES])
                with gr.Row():
                    self.box = gr.Textbox(placeholder="Ask a question, or @Coding / @Tutoring …",
                                          show_label=False, scale=6, elem_id="dc-input", autofocus=True,
                                          max_lines=8)
                    self.send = gr.Button("Send", variant="primary", scale=1, elem_id="dc-send")

    def wire(self, demo: gr.Blocks) -> None:
        # Chats from different browsers run side by side (Gradio's default is one at a time per event).
        chatbot, ids, session, kb, version = self.chatbot, self.message_ids, self.session, self.kb_select, \
            self.version_select
        shown = [chatbot, ids, session, self.browser, self.conversations]
        chat_out = [*shown, self.box, self.send]
        offer = (self.offer, [kb, version], [self.offer_button, self.offered])
        demo.load(self.restore_conversation, self.browser, shown).then(self.kb_choices, None, kb) \
            .then(self.version_choices, [kb, version], version).then(*offer)
        self.box.submit(self.submit, [self.box, chatbot, ids, session, kb, version], chat_out,
                        concurrency_limit=None).then(*offer)
        self.send.click(self.submit, [self.box, chatbot, ids, session, kb, version], chat_out,
                        concurrency_limit=None).then(*offer)
        chatbot.example_select(self.send_example, [chatbot, ids, session, kb, version], chat_out,
                               concurrency_limit=None)
        chatbot.retry(self.retry, [chatbot, ids, session, kb, version], [chatbot, ids, session], concurrency_limit=None)
        kb.change(self.version_choices, [kb, version], version).then(*offer)
        version.focus(self.version_choices, [kb, version], version)
        version.input(*offer)
        self.offer_button.click(self.take_offer, [self.offered, kb, version],
                                [self.offer_button, self.offered, self.offer_note])
        chatbot.like(self.like, ids, None)
        chatbot.clear(self.new_chat, None, chat_out)
        self.new.click(self.new_chat, None, chat_out)
        self.conversations.input(self.open_conversation, self.conversations, shown)
        self.delete.click(self.delete_chat, session, shown)
        kb.focus(self.kb_choices, kb, kb)


def chosen_versions(value: str | None):
    """The version selector's value as the chat's version choice: None for the project's (the Copilot reads
    `project.path`), the newest, every version, or one library at one version."""
    from indexes.versions import VersionChoice

    if not value or value == PROJECT:
        return None
    if value in (NEWEST, EVERY):
        return VersionChoice.parse(value)
    library, _, version = value.partition("==")
    return VersionChoice.parse(version, library)


def version_options(index, kbs: list[str]) -> list[tuple[str, str, str]]:
    """(label, library, version) of each version indexed in these KBs, for the libraries held at several."""
    from indexes.versions import choices

    several = {lib for kb in kbs if index.catalog.kb(kb) is not None for lib in index.side_by_side(kb)}
    return [c for c in choices(index.catalog, kbs) if c[1] in several]


def browser_secret(cfg) -> str:
    """The key the browser's saved conversation id is encrypted with, kept in the data dir so it
    survives a server restart (a fresh one per start would forget every browser's conversation)."""
    path = Path(cfg.data_dir) / "browser-state.key"
    try:
        return path.read_text(encoding="utf-8").strip() or _new_secret(path)
    except OSError:
        return _new_secret(path)


def _new_secret(path: Path) -> str:
    key = secrets.token_urlsafe(24)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(key, encoding="utf-8")
        path.chmod(0o600)
    except OSError:
        log.warning("could not keep the browser key in %s; reloads after a restart start a new chat", path)
    return key


def _unfit_sentence(message: str) -> str:
    return f"That message holds {unfit(message)}, which is not text; type it again without it."


def _short(title: str, width: int = 60) -> str:
    title = " ".join(title.split())
    return title if len(title) <= width else title[:width - 1] + "…"


def _notice(ev, avatar_of) -> str:
    text = render.notice_message(ev.text, error=ev.type == "error")
    return f"{render.speaker_line(ev.assistant, avatar_of(ev.assistant))}\n\n{text}" if ev.assistant else text


def _text_of(content) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(c.get("text", "") for c in content if isinstance(c, dict))
    if isinstance(content, dict):
        return content.get("text", "")
    return ""


def _one_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else f"Something went wrong ({type(e).__name__}); try again."
