"""The model's answer in rounds: it may call the bounded code tools (copilot/tools.py), read their
results and answer on, up to `chat.max_tool_calls` calls an answer.

What the tools find joins the answer's numbered sources, so the model cites it like the rest.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

from copilot.assistants import AssistantSpec
from copilot.config import Config
from copilot.events import Source
from copilot.models import ResilientModel, ToolCall
from copilot.monitor import Monitor
from copilot.tools import TOOL_SPECS, ToolBox
from indexes.search import Index

log = logging.getLogger("devcopilot.chat")


@dataclass(frozen=True)
class Notice:
    """A word from the model's client while the answer waits (a retry after a rate limit)."""
    text: str


class ToolLoop:
    """The model's answer, round after round of tool calls while it makes them and may."""

    def __init__(self, cfg: Config, index: Index, monitor: Monitor):
        self.cfg = cfg
        self.index = index
        self.monitor = monitor

    def stream(self, model: ResilientModel, spec: AssistantSpec, msgs: list[dict], sources: list[Source],
               parts: list[str], kbs: list[str], versions=None) -> Iterator[str | Notice]:
        """The model's answer to `msgs` as it streams: its text (also added to `parts`) and its notices.
        Between rounds the tools' calls and results are added to `msgs`, their chunks to `sources`."""
        use_tools = spec.tools and self.cfg.chat.tools and model.supports_tools
        box = ToolBox(self.index, kbs, self.cfg.chat.max_tool_calls, versions)
        for _round in range(self.cfg.chat.max_tool_calls + 1):
            tools = TOOL_SPECS if use_tools and not box.exhausted else None
            final = None
            said: list[str] = []
            for d in model.stream(msgs, assistant=spec.name, tools=tools,
                                  on_retry=lambda m: log.info("retrying: %s", m)):
                if d.text:
                    parts.append(d.text)
                    said.append(d.text)
                    yield d.text
                elif d.notice:
                    yield Notice(d.notice)
                else:
                    final = d
            if not (tools and final is not None and final.tool_calls):
                return
            msgs.append({"role": "assistant", "content": "".join(said),
                         "tool_calls": [{"id": tc.id, "type": "function",
                                         "function": {"name": tc.name, "arguments": tc.arguments}}
                                        for tc in final.tool_calls]})
            for tc in final.tool_calls:
                msgs.append(self.result(tc, box, sources, model))

    def result(self, tc: ToolCall, box: ToolBox, sources: list[Source], model: ResilientModel) -> dict:
        """The message answering one tool call: what the tool found, its chunks numbered as sources."""
        self.monitor.count("tool_calls")
        if box.exhausted:
            result = "error: no more tool calls for this answer; answer with what you have."
        else:
            r = box.run(tc.name, tc.arguments)
            refs = []
            for i, c in enumerate(r.chunks):
                n = source_number(sources, c)
                label = r.labels[i] if i < len(r.labels) else f"{c.path} lines {c.start_line}-{c.end_line}"
                refs.append(f"[{n}] {label}")
            result = (("Cite these as: " + "; ".join(refs) + "\n\n") if refs else "") + r.text
        msg = {"role": "tool", "tool_call_id": tc.id, "content": result[:8000]}
        if model.provider == "dashscope":  # DashScope also wants the tool's name
            msg["name"] = tc.name
        return msg


def source_number(sources: list[Source], chunk) -> int:
    """The number `chunk` is cited by: its source's, or a new source's added to `sources`."""
    for s in sources:
        if s.path == chunk.path and s.start_line == chunk.start_line and s.end_line == chunk.end_line \
                and s.link == chunk.link:  # the same lines of another version are another source
            return s.n
    n = len(sources) + 1
    sources.append(Source.of(n, chunk))
    return n
