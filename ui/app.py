"""The Gradio app: Chat, Knowledge and Usage tabs over a Copilot.

No retrieval or routing here: the chat tab renders the events `Copilot.chat` yields and the
conversations the Copilot keeps, the knowledge tab runs `indexes.build.ingest` as a job it can
watch and cancel (ui/indexing.py), the usage tab draws `Copilot.usage()` (ui/charts.py).
"""
from __future__ import annotations

import base64
import logging
import secrets
import tempfile
import time
from pathlib import Path

import gradio as gr

from copilot.chat import store_failed
from ui import charts, knowledge, render
from ui.indexing import IndexJob, Jobs, progress_html, summary_markdown

log = logging.getLogger("devcopilot.ui")

# Each one sends when clicked, and each answers from this repository on a first `make run`.
EXAMPLES = [
    "Hello! Who can help me here?",
    "How do I get started?",
    "@Coding where is the command line defined?",
    "@Tutoring how do I add a source and re-index?",
]

ALL_KBS = "All knowledge bases"

CSS = """
.dc-speaker { display: inline-flex; align-items: center; gap: .35em; font-size: .95em; }
.dc-speaker img.dc-avatar { border-radius: 50%; vertical-align: middle; }
.dc-notice { opacity: .8; font-style: italic; }
.dc-kb { font-size: .8em; opacity: .75; white-space: nowrap; }
footer { display: none !important; }
/* The chat takes the window's height and follows it; the page itself does not scroll. */
#dc-chat { height: calc(100dvh - 255px) !important; min-height: 320px; }
/* Code wraps instead of scrolling sideways. */
#dc-chat pre, #dc-chat pre code { white-space: pre-wrap !important; overflow-wrap: anywhere; word-break: normal; }
#dc-chat .message-wrap .message { max-width: 100%; }
#dc-sidebar { max-height: calc(100dvh - 150px); overflow-y: auto; }
#dc-conversations label { width: 100%; }
#dc-conversations .wrap { flex-direction: column; gap: 2px; }
#dc-conversations input[type=radio] { display: none; }
#dc-conversations label span { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; display: block; }
#dc-title { font-size: 1.05em; padding: .2em 0 0; }
#dc-title span { opacity: .7; margin-left: .5em; font-size: .9em; }
#dc-chat-bar { align-items: center; gap: .8em; }
#dc-team { font-size: .85em; opacity: .85; flex-grow: 3 !important; white-space: nowrap; overflow: hidden;
           text-overflow: ellipsis; }
#dc-team p { margin: 0; }
.dc-progress { margin: .4em 0 .2em; }
.dc-progress-label { font-size: .9em; margin-bottom: .3em; }
.dc-progress-track { height: 14px; border-radius: 7px; background: var(--neutral-200, #e5e7eb); overflow: hidden; }
.dc-progress-fill { height: 100%; background: var(--color-accent, #f97316); transition: width .4s ease; }
/* A narrow screen: the chat first, the conversations under it. */
@media (max-width: 800px) {
  #dc-chat { height: calc(100dvh - 330px) !important; }
  #dc-team { display: none; }
  #dc-sidebar { order: 2; max-height: none; }
}
"""

# The chat is as tall as the window leaves room for (measured, so a wrapped line above it or a
# smaller window still leaves the input in view), and follows the window's size. And it scrolls to
# the start of each new answer (not to the bottom while it streams): when a speaker line appears in
# the chat, its message is brought to the top of the chat's scrolling area.
HEAD = """
<script>
(() => {
  const fit = () => {
    const chat = document.querySelector('#dc-chat'), input = document.querySelector('#dc-input');
    if (!chat || !input || !chat.offsetParent) return;
    const row = input.closest('.row') || input.parentElement;
    const top = chat.getBoundingClientRect().top + window.scrollY;
    const h = Math.max(300, Math.floor(window.innerHeight - top - row.getBoundingClientRect().height - 36));
    if (Math.abs(chat.getBoundingClientRect().height - h) > 2) chat.style.setProperty('height', h + 'px', 'important');
  };
  let pending = false;
  const soon = () => { if (!pending) { pending = true; requestAnimationFrame(() => { pending = false; fit(); }); } };
  window.addEventListener('resize', soon);
  const seen = new WeakSet();
  const scroller = el => {
    for (let p = el.parentElement; p; p = p.parentElement) {
      const s = getComputedStyle(p);
      if (/(auto|scroll)/.test(s.overflowY) && p.scrollHeight > p.clientHeight) return p;
    }
    return null;
  };
  const check = () => {
    const chat = document.querySelector('#dc-chat'); if (!chat) return;
    const speakers = [...chat.querySelectorAll('.dc-speaker')];
    const fresh = speakers.filter(s => !seen.has(s)); fresh.forEach(s => seen.add(s));
    if (!fresh.length) return;
    const last = fresh[fresh.length - 1];
    const msg = last.closest('.message-row') || last.closest('.message') || last;
    const box = scroller(msg); if (!box) return;
    box.scrollTop += msg.getBoundingClientRect().top - box.getBoundingClientRect().top - 8;
  };
  new MutationObserver(() => { check(); soon(); }).observe(document.documentElement, {childList: true, subtree: true});
})();
</script>
"""

