"""The Gradio app: Chat, Knowledge and Usage tabs over a Copilot.

No retrieval or routing here: the chat tab renders the events `Copilot.chat` yields, the
knowledge tab calls `indexes.build.ingest`, the usage tab shows `Copilot.usage()`.
"""
from __future__ import annotations

import logging
import time

import gradio as gr

from ui import knowledge, render

log = logging.getLogger("devcopilot.ui")

EXAMPLES = [
    "Hello! Who can help me here?",
    "How do I get started?",
    "@Coding where is the command line defined?",
    "@Tutoring how do I add a source and re-index?",
]

CSS = """
.dc-speaker { display: inline-flex; align-items: center; gap: .35em; font-size: .95em; }
.dc-speaker img.dc-avatar { border-radius: 50%; vertical-align: middle; }
.dc-notice { opacity: .8; font-style: italic; }
#dc-team .dc-row { margin: .2em 0; }
footer { display: none !important; }
"""

STREAM_INTERVAL_S = 0.05  # at most ~20 screen updates a second while tokens arrive


def build_app(copilot, cfg=None) -> gr.Blocks:
    cfg = cfg or getattr(copilot, "cfg", None) or copilot.index.cfg
    avatars = {a.name: a.avatar for a in copilot.assistants}
    max_chars = _max_message_chars(cfg)

    def avatar_of(name: str) -> str:
        return avatars.get(name, "🤖")

    # -- chat --------------------------------------------------------------------------
    def ensure_session(session_id):
        return session_id or copilot.new_session()

    def run_chat(message: str, history: list, ids: list, session_id: str):
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
            for ev in copilot.chat(message, session_id):
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

    def submit(message: str, history: list, ids: list, session_id: str):
        session_id = ensure_session(session_id)
        message = (message or "").strip()
        if not message:
            yield history, ids, session_id, ""
            return
        if max_chars and len(message) > max_chars:
            gr.Warning(f"That message is {len(message):,} characters; the limit is {max_chars:,}. Shorten it.")
            yield history, ids, session_id, message
            return
        for h, i in run_chat(message, history, ids, session_id):
            yield h, i, session_id, ""

    def retry(history: list, ids: list, session_id: str, data: gr.RetryData):
        session_id = ensure_session(session_id)
        idx = data.index if isinstance(data.index, int) else data.index[0]
        message = _text_of(history[idx]["content"]) if idx < len(history) else ""
        if not message:
            yield history, ids, session_id
            return
        for h, i in run_chat(message, history[:idx], ids[:idx], session_id):
            yield h, i, session_id

    def new_chat():
        return [], [], copilot.new_session(), ""

    def like(ids: list, data: gr.LikeData):
        idx = data.index if isinstance(data.index, int) else data.index[0]
        message_id = ids[idx] if ids and idx < len(ids) else ""
        if not message_id:
            return
        up = data.liked is True or data.liked == "Like"
        if data.liked in (False, True, "Like", "Dislike"):
            copilot.feedback(message_id, up)

    # -- knowledge ------------------------------------------------------------------------
    roots = knowledge.allowed_roots(cfg)

    def kb_table():
        rows = knowledge.kb_rows(copilot.index)
        return [[r.name, r.files, r.chunks, r.sources, r.last_indexed, r.embedding, r.note] for r in rows]

    def refresh_knowledge():
        return kb_table(), knowledge.source_rows(copilot.index)

    def add_source(spec: str, kb: str, progress=gr.Progress()):
        try:
            kb = knowledge.check_kb(kb)
            spec = knowledge.check_source(spec, roots)
            summary = _ingest(copilot.index, [spec], kb, progress)
            msg = f"✅ Indexed. {summary.line()}"
        except Exception as e:
            msg = f"❌ {_user_error(e)}"
        return msg, *refresh_knowledge()

    def reindex(kb: str, progress=gr.Progress()):
        try:
            kb = knowledge.check_kb(kb)
            specs = [s["spec"] for s in copilot.index.catalog.sources(kb)]
            if not specs:
                raise knowledge.SourceRefused(f"Knowledge base '{kb}' has no sources yet; add one first.")
            summary = _ingest(copilot.index, specs, kb, progress)
            msg = f"✅ Re-indexed. {summary.line()}"
        except Exception as e:
            msg = f"❌ {_user_error(e)}"
        return msg, *refresh_knowledge()

    # -- usage ---------------------------------------------------------------------------
    def usage():
        try:
            data = copilot.usage()
        except Exception as e:
            return f"❌ {_user_error(e)}", {}
        return render_usage(data), data

    # -- layout ---------------------------------------------------------------------------
    with gr.Blocks(title="devcopilot", analytics_enabled=False) as demo:
        session = gr.State(None)
        message_ids = gr.State([])
        gr.Markdown("## devcopilot\nAsk about the indexed docs and code. "
                    "Mention **@Name** to ask a specialist directly.")
        with gr.Tabs():
            with gr.Tab("Chat", id="chat"), gr.Row():
                with gr.Column(scale=4):
                    chatbot = gr.Chatbot(
                        label="Group chat", elem_id="dc-chat", height=560, group_consecutive_messages=False,
                        feedback_options=("Like", "Dislike"), buttons=["copy"], layout="bubble",
                        placeholder="Ask a question about the docs or the code.")
                    with gr.Row():
                        box = gr.Textbox(placeholder="Ask a question, or @Coding / @Tutoring …",
                                         show_label=False, scale=6, elem_id="dc-input", autofocus=True,
                                         max_lines=8)
                        send = gr.Button("Send", variant="primary", scale=1, elem_id="dc-send")
                    with gr.Row():
                        clear = gr.Button("New chat", size="sm", elem_id="dc-clear")
                    gr.Examples(EXAMPLES, inputs=box, label="Examples")
                with gr.Column(scale=1, elem_id="dc-team"):
                    gr.Markdown("### Who is here\n" + "\n".join(
                        f"- {render.avatar_html(a.name, a.avatar)} **{a.name}**: {a.description}"
                        for a in copilot.assistants))
            with gr.Tab("Knowledge", id="knowledge"):
                gr.Markdown("Knowledge bases the assistants answer from. Add a folder (under "
                            + ", ".join(f"`{r}`" for r in roots) + "), a git URL, or `pkg:NAME`, then index it; "
                            "only what changed is re-embedded. The assistants read knowledge base "
                            f"`{cfg.chat.kb}` unless an assistant names its own `kbs` in the configuration.")
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
                    refresh = gr.Button("Refresh", size="sm", elem_id="dc-refresh")
                status = gr.Markdown(elem_id="dc-index-status")
                srcs = gr.Dataframe(headers=["KB", "source", "kind", "indexed from", "files", "chunks", "last indexed"],
                                    value=lambda: knowledge.source_rows(copilot.index), interactive=False,
                                    elem_id="dc-sources", label="Sources")
            with gr.Tab("Usage", id="usage") as usage_tab:
                usage_md = gr.Markdown(elem_id="dc-usage")
                with gr.Accordion("Raw figures", open=False):
                    usage_json = gr.JSON(show_label=False)
                usage_btn = gr.Button("Refresh", size="sm", elem_id="dc-usage-refresh")

        demo.load(ensure_session, session, session)
        # Chats from different browsers run side by side (Gradio's default is one at a time per event);
        # indexing keeps the default, so two re-indexes never run at once.
        send_args = dict(fn=submit, inputs=[box, chatbot, message_ids, session],
                         outputs=[chatbot, message_ids, session, box], concurrency_limit=None)
        box.submit(**send_args)
        send.click(**send_args)
        chatbot.retry(retry, [chatbot, message_ids, session], [chatbot, message_ids, session],
                      concurrency_limit=None)
        chatbot.like(like, message_ids, None)
        chatbot.clear(new_chat, None, [chatbot, message_ids, session, box])
        clear.click(new_chat, None, [chatbot, message_ids, session, box])
        add.click(add_source, [spec, kb_name], [status, kbs, srcs], show_progress_on=[status],
                  concurrency_id="ingest")
        again.click(reindex, [kb_name], [status, kbs, srcs], show_progress_on=[status],
                  concurrency_id="ingest")
        refresh.click(refresh_knowledge, None, [kbs, srcs])
        usage_btn.click(usage, None, [usage_md, usage_json])
        usage_tab.select(usage, None, [usage_md, usage_json])
    return demo


