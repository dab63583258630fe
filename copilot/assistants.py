"""The assistants: who they are, what they read, and how a user adds their own in the TOML config.

```toml
[[assistants]]
name = "API"
description = "Answers from the API reference."
avatar = "🔌"
system_prompt = "You answer questions about the public HTTP API."
kbs = ["api-docs"]
kinds = ["doc"]
top_k = 6
```
An entry named like a default one (Guide, Tutoring, Coding) changes that one.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

from copilot.config import Config, ConfigError
from indexes.retrieve import Retrieval, change_hits, retrieve
from indexes.search import Index
from indexes.versions import VersionChoice

GUIDE = "Guide"


@dataclass
class AssistantSpec:
    name: str
    description: str
    avatar: str = "🤖"  # an emoji or an image path
    system_prompt: str = ""
    kbs: list[str] = field(default_factory=list)  # empty: the chat's KBs (every indexed KB, or the one chosen)
    kinds: list[str] = field(default_factory=list)  # "doc", "code"; empty: both
    top_k: int = 6
    tools: bool = False  # may call the bounded code tools (copilot/tools.py) when the model supports them

    @property
    def key(self) -> str:
        return self.name.lower()

    @property
    def is_guide(self) -> bool:
        return self.name == GUIDE

    @property
    def kind(self) -> str | None:
        """The one kind it reads ("doc" or "code"), or None for both."""
        return self.kinds[0] if len(self.kinds) == 1 else None


def default_assistants() -> list[AssistantSpec]:
    return [
        AssistantSpec(
            GUIDE, "Greets you, answers questions about this copilot and hands each question to the right expert.",
            "🧭",
            "You are the Guide of a developer copilot for a software framework. You greet users, explain what "
            "the copilot can do, and route questions to the specialist assistants."),
        AssistantSpec(
            "Tutoring", "Explains concepts, how-tos and tutorials from the documentation.", "📘",
            "You are Tutoring, a patient teacher for a software framework. You explain concepts and how to do "
            "things, using the documentation passages you are given, with short examples when they help.",
            kinds=["doc"], top_k=6),
        AssistantSpec(
            "Coding", "Answers from the source code: APIs, signatures, where things are implemented.", "💻",
            "You are Coding, an expert on a software framework's source code. You explain APIs, signatures and "
            "where things are implemented, using the code passages you are given. Build code examples only from "
            "classes, functions and arguments that appear in those passages; never invent an API.",
            kinds=["code"], top_k=6, tools=True),
    ]


def chat_kbs(index: Index, chosen: str = "") -> tuple[list[str], bool]:
    """The knowledge bases the chat reads, and whether they were chosen: `chosen` (the KB selector,
    `--kb`, `chat.kb`), else every KB in the catalog, read afresh each time so a KB indexed meanwhile
    (from the Knowledge tab, the CLI or the API) is used at once."""
    if chosen:
        return [chosen], True
    return [info.name for info in index.catalog.kbs()], False


# How deep the search of both kinds is read: what `devcopilot search` prints, and the bench measures.
RANKING_K = 10


@dataclass
class Ranking:
    """A search of both kinds for `query` in `kbs`: the turn's, which the Guide's local routing looked at and the
    assistants order their citations by."""
    query: str
    kbs: list[str]
    found: Retrieval

    def of(self, query: str, kbs: list[str]) -> Retrieval | None:
        """The search, when it searched `query` in `kbs`."""
        return self.found if (query, list(kbs)) == (self.query, list(self.kbs)) else None


def rank(index: Index, question: str, kbs: list[str], versions: VersionChoice | None = None) -> Ranking:
    """The search of both kinds for `question` in `kbs` at the `versions` chosen."""
    return Ranking(question, list(kbs), retrieve(index, question, kbs, k=RANKING_K, versions=versions))


def retrieve_for(index: Index, spec: AssistantSpec, question: str, kbs: list[str],
                 versions: VersionChoice | None = None, ranking: Retrieval | None = None) -> Retrieval:
    """What the assistant cites from `kbs` (the chat's KBs, already narrowed by its own `kbs`) at the
    `versions` chosen: its kind, widened to both kinds when weak. An assistant that reads code answers
    a question about a release ("what changed in X since 0.23?", "is X deprecated?") from the
    comparison of the indexed versions, citing each change in both (a ChangeRetrieval).

    An assistant of one kind cites its kind's hits in the order the search of both kinds (`ranking`, or searched
    here) gives them, then the rest of its own search's: the rules that read which kind a question asks for, and
    the code its defaults are set in, order the whole ranking; a search of one kind alone cannot apply them. Its
    own search still gives the verdict (weak or not), and what it cites beyond the ranking's hits of its kind."""
    if spec.kind != "doc":
        found = change_hits(index, question, kbs)
        if found is not None:
            return found
    found = retrieve(index, question, kbs, kind=spec.kind, k=spec.top_k, widen=True, versions=versions)
    if spec.kind is None or found.graph is not None or any(h.chunk.kind != spec.kind for h in found.hits):
        return found  # both kinds, the code graph's call sites, or widened to both kinds
    searches = found.searches
    if ranking is None:
        ranking = rank(index, question, kbs, versions).found
        searches += ranking.searches
    first = [h for h in ranking.hits if h.chunk.kind == spec.kind]
    ahead = {(h.kb, h.chunk.id) for h in first}
    hits = first + [h for h in found.hits if (h.kb, h.chunk.id) not in ahead]
    return replace(found, hits=hits[:spec.top_k], searches=searches)


def load_assistants(cfg: Config) -> list[AssistantSpec]:
    """The defaults, changed or extended by `[[assistants]]` tables; the Guide always comes first."""
    specs = {a.key: a for a in default_assistants()}
    raw = cfg.assistants
    if isinstance(raw, dict):
        raw = [raw]
    if not isinstance(raw, list):
        raise ConfigError("The 'assistants' setting must be a list of [[assistants]] tables.")
    known = {f.name for f in fields(AssistantSpec)}
    for entry in raw:
        if not isinstance(entry, dict) or not str(entry.get("name", "")).strip():
            raise ConfigError("Each [[assistants]] table needs a name.")
        unknown = set(entry) - known
        if unknown:
            raise ConfigError(f"Unknown setting '{min(unknown)}' in [[assistants]] '{entry['name']}'; "
                              f"known: {', '.join(sorted(known))}.")
        name = str(entry["name"]).strip().lstrip("@")
        if not all(ch.isalnum() or ch in "-_" for ch in name):
            raise ConfigError(f"Assistant name '{name}' may only hold letters, digits, '-' and '_' "
                              "so that @mentions can find it.")
        kinds = entry.get("kinds", [])
        if any(k not in ("doc", "code") for k in kinds):
            raise ConfigError(f"Assistant '{name}' has kinds {kinds}; use \"doc\" and/or \"code\".")
        base = specs.get(name.lower())
        values = {f.name: getattr(base, f.name) for f in fields(AssistantSpec)} if base else {
            "description": f"Answers questions about {name}.", "system_prompt": f"You are {name}, an assistant for "
            "a software framework. You answer using the passages you are given."}
        values.update({k: v for k, v in entry.items() if k != "name"})
        values["name"] = base.name if base else name
        values["top_k"] = max(1, min(int(values.get("top_k", 6)), 20))
        specs[name.lower()] = AssistantSpec(**values)
    guide = specs.pop(GUIDE.lower())
    return [guide, *specs.values()]