STREAM_INTERVAL_S = 0.05  # at most ~20 screen updates a second while tokens arrive
POLL_S = 0.5  # how often the Knowledge tab redraws a running job's progress


def build_app(copilot, cfg=None) -> gr.Blocks:
    cfg = cfg or getattr(copilot, "cfg", None) or copilot.index.cfg
    avatars = {a.name: a.avatar for a in copilot.assistants}
    max_chars = _max_message_chars(cfg)
    jobs = Jobs()
    downloads = Path(tempfile.mkdtemp(prefix="devcopilot-ui-"))

    def avatar_of(name: str) -> str:
        return avatars.get(name, "🤖")

    # -- conversations ---------------------------------------------------------------
    def conversation_choices(user: str) -> list[tuple[str, str]]:
        try:
            return [(_short(c["title"]), c["id"]) for c in copilot.conversations.listing(owner=user)]
        except Exception:  # the conversation store is out of reach (a shared database down): the chat goes on
            store_failed("could not list the conversations")
            return []

    def sidebar(user: str, current: str | None):
        choices = conversation_choices(user)
        return gr.update(choices=choices, value=current if any(c[1] == current for c in choices) else None)

    def owned(cid: str | None, user: str) -> bool:
        try:
            return bool(cid) and copilot.conversations.owner_of(cid) == user
        except Exception:  # cannot be checked while the store is out of reach: a new conversation then
            store_failed("could not read the conversation's owner")
            return False

    def open_conversation(cid: str | None, request: gr.Request):
        """Show a stored conversation, with its sources, or an empty chat."""
        user = user_of(request)
        if not owned(cid, user):
            return [], [], None, None, sidebar(user, None)
        history, ids = render.history(copilot.conversations.messages(cid), avatar_of)
        return history, ids, cid, cid, sidebar(user, cid)

    def restore_conversation(cid: str | None, request: gr.Request):
        """On page load: the browser's last conversation. With none, the chat is left as it is: it
        starts empty, and a question asked (or an example clicked) before this answer arrives must not
        be wiped by it."""
        if not owned(cid, user_of(request)):
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), sidebar(user_of(request), None)
        return open_conversation(cid, request)

    def new_chat(request: gr.Request):
        return [], [], None, None, sidebar(user_of(request), None), "", gr.update(interactive=True)

    def delete_chat(cid: str | None, request: gr.Request):
        user = user_of(request)
        if owned(cid, user):
            copilot.conversations.delete(cid)
        return [], [], None, None, sidebar(user, None)

    # -- chat --------------------------------------------------------------------------
    def run_chat(message: str, history: list, ids: list, session_id: str, kb: str):
        """Stream one user turn: yields (history, ids) as events arrive."""
        history = list(history or [])
        ids = list(ids or [])
        history.append({"role": "user", "content": message})
        ids.append("")
        yield history, ids
        current = None  # index in history of the answer being streamed
        parts: dict = {}
        last = 0.0
        try:
            for ev in copilot.chat(message, session_id, kb=kb or None):
                if ev.type == "start":
                    parts = {"name": ev.assistant, "text": "", "sources": []}
                    history.append({"role": "assistant",
                                    "content": render.assistant_message(ev.assistant, avatar_of(ev.assistant), "",
                                                                        streaming=True)})
                    ids.append(ev.message_id or "")
                    current = len(history) - 1
                elif ev.type == "token" and current is not None:
                    parts["text"] += ev.text
                elif ev.type == "sources" and current is not None:
                    parts["sources"] = list(ev.sources)
                elif ev.type == "end" and current is not None:
                    parts["text"] = ev.text or parts["text"]
                    parts["sources"] = list(ev.sources) or parts["sources"]
                    if ev.message_id:
                        ids[current] = ev.message_id
                elif ev.type in ("notice", "error"):
                    history.append({"role": "assistant", "content": _notice(ev, avatar_of)})
                    ids.append(ev.message_id or "")
                    yield history, ids
                    continue
                if current is not None and parts:
                    history[current] = {"role": "assistant", "content": render.assistant_message(
                        parts["name"], avatar_of(parts["name"]), parts["text"], parts["sources"],
                        streaming=ev.type != "end")}
                    now = time.monotonic()
                    if ev.type != "token" or now - last >= STREAM_INTERVAL_S:
                        last = now
                        yield history, ids
                if ev.type == "end":
                    current, parts = None, {}
        except Exception as e:  # the chat never dies in the browser: one sentence, details in the log
            log.exception("chat failed")
            history.append({"role": "assistant", "content": render.notice_message(_one_line(e), error=True)})
            ids.append("")
        yield history, ids

    def submit(message: str, history: list, ids: list, session_id: str | None, kb: str, request: gr.Request):
        """Answer one message; the conversation is created on the first one and listed in the sidebar."""
        user = user_of(request)
        message = (message or "").strip()
        if not message:
            yield history, ids, session_id, session_id, gr.update(), "", gr.update()
            return
        if max_chars and len(message) > max_chars:
            gr.Warning(f"That message is {len(message):,} characters; the limit is {max_chars:,}. Shorten it.")
            yield history, ids, session_id, session_id, gr.update(), message, gr.update()
            return
        if not owned(session_id, user):
            session_id = copilot.new_session(owner=user, origin="web")
        listed = False
        for h, i in run_chat(message, history, ids, session_id, kb):
            # Listed (titled by its first question) as soon as it holds the question; Send is off meanwhile.
            side = gr.update()
            if not listed and len(h) > len(history or []) + 1:
                side, listed = sidebar(user, session_id), True
            yield h, i, session_id, session_id, side, "", gr.update(interactive=False)
        yield h, i, session_id, session_id, sidebar(user, session_id), "", gr.update(interactive=True)

    def send_example(history: list, ids: list, session_id: str | None, kb: str, data: gr.SelectData,
                     request: gr.Request):
        value = data.value if isinstance(data.value, str) else (data.value or {}).get("text", "")
        yield from submit(value, history, ids, session_id, kb, request)

    def retry(history: list, ids: list, session_id: str | None, kb: str, data: gr.RetryData, request: gr.Request):
        user = user_of(request)
        idx = data.index if isinstance(data.index, int) else data.index[0]
        message = _text_of(history[idx]["content"]) if idx < len(history) else ""
        if not message:
            yield history, ids, session_id
            return
        if not owned(session_id, user):
            session_id = copilot.new_session(owner=user, origin="web")
        for h, i in run_chat(message, history[:idx], ids[:idx], session_id, kb):
            yield h, i, session_id

    def like(ids: list, data: gr.LikeData):
        idx = data.index if isinstance(data.index, int) else data.index[0]
        message_id = ids[idx] if ids and idx < len(ids) else ""
        if not message_id:
            return
        up = data.liked is True or data.liked == "Like"
        if data.liked in (False, True, "Like", "Dislike"):
            copilot.feedback(message_id, up)

    def kb_choices(current: str | None = None):
        names = [info.name for info in copilot.index.catalog.kbs()]
        value = current if current in names else ""
        return gr.update(choices=[(ALL_KBS, "")] + [(n, n) for n in names], value=value)

    # -- knowledge ------------------------------------------------------------------------
    roots = knowledge.allowed_roots(cfg)

    def kb_table():
        rows = knowledge.kb_rows(copilot.index)
        return [[r.name, r.files, r.chunks, r.sources, r.last_indexed, r.embedding, r.note] for r in rows]

    def refresh_knowledge():
        return kb_table(), knowledge.source_rows(copilot.index)

    def busy(job: IndexJob):
        """Outputs while a job runs: the bar, the buttons off, cancel on, polling on."""
        return ("", progress_html(job), gr.update(interactive=False), gr.update(interactive=False),
                gr.update(visible=True, interactive=not job.cancel_requested.is_set()), gr.Timer(active=True))

    def idle(message: str):
        return (message, "", gr.update(interactive=True), gr.update(interactive=True),
                gr.update(visible=False), gr.Timer(active=False))

    def start(specs: list[str], kb: str, verb: str):
        job = IndexJob(kb, specs, verb)

        def work(job: IndexJob):
            from indexes.build import ingest

            return ingest(copilot.index, job.specs, job.kb, progress=job.progress, cancel=job.cancel_requested.is_set)

        other = jobs.start(job, work, _user_error)
        if other is not None:
            return idle(f"❌ {other.verb} into '{other.kb}' is running; wait for it, or cancel it, then try again.")
        return busy(job)

    def add_source(spec: str, kb: str):
        try:
            kb = knowledge.check_kb(kb)
            spec = knowledge.check_source(spec, roots)
        except Exception as e:
            return idle(f"❌ {_user_error(e)}")
        return start([spec], kb, "Indexing")

    def reindex(kb: str):
        try:
            kb = knowledge.check_kb(kb)
            specs = [s["spec"] for s in copilot.index.catalog.sources(kb)]
            if not specs:
                raise knowledge.SourceRefused(f"Knowledge base '{kb}' has no sources yet; add one first.")
        except Exception as e:
            return idle(f"❌ {_user_error(e)}")
        return start(specs, kb, "Re-indexing")

    def poll(current_kb: str | None):
        job = jobs.current
        if job is not None and job.running:
            return (*busy(job), gr.update(), gr.update(), gr.update())
        if job is None:
            return (*idle(""), gr.update(), gr.update(), gr.update())
        jobs.current = None  # shown once
        return (*idle(summary_markdown(job.summary, job.error)), *refresh_knowledge(), kb_choices(current_kb))

    def cancel_job():
        job = jobs.running()
        if job is not None:
            job.cancel()
        return gr.update(interactive=False)

    # -- usage ---------------------------------------------------------------------------
    def usage():
        try:
            data = copilot.usage()
        except Exception as e:
            return f"❌ {_user_error(e)}", None, [], None, {}
        gaps = [[g["question"], g["asked"], g["dont_know"], g["thumbs_down"], g["last_asked"]] for g in data["gaps"]]
        from copilot.conversations import gaps_csv

        csv_path = downloads / "coverage-gaps.csv"
        csv_path.write_text(gaps_csv(data["gaps"]), encoding="utf-8")
        return render_usage(data), charts.usage_figure(data), gaps, str(csv_path), data

    # -- layout ---------------------------------------------------------------------------
    team = " · ".join(f"{render.avatar_html(a.name, a.avatar)} **{a.name}**" for a in copilot.assistants)
    with gr.Blocks(title="devcopilot", analytics_enabled=False, fill_width=True) as demo:
        browser = gr.BrowserState(None, storage_key="devcopilot-conversation", secret=browser_secret(cfg))
        session = gr.State(None)
        message_ids = gr.State([])
        gr.HTML('<div id="dc-title"><strong>devcopilot</strong> <span>a copilot for the indexed docs and code'
                '</span></div>', elem_id="dc-header", padding=False)
        with gr.Tabs():
            with gr.Tab("Chat", id="chat"), gr.Row(equal_height=False):
                with gr.Column(scale=1, min_width=200, elem_id="dc-sidebar"):
                    new = gr.Button("New chat", size="sm", elem_id="dc-new", variant="primary")
                    conversations = gr.Radio(choices=[], label="Conversations", elem_id="dc-conversations",
                                             container=False)
                    delete = gr.Button("Delete this chat", size="sm", elem_id="dc-delete")
                with gr.Column(scale=5, min_width=320):
                    with gr.Row(elem_id="dc-chat-bar", equal_height=True):
                        kb_select = gr.Dropdown(choices=[(ALL_KBS, "")], value="", label="Knowledge base",
                                                show_label=False, elem_id="dc-kb-select", interactive=True,
                                                container=False, scale=1, min_width=200)
                        gr.Markdown(f"{team} · **@Name** asks one directly", elem_id="dc-team")
                    chatbot = gr.Chatbot(
                        label="Group chat", show_label=False, elem_id="dc-chat", height="calc(100dvh - 255px)",
                        min_height=320, group_consecutive_messages=False, autoscroll=False,
                        feedback_options=("Like", "Dislike"), buttons=["copy"], layout="bubble",
                        placeholder="**Ask about the docs or the code.** Answers cite the files and lines they "
                                    "come from.", examples=[{"text": q} for q in EXAMPLES])
                    with gr.Row():
                        box = gr.Textbox(placeholder="Ask a question, or @Coding / @Tutoring …",
                                         show_label=False, scale=6, elem_id="dc-input", autofocus=True,
                                         max_lines=8)
                        send = gr.Button("Send", variant="primary", scale=1, elem_id="dc-send")
            with gr.Tab("Knowledge", id="knowledge") as knowledge_tab:
                gr.Markdown("Knowledge bases the assistants answer from: the chat reads every one (the selector "
                            "above the chat narrows it to one; an assistant with its own `kbs` reads only those). "
                            "Add a folder (under " + ", ".join(f"`{r}`" for r in roots) + "), a git URL, or "
                            "`pkg:NAME`; only what changed is re-embedded. A new knowledge base is used by the "
                            "next message.")
                kbs = gr.Dataframe(headers=["KB", "files", "chunks", "sources", "last indexed", "embedding",
                                            "note"], value=kb_table, interactive=False, elem_id="dc-kbs",
                                   label="Knowledge bases")
                with gr.Row():
                    spec = gr.Textbox(label="Source", placeholder="/path/to/docs, https://github.com/o/r.git "
                                      "or pkg:NAME", scale=4, elem_id="dc-source")
                    kb_name = gr.Textbox(label="Knowledge base", value="default", scale=1, elem_id="dc-kb")
                with gr.Row():
                    add = gr.Button("Add and index", variant="primary", elem_id="dc-add")
                    again = gr.Button("Re-index knowledge base", elem_id="dc-reindex")
                    cancel = gr.Button("Cancel", variant="stop", visible=False, elem_id="dc-cancel")
                    refresh = gr.Button("Refresh", size="sm", elem_id="dc-refresh")
                progress = gr.HTML(elem_id="dc-index-progress")
                status = gr.Markdown(elem_id="dc-index-status")
                srcs = gr.Dataframe(headers=["KB", "source", "kind", "indexed from", "files", "chunks", "last indexed"],
                                    value=lambda: knowledge.source_rows(copilot.index), interactive=False,
                                    elem_id="dc-sources", label="Sources")
                ticker = gr.Timer(POLL_S, active=False)
            with gr.Tab("Usage", id="usage") as usage_tab:
                usage_md = gr.Markdown(elem_id="dc-usage")
                usage_plot = gr.Plot(elem_id="dc-usage-chart", show_label=False)
                gr.Markdown("#### Coverage gaps\nThe questions most often answered \"I don't know\" or given a "
                            "thumbs-down: the docs that are missing.")
                gaps = gr.Dataframe(headers=["question", "asked", "\"I don't know\"", "thumbs down", "last asked"],
                                    interactive=False, elem_id="dc-gaps", wrap=True)
                with gr.Row():
                    export = gr.DownloadButton("Export gaps as CSV", size="sm", elem_id="dc-gaps-csv")
                    usage_btn = gr.Button("Refresh", size="sm", elem_id="dc-usage-refresh")
                with gr.Accordion("Raw figures", open=False):
                    usage_json = gr.JSON(show_label=False)

        # Chats from different browsers run side by side (Gradio's default is one at a time per event).
        chat_out = [chatbot, message_ids, session, browser, conversations, box, send]
        demo.load(restore_conversation, browser, [chatbot, message_ids, session, browser, conversations]) \
            .then(kb_choices, None, kb_select)
        box.submit(submit, [box, chatbot, message_ids, session, kb_select], chat_out, concurrency_limit=None)
        send.click(submit, [box, chatbot, message_ids, session, kb_select], chat_out, concurrency_limit=None)
        chatbot.example_select(send_example, [chatbot, message_ids, session, kb_select], chat_out,
                               concurrency_limit=None)
        chatbot.retry(retry, [chatbot, message_ids, session, kb_select], [chatbot, message_ids, session],
                      concurrency_limit=None)
        chatbot.like(like, message_ids, None)
        chatbot.clear(new_chat, None, chat_out)
        new.click(new_chat, None, chat_out)
        conversations.input(open_conversation, conversations, [chatbot, message_ids, session, browser, conversations])
        delete.click(delete_chat, session, [chatbot, message_ids, session, browser, conversations])
        kb_select.focus(kb_choices, kb_select, kb_select)

        knowledge_out = [status, progress, add, again, cancel, ticker]
        add.click(add_source, [spec, kb_name], knowledge_out)
        again.click(reindex, [kb_name], knowledge_out)
        cancel.click(cancel_job, None, cancel, queue=False)
        ticker.tick(poll, kb_select, [*knowledge_out, kbs, srcs, kb_select], concurrency_limit=None,
                    show_progress="hidden")
        knowledge_tab.select(poll, kb_select, [*knowledge_out, kbs, srcs, kb_select])
        refresh.click(refresh_knowledge, None, [kbs, srcs])
        usage_out = [usage_md, usage_plot, gaps, export, usage_json]
        usage_btn.click(usage, None, usage_out)
        usage_tab.select(usage, None, usage_out)
    return demo


