"""The web app's Usage tab: tokens, cost, answers and thumbs per day (ui/charts.py), the coverage gaps
(questions answered "I don't know" or given a thumbs-down) with a CSV export, and the raw figures.

With the web UI's users (--auth), each signed-in user sees the answers, feedback and coverage gaps
of their own conversations (the web chat's and the API's they sent signed in), never another's
questions; model calls, tokens and cost are the server's totals, which the tab says. `devcopilot
usage --gaps` on the server shows every user's.
"""
from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import gradio as gr

from copilot.conversations import gaps_csv
from ui import charts, render
from ui.auth import user_of
from ui.knowledge_tab import user_error


class UsageTab:
    """The Usage tab's components and handlers; `layout()` builds it inside a `gr.Tab`."""

    def __init__(self, copilot):
        self.copilot = copilot
        self.downloads = Path(tempfile.mkdtemp(prefix="devcopilot-ui-"))

    def usage(self, request: gr.Request):
        """The tab's outputs, for the signed-in user (everyone's without --auth: nobody is signed in)."""
        user = user_of(request)
        try:
            data = self.copilot.usage(owner=user or None)
        except Exception as e:
            return f"❌ {user_error(e)}", None, [], None, {}
        gaps = [[g["question"], g["asked"], g["dont_know"], g["thumbs_down"], g["last_asked"]] for g in data["gaps"]]
        # Each user's export in a folder of its own: one user's click never overwrites another's file.
        folder = self.downloads / (hashlib.sha256(user.encode()).hexdigest()[:16] if user else "everyone")
        folder.mkdir(exist_ok=True)
        csv_path = folder / "coverage-gaps.csv"
        csv_path.write_text(gaps_csv(data["gaps"]), encoding="utf-8")
        return render_usage(data), charts.usage_figure(data), gaps, str(csv_path), data

    def layout(self) -> None:
        """The tab's components (inside the caller's `gr.Tab`); `wire(tab)` connects them."""
        self.summary = gr.Markdown(elem_id="dc-usage")
        self.plot = gr.Plot(elem_id="dc-usage-chart", show_label=False)
        gr.Markdown("#### Coverage gaps\nThe questions most often answered \"I don't know\" or given a "
                    "thumbs-down: the docs that are missing.")
        self.gaps = gr.Dataframe(headers=["question", "asked", "\"I don't know\"", "thumbs down", "last asked"],
                                 interactive=False, elem_id="dc-gaps", wrap=True)
        with gr.Row():
            self.export = gr.DownloadButton("Export gaps as CSV", size="sm", elem_id="dc-gaps-csv")
            self.refresh = gr.Button("Refresh", size="sm", elem_id="dc-usage-refresh")
        with gr.Accordion("Raw figures", open=False):
            self.raw = gr.JSON(show_label=False)

    def wire(self, tab: gr.Tab) -> None:
        out = [self.summary, self.plot, self.gaps, self.export, self.raw]
        self.refresh.click(self.usage, None, out)
        tab.select(self.usage, None, out)


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
    if data.get("owner"):
        lines.append(f"Answers, feedback and coverage gaps are those of your conversations "
                     f"({render.md_text(data['owner'])}); model calls, tokens and cost are the whole server's.")
    return "\n\n".join(lines)


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:,.4f}".rstrip("0").rstrip(".")
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)
