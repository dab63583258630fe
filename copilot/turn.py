"""What one turn's speakers share: the knowledge bases it reads, the answers so far, the work
started ahead for it, and whether its model has failed."""
from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field

from copilot.assistants import AssistantSpec, Ranking
from copilot.models import ResilientModel
from copilot.monitor import Monitor


@dataclass
class SearchAhead:
    """A retrieval started before it is known to be needed (copilot/ahead.py)."""
    assistant: str
    query: str
    kbs: list[str]
    found: Future  # of its Retrieval

    def searched(self, assistant: str, query: str, kbs: list[str]) -> bool:
        return (assistant, query, kbs) == (self.assistant, self.query, self.kbs)


@dataclass
class Turn:
    model: ResilientModel | None  # the chat model (None: there is none configured)
    monitor: Monitor  # knows whether the budget is spent
    answers: list[dict] = field(default_factory=list)  # earlier speakers' answers in this turn
    model_down: str = ""  # set when the model failed in this turn: later steps skip it instead of retrying again
    kbs: list[str] = field(default_factory=list)  # the knowledge bases the chat reads for this turn
    narrowed: bool = False  # True when they were chosen (the KB selector, chat.kb), not "every indexed KB"
    versions: object | None = None  # the VersionChoice it is answered at (indexes/versions.py); None: the newest
    ahead: SearchAhead | None = None  # a retrieval started during the Guide's routing call
    condensed: Future | None = None  # of (retrieval query, how): condensed once a turn, maybe during routing
    ranking: Ranking | None = None  # the search of both kinds the Guide's local routing looked at

    def usable_model(self) -> ResilientModel | None:
        """The model, unless there is none, the budget is spent or it failed earlier in this turn."""
        if self.model is None or self.monitor.over_budget() or self.model_down:
            return None
        return self.model

    def kbs_of(self, spec: AssistantSpec) -> list[str]:
        """What `spec` reads: the chat's KBs, narrowed by its own `kbs` setting when it has one."""
        if not spec.kbs:
            return list(self.kbs)
        if not self.narrowed:
            return list(spec.kbs)
        return [k for k in spec.kbs if k in self.kbs]


def conversation(history: list[dict], turns: int) -> list[dict]:
    """The conversation an answer (and its condensed query) goes by: the last `turns` messages."""
    return [{"role": h["role"], "content": h["content"], "sources": h.get("sources", [])} for h in history[-turns:]]
