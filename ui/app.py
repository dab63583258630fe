"""The Gradio app: the Chat, Knowledge and Usage tabs (ui/chat_tab.py, ui/knowledge_tab.py,
ui/usage_tab.py) over a Copilot, with the page's style and script.
"""
from __future__ import annotations

import gradio as gr

from indexes.jobs import Jobs
from ui.chat_tab import EXAMPLES, ChatTab  # noqa: F401 (EXAMPLES: the chat's examples, read by tests)
from ui.knowledge_tab import KnowledgeTab
from ui.usage_tab import UsageTab

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
/* The bar offering to index a pinned version takes no room until it offers something. */
#dc-offer-bar:not(:has(button)):not(:has(.md:not(:empty))) { display: none; }
.dc-progress { margin: .4em 0 .2em; }
.dc-progress-label { font-size: .9em; margin-bottom: .3em; }
.dc-progress-track { height: 14px; border-radius: 7px; background: var(--neutral-200, #e5e7eb); overflow: hidden; }
.dc-progress-fill { height: 100%; background: var(--color-accent, #f97316); transition: width .4s ease; }
/* A narrow screen: the chat first, the conversations under it. */
@media (max-width: 800px) {
  #dc-chat { height: calc(100dvh - 330px) !important; }
  #dc-team { display: none; }
  #dc-sidebar { order: 2; max-height: none; }
  /* Send beside the box, small: the box keeps the row's width for the question. */
  #dc-send { min-width: 72px !important; }
  /* The usage chart keeps a size its labels can be read at, and scrolls sideways. */
  #dc-usage-chart { overflow-x: auto !important; }
  #dc-usage-chart .matplotlib { align-items: flex-start; }
  #dc-usage-chart img { width: 720px; max-width: none; }
  /* The findings table keeps its columns' room (a word per column, not a letter per line), and scrolls. */
  #dc-drift .table-container { min-width: 960px; }
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


def build_app(copilot, cfg=None, jobs: Jobs | None = None) -> gr.Blocks:
    """The web app; its Knowledge tab submits to `jobs`, the server's index job queue (one made here when
    none is given)."""
    cfg = cfg or getattr(copilot, "cfg", None) or copilot.index.cfg
    chat = ChatTab(copilot, cfg)
    knowledge = KnowledgeTab(copilot, cfg, chat.kb_choices, jobs if jobs is not None else Jobs(copilot.index))
    chat.index_version = knowledge.index_version  # the chat's offer to index a pinned version goes to the queue
    usage = UsageTab(copilot)
    with gr.Blocks(title="devcopilot", analytics_enabled=False, fill_width=True) as demo:
        chat.states()
        gr.HTML('<div id="dc-title"><strong>devcopilot</strong> <span>a copilot for the indexed docs and code'
                '</span></div>', elem_id="dc-header", padding=False)
        with gr.Tabs():
            with gr.Tab("Chat", id="chat"):
                chat.layout()
            with gr.Tab("Knowledge", id="knowledge") as knowledge_tab:
                knowledge.layout()
            with gr.Tab("Usage", id="usage") as usage_tab:
                usage.layout()
        chat.wire(demo)
        knowledge.wire(knowledge_tab, chat.kb_select)
        usage.wire(usage_tab)
    return demo