def user_of(request: gr.Request | None) -> str:
    """The signed-in user (HTTP Basic, checked by the server before the page is served), else ""."""
    header = ""
    if request is not None:
        header = (request.headers or {}).get("authorization", "") if hasattr(request, "headers") else ""
    if not header.lower().startswith("basic "):
        return ""
    try:
        return base64.b64decode(header[6:].strip()).decode("utf-8").partition(":")[0]
    except (ValueError, UnicodeDecodeError):
        return ""


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


def _max_message_chars(cfg) -> int:
    chat = getattr(cfg, "chat", None)
    return int(getattr(chat, "max_message_chars", 0) or 0)


def _one_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else f"Something went wrong ({type(e).__name__}); try again."


def _user_error(e: BaseException) -> str:
    """One sentence for the page; anything unexpected is logged with its traceback, not shown."""
    from ingest.sources import SourceError

    if isinstance(e, (knowledge.SourceRefused, SourceError, ValueError, OSError, RuntimeError)):
        if not isinstance(e, (knowledge.SourceRefused, SourceError)):
            log.warning("knowledge action failed: %s", e)
        return _one_line(e)
    log.exception("knowledge action failed")
    return f"That did not work ({type(e).__name__}); the server log has the details."


def render_usage(data: dict) -> str:
    """The headline figures in a few lines; the charts and the gaps table show the rest."""
    if not data:
        return "No usage recorded yet."
    t = data.get("totals", {})
    budget = data.get("budget") if isinstance(data.get("budget"), dict) else {}
    fb = data.get("feedback", {})
    answers: dict[str, int] = {}
    for row in (data.get("answers_by_day") or {}).values():
        for kind, n in row.items():
            answers[kind] = answers.get(kind, 0) + n
    lines = []
    if budget.get("message"):
        lines += [f"**⚠️ {budget['message']}**", ""]
    lines.append(f"Chat model: {render.md_text(str(data.get('chat_model', '?')))}")
    lines.append(f"Since {data.get('since', '?')}: "
                 f"{_fmt(t.get('calls', 0))} model calls, {_fmt(t.get('input_tokens', 0))} input + "
                 f"{_fmt(t.get('output_tokens', 0))} output tokens, **${data.get('cost_usd', 0):.4f}**"
                 + (f" of a ${budget['limit_usd']:.2f} budget" if budget.get("limit_usd") else ""))
    lines.append(f"Answers: {_fmt(answers.get('model', 0))} written by a model, {_fmt(answers.get('offline', 0))} "
                 f"offline (quoted passages), {_fmt(answers.get('dont_know', 0))} \"I don't know\" · feedback: "
                 f"👍 {_fmt(fb.get('up', 0))} 👎 {_fmt(fb.get('down', 0))}")
    if data.get("unpriced_models"):
        lines.append("No price for: " + ", ".join(data["unpriced_models"]) + " (add them under `[prices]`).")
    return "\n\n".join(lines)


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:,.4f}".rstrip("0").rstrip(".")
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)
