"""The web app's Knowledge tab: the knowledge bases and their sources, adding a source, re-indexing,
with a progress bar, the time left and a cancel button.

What the browser may index is decided by ui/knowledge.py; the indexing runs as a job it can watch and
cancel (ui/indexing.py).
"""
from __future__ import annotations

import logging

import gradio as gr

from ui import knowledge
from ui.indexing import IndexJob, Jobs, progress_html, summary_markdown

log = logging.getLogger("devcopilot.ui")

POLL_S = 0.5  # how often the tab redraws a running job's progress


class KnowledgeTab:
    """The Knowledge tab's components and handlers; `layout()` builds it inside a `gr.Tab`."""

    def __init__(self, copilot, cfg, kb_choices):
        self.copilot = copilot
        self.roots = knowledge.allowed_roots(cfg)
        self.jobs = Jobs()
        self.kb_choices = kb_choices  # the Chat tab's selector learns of a KB indexed here

    def kb_table(self):
        rows = knowledge.kb_rows(self.copilot.index)
        return [[r.name, r.files, r.chunks, r.sources, r.last_indexed, r.embedding, r.note] for r in rows]

    def source_table(self):
        return knowledge.source_rows(self.copilot.index)

    def refresh(self):
        return self.kb_table(), self.source_table()

    def busy(self, job: IndexJob):
        """Outputs while a job runs: the bar, the buttons off, cancel on, polling on."""
        return ("", progress_html(job), gr.update(interactive=False), gr.update(interactive=False),
                gr.update(visible=True, interactive=not job.cancel_requested.is_set()), gr.Timer(active=True))

    def idle(self, message: str):
        return (message, "", gr.update(interactive=True), gr.update(interactive=True),
                gr.update(visible=False), gr.Timer(active=False))

    def start(self, specs: list[str], kb: str, verb: str):
        job = IndexJob(kb, specs, verb)
        index = self.copilot.index

        def work(job: IndexJob):
            from indexes.build import ingest

            return ingest(index, job.specs, job.kb, progress=job.progress, cancel=job.cancel_requested.is_set)

        other = self.jobs.start(job, work, user_error)
        if other is not None:
            return self.idle(f"❌ {other.verb} into '{other.kb}' is running; wait for it, or cancel it, then try "
                             "again.")
        return self.busy(job)

    def add_source(self, spec: str, kb: str):
        try:
            kb = knowledge.check_kb(kb)
            spec = knowledge.check_source(spec, self.roots)
        except Exception as e:
            return self.idle(f"❌ {user_error(e)}")
        return self.start([spec], kb, "Indexing")

    def reindex(self, kb: str):
        try:
            kb = knowledge.check_kb(kb)
            specs = [s["spec"] for s in self.copilot.index.catalog.sources(kb)]
            if not specs:
                raise knowledge.SourceRefused(f"Knowledge base '{kb}' has no sources yet; add one first.")
        except Exception as e:
            return self.idle(f"❌ {user_error(e)}")
        return self.start(specs, kb, "Re-indexing")

    def poll(self, current_kb: str | None):
        job = self.jobs.current
        if job is not None and job.running:
            return (*self.busy(job), gr.update(), gr.update(), gr.update())
        if job is None:
            return (*self.idle(""), gr.update(), gr.update(), gr.update())
        self.jobs.current = None  # shown once
        return (*self.idle(summary_markdown(job.summary, job.error)), *self.refresh(), self.kb_choices(current_kb))

    def cancel_job(self):
        job = self.jobs.running()
        if job is not None:
            job.cancel()
        return gr.update(interactive=False)

    def layout(self) -> None:
        """The tab's components (inside the caller's `gr.Tab`); `wire(tab, kb_select)` connects them."""
        gr.Markdown("Knowledge bases the assistants answer from: the chat reads every one (the selector "
                    "above the chat narrows it to one; an assistant with its own `kbs` reads only those). "
                    "Add a folder (under " + ", ".join(f"`{r}`" for r in self.roots) + "), a git URL, or "
                    "`pkg:NAME`; only what changed is re-embedded. A new knowledge base is used by the "
                    "next message.")
        self.kbs = gr.Dataframe(headers=["KB", "files", "chunks", "sources", "last indexed", "embedding", "note"],
                                value=self.kb_table, interactive=False, elem_id="dc-kbs", label="Knowledge bases")
        with gr.Row():
            self.spec = gr.Textbox(label="Source", placeholder="/path/to/docs, https://github.com/o/r.git "
                                   "or pkg:NAME", scale=4, elem_id="dc-source")
            self.kb_name = gr.Textbox(label="Knowledge base", value="default", scale=1, elem_id="dc-kb")
        with gr.Row():
            self.add = gr.Button("Add and index", variant="primary", elem_id="dc-add")
            self.again = gr.Button("Re-index knowledge base", elem_id="dc-reindex")
            self.cancel = gr.Button("Cancel", variant="stop", visible=False, elem_id="dc-cancel")
            self.refresh_btn = gr.Button("Refresh", size="sm", elem_id="dc-refresh")
        self.progress = gr.HTML(elem_id="dc-index-progress")
        self.status = gr.Markdown(elem_id="dc-index-status")
        self.srcs = gr.Dataframe(headers=["KB", "source", "kind", "indexed from", "files", "chunks", "last indexed"],
                                 value=self.source_table, interactive=False, elem_id="dc-sources", label="Sources")
        self.ticker = gr.Timer(POLL_S, active=False)

    def wire(self, tab: gr.Tab, kb_select: gr.Dropdown) -> None:
        out = [self.status, self.progress, self.add, self.again, self.cancel, self.ticker]
        self.add.click(self.add_source, [self.spec, self.kb_name], out)
        self.again.click(self.reindex, [self.kb_name], out)
        self.cancel.click(self.cancel_job, None, self.cancel, queue=False)
        self.ticker.tick(self.poll, kb_select, [*out, self.kbs, self.srcs, kb_select], concurrency_limit=None,
                         show_progress="hidden")
        tab.select(self.poll, kb_select, [*out, self.kbs, self.srcs, kb_select])
        self.refresh_btn.click(self.refresh, None, [self.kbs, self.srcs])


def user_error(e: BaseException) -> str:
    """One sentence for the page; anything unexpected is logged with its traceback, not shown."""
    from ingest.sources import SourceError

    if isinstance(e, (knowledge.SourceRefused, SourceError, ValueError, OSError, RuntimeError)):
        if not isinstance(e, (knowledge.SourceRefused, SourceError)):
            log.warning("knowledge action failed: %s", e)
        return _one_line(e)
    log.exception("knowledge action failed")
    return f"That did not work ({type(e).__name__}); the server log has the details."


def _one_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else f"Something went wrong ({type(e).__name__}); try again."
