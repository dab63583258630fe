"""The web app's Knowledge tab: the knowledge bases and their sources, adding a source, re-indexing,
with a progress bar, the time left and a cancel button.

What the browser may index is decided by ui/knowledge.py. The indexing runs in the server's one job
queue (indexes/jobs.py), beside the Knowledge API's, the CLI's and the sync schedule's jobs: the tab
draws whatever job the queue runs, whoever asked (ui/indexing.py), queues a second request behind it,
and cancels through the queue.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import gradio as gr

from indexes.jobs import Job, Jobs
from ingest.files import counted
from ui import knowledge
from ui.indexing import JobClock, job_summary, progress_html
from ui.render import md_text
from ui.strings import unfit

log = logging.getLogger("devcopilot.ui")

POLL_S = 0.5  # how often the tab redraws a running job's progress


@dataclass
class Following:
    """What one page follows of the queue (its gr.State): the jobs it started or showed, summed up once
    none is left to run, and the job its bar shows now."""
    jobs: list[str] = field(default_factory=list)
    shown: str = ""


class KnowledgeTab:
    """The Knowledge tab's components and handlers; `layout()` builds it inside a `gr.Tab`."""

    def __init__(self, copilot, cfg, kb_choices, jobs: Jobs):
        self.copilot = copilot
        self.roots = knowledge.allowed_roots(cfg)
        self.outbound = knowledge.outbound_policy(cfg)  # what the server may fetch for the page
        self.jobs = jobs  # the server's queue
        self.clock = JobClock()
        self.kb_choices = kb_choices  # the Chat tab's selector learns of a KB indexed here

    def kb_table(self):
        rows = knowledge.kb_rows(self.copilot.index)
        return [[r.name, r.files, r.chunks, r.sources, self.versions(r.name), r.last_indexed, r.embedding, r.note]
                for r in rows]

    def versions(self, kb: str) -> str:
        """The libraries the KB holds several versions of, and those versions ("" for none)."""
        from indexes.versions import describe_versions

        try:
            return describe_versions(self.copilot.index.catalog, kb)
        except Exception:  # a column of the table must never cost the tab
            log.exception("could not list the versions of %s", kb)
            return ""

    def index_version(self, spec: str, kb: str) -> str:
        """Index a version the chat offers (a pinned version not indexed): into the server's job queue, by the
        same rules as a source added here; what was done, in one sentence."""
        try:
            kb = knowledge.check_kb(kb)
            spec = knowledge.check_source(spec, self.roots)
        except Exception as e:
            return f"❌ {user_error(e)}"
        job = self.jobs.submit("add", kb, [spec], by="ui")
        return (f"⏳ Indexing {spec} into '{kb}' ({job.id}): the Knowledge tab shows its progress; the version "
                "selector lists it once it is done.")

    def source_table(self):
        return knowledge.source_rows(self.copilot.index)

    def refresh(self):
        return self.kb_table(), self.source_table()

    def drift_table(self, kb: str | None = None):
        """Doc passages the last indexing found out of step with the code (indexes/drift.py), of `kb` or of
        every KB: kind, the doc's lines (linked), what differs, the code's lines (linked)."""
        from copilot.links import public_url
        from indexes import drift

        catalog = self.copilot.index.catalog
        names = [kb] if kb and catalog.kb(kb) else [i.name for i in catalog.kbs()]

        def place(text: str, link: str) -> str:  # as is: `__init__.py` is no bold "init.py"
            return f"[{md_text(text)}]({public_url(link)})" if link else md_text(text)

        def doc(f: drift.Finding) -> str:
            return place(f.doc_place, f.doc_link) + (f" ({md_text(f.version_label)})" if f.version else "")

        return [[f.kind, doc(f), f.message, place(f.code_place, f.code_link)]
                for name in names for f in drift.findings(catalog, name)]

    def check_docs(self, kb: str | None = None) -> tuple[list[list[str]], str]:
        """The findings table, and a line saying how many there are: an empty table alone does not tell
        that the check ran."""
        rows = self.drift_table(kb)
        where = f"knowledge base `{kb}`" if kb and self.copilot.index.catalog.kb(kb) else "every knowledge base"
        if not rows:
            return rows, f"✅ No doc passage of {where} is out of step with the code."
        return rows, f"{counted(len(rows), 'finding')} in {where}."

    def queue_now(self) -> tuple[Job | None, list[Job]]:
        """The job the queue runs now (or starts next), and the jobs queued after it."""
        active = self.jobs.active()
        current = next((j for j in active if j.state == "running"), active[0] if active else None)
        return current, [j for j in active if j is not current]

    def show(self, following: Following, current_kb: str | None, note: str | None = None):
        """The tab's outputs for what the queue does now: status, bar, cancel, ticker, what the page follows,
        and the two tables and the chat's KB selector (redrawn once the jobs followed have all ended).
        `note` is said in the status (a refusal, a job queued)."""
        job, queued = self.queue_now()
        if job is not None:
            fresh = job.id != following.shown  # a new job in the bar: what the status said is stale
            status = note if note is not None else ("" if fresh else gr.update())
            jobs = following.jobs if job.id in following.jobs else [*following.jobs, job.id]
            return (status, progress_html(job, self.clock.left(job), queued),
                    gr.update(visible=True, interactive=not job.cancel_requested), gr.Timer(active=True),
                    Following(jobs, job.id), gr.update(), gr.update(), gr.update())
        ended = [j for j in map(self.jobs.get, following.jobs) if j is not None]
        said = "\n\n".join(([note] if note else []) + [job_summary(j) for j in ended])
        idle = (said, "", gr.update(visible=False), gr.Timer(active=False), Following())
        if not following.jobs:
            return (*idle, gr.update(), gr.update(), gr.update())
        return (*idle, *self.refresh(), self.kb_choices(current_kb))

    def submit(self, action: str, kb: str, specs: list[str], following: Following, current_kb: str | None):
        """Hand the job to the queue; behind the job it runs, if any, saying so."""
        ahead, _ = self.queue_now()
        job = self.jobs.submit(action, kb, specs, by="ui")
        note = f"⏳ Queued: {job.describe()} starts when {ahead.describe()} ends." if ahead else ""
        return self.show(Following([*following.jobs, job.id], following.shown), current_kb, note)

    def add_source(self, spec: str, kb: str, following: Following, current_kb: str | None = None):
        try:
            if unfit(spec or ""):  # before any check quotes it back: it could not be shown or stored
                raise knowledge.SourceRefused(f"The source holds {unfit(spec)}, which is not text; type a plain "
                                              "path, git URL or pkg:NAME.")
            kb = knowledge.check_kb(kb)
            spec = knowledge.check_source(spec, self.roots, self.outbound)
        except Exception as e:
            return self.show(following, current_kb, f"❌ {user_error(e)}")
        return self.submit("add", kb, [spec], following, current_kb)

    def reindex(self, kb: str, following: Following, current_kb: str | None = None):
        try:
            kb = knowledge.check_kb(kb)
            if not self.copilot.index.catalog.sources(kb):
                raise knowledge.SourceRefused(f"Knowledge base '{kb}' has no sources yet; add one first.")
        except Exception as e:
            return self.show(following, current_kb, f"❌ {user_error(e)}")
        return self.submit("reindex", kb, [], following, current_kb)

    def poll(self, following: Following, current_kb: str | None):
        return self.show(following, current_kb)

    def cancel_job(self, following: Following):
        """Cancel the job this page's bar shows, through the queue (also while it waits for the writer lock)."""
        if following.shown:
            self.jobs.cancel(following.shown)
        return gr.update(interactive=False)

    def layout(self) -> None:
        """The tab's components (inside the caller's `gr.Tab`); `wire(tab, kb_select)` connects them."""
        gr.Markdown("Knowledge bases the assistants answer from: the chat reads every one (the selector "
                    "above the chat narrows it to one; an assistant with its own `kbs` reads only those). "
                    "Add a folder (under " + ", ".join(f"`{r}`" for r in self.roots) + "), a git URL (at a tag, "
                    "branch or commit: `URL#v1.2.0`), `pkg:NAME`, or a release: `pypi:NAME==VERSION`, "
                    "`npm:NAME@VERSION` (versions of one library live side by side); only what changed is "
                    "re-embedded. A new knowledge base is used by the "
                    "next message.")
        self.kbs = gr.Dataframe(headers=["KB", "files", "chunks", "sources", "versions", "last indexed", "embedding",
                                         "note"],
                                value=self.kb_table, interactive=False, elem_id="dc-kbs", label="Knowledge bases")
        with gr.Row():
            self.spec = gr.Textbox(label="Source", placeholder="/path/to/docs, https://github.com/o/r.git, "
                                   "pkg:NAME or pypi:NAME==VERSION", scale=4, elem_id="dc-source",
                                   min_width=300)  # on a phone: a row of its own, not a sliver beside the KB
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
        with gr.Accordion("Docs out of step with the code", open=False, elem_id="dc-drift-box"):
            gr.Markdown("Doc passages naming a symbol the code no longer has, passing a parameter a signature "
                        "lacks, stating another default, or showing an example whose calls do not match: found "
                        "at indexing, for the knowledge base above (or every one when it is not indexed).")
            self.drift_btn = gr.Button("Check docs", size="sm", elem_id="dc-drift-refresh")
            self.drift_note = gr.Markdown(elem_id="dc-drift-note")
            self.drift = gr.Dataframe(headers=["kind", "doc", "finding", "code"], elem_id="dc-drift",
                                      datatype=["str", "markdown", "str", "markdown"], interactive=False,
                                      value=lambda: self.drift_table(None), label="Findings", wrap=True,
                                      # the finding is the sentence to read: it gets the room, wrapped
                                      column_widths=["8%", "24%", "44%", "24%"])
        self.ticker = gr.Timer(POLL_S, active=False)
        self.following = gr.State(Following())

    def wire(self, tab: gr.Tab, kb_select: gr.Dropdown) -> None:
        out = [self.status, self.progress, self.cancel, self.ticker, self.following, self.kbs, self.srcs, kb_select]
        near = [self.status, self.progress]  # where a click shows that it is being handled
        self.add.click(self.add_source, [self.spec, self.kb_name, self.following, kb_select], out,
                       show_progress_on=near)
        self.again.click(self.reindex, [self.kb_name, self.following, kb_select], out, show_progress_on=near)
        self.cancel.click(self.cancel_job, self.following, self.cancel, queue=False)
        self.ticker.tick(self.poll, [self.following, kb_select], out, concurrency_limit=None, show_progress="hidden")
        tab.select(self.poll, [self.following, kb_select], out, show_progress_on=near)
        self.refresh_btn.click(self.refresh, None, [self.kbs, self.srcs])
        self.drift_btn.click(self.check_docs, [self.kb_name], [self.drift, self.drift_note])


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