def _ingest(index, specs: list[str], kb: str, progress):
    from indexes.build import ingest

    labels = {"scan": "Scanning files", "index": "Chunking and embedding", "lexical": "Building the lexical index"}

    def report(stage: str, done: int, total: int) -> None:
        progress((done, total or None), desc=labels.get(stage, stage), unit="files")

    progress(0, desc="Resolving sources")
    return ingest(index, specs, kb, progress=report)


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
    """The monitor's figures as Markdown: scalars as a list, tables of dicts as tables."""
    if not data:
        return "No usage recorded yet."
    lines: list[str] = []
    budget = data.get("budget") if isinstance(data.get("budget"), dict) else {}
    if budget.get("message"):
        lines += [f"**⚠️ {budget['message']}**", ""]
    scalars = {k: v for k, v in data.items() if not isinstance(v, (dict, list))}
    for k, v in scalars.items():
        lines.append(f"- **{k.replace('_', ' ')}**: {_fmt(v)}")
    for k, v in data.items():
        if isinstance(v, dict) and v:
            lines += ["", f"#### {k.replace('_', ' ').capitalize()}", ""]
            if all(isinstance(x, dict) for x in v.values()):
                cols = sorted({c for x in v.values() for c in x})
                lines.append("| | " + " | ".join(c.replace("_", " ") for c in cols) + " |")
                lines.append("|---|" + "---|" * len(cols))
                for name, row in v.items():
                    lines.append(f"| {name} | " + " | ".join(_fmt(row.get(c, "")) for c in cols) + " |")
            else:
                lines += [f"- {name.replace('_', ' ')}: {_fmt(x)}" for name, x in v.items() if x != ""]
        elif isinstance(v, list) and v:
            lines += ["", f"#### {k.replace('_', ' ').capitalize()}", ""] + [f"- {_fmt(x)}" for x in v]
    return "\n".join(lines)


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:,.4f}".rstrip("0").rstrip(".")
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)
