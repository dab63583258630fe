"""Who answers: @mentions first; otherwise the Guide decides.

Mentions are case-insensitive, tolerate a space (`@ Coding`, the form the 2024 AgentScope
copilot's regex missed), and accept a unique prefix (`@code`). Several mentions give several
answers in the order written. A leading `@word` that names nobody is an unknown mention; an
`@word` later in a sentence that names nobody is left alone, because developers write
decorators (`@function_tool`) in questions.

Without a mention, the Guide decides. With a model it asks for a JSON object, validates it,
repairs common damage by rule (code fences, single quotes, trailing commas, a bare name), and
falls back to the local classifier. Without a model, the local classifier decides: keyword and
shape rules that work for any framework for greetings and questions about the copilot; for the
rest, where the search finds the answer (the kind of its first hit), and the words when the search
finds none or is a near race between docs and code.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from copilot.assistants import AssistantSpec
from indexes.query_kind import kind_scores
from indexes.retrieve import Retrieval

MENTION = re.compile(r"(?<![\w.@])@(\s?)([A-Za-z][\w\-]*)")


@dataclass
class Mentions:
    targets: list[AssistantSpec] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    ambiguous: list[str] = field(default_factory=list)
    text: str = ""  # the message without the mentions that named an assistant


ALIASES = {"code": "coding", "docs": "tutoring", "doc": "tutoring", "tutor": "tutoring", "guidance": "guide"}


def resolve_name(name: str, assistants: list[AssistantSpec]) -> list[AssistantSpec]:
    """Exact (any case) match, else a known alias (`@code`, `@docs`), else every assistant the name is a
    prefix of (`@tut`), allowing the last letter to differ (`@codes`)."""
    low = name.lower()
    exact = [a for a in assistants if a.key == low]
    if exact:
        return exact
    alias = [a for a in assistants if a.key == ALIASES.get(low)]
    if alias:
        return alias
    if len(low) < 2:
        return []
    found = [a for a in assistants if a.key.startswith(low)]
    if not found and len(low) >= 4:
        found = [a for a in assistants if a.key.startswith(low[:-1])]
    return found


class UnknownAssistant(ValueError):
    """A name that is no assistant here (none is called so, or it fits several). Each door says it in
    its own words around `sentence`: the CLI as is, MCP adds ", or omit it", the API lists its model ids."""

    def __init__(self, name: str, names: list[str]):
        self.name = name  # as it was given
        self.names = names  # the assistants there are
        super().__init__(self.sentence())

    def sentence(self, names: list[str] | None = None, hint: str = "") -> str:
        """The sentence, naming `names` (default: the assistants' names) and ending with `hint`."""
        return f"There is no assistant '{self.name}'; use one of: {', '.join(names or self.names)}{hint}."


def find_assistant(name: str, assistants: list[AssistantSpec], exact: bool = False) -> AssistantSpec:
    """The one assistant `name` means, as `resolve_name` finds it (an "@" and spaces around it are
    dropped); with `exact`, only the one whose lower-case name it is (the API's model ids).
    UnknownAssistant when there is none, or several."""
    if exact:
        found = [a for a in assistants if a.key == name]
    else:
        found = resolve_name(name.strip().lstrip("@"), assistants)
    if len(found) != 1:
        raise UnknownAssistant(name, [a.name for a in assistants])
    return found[0]


def parse_mentions(message: str, assistants: list[AssistantSpec]) -> Mentions:
    out = Mentions()
    spans: list[tuple[int, int]] = []
    code_spans = [m.span() for m in re.finditer(r"`[^`]*`", message)]
    leading = True
    pos = 0
    for m in MENTION.finditer(message):
        if any(a <= m.start() < b for a, b in code_spans):
            continue
        between, prev_end = message[pos:m.start()], pos
        if between.strip(" \t\n,;:&+/") and not re.fullmatch(r"[\s,;:&+/]*(and|und|和|及)?[\s,;:&+/]*", between):
            leading = False
        pos = m.end()
        name = m.group(2)
        found = resolve_name(name, assistants)
        # "@A and @B": the connector goes with the mentions, not into the question.
        start = prev_end if leading and spans and spans[-1][1] == prev_end else m.start()
        if len(found) == 1:
            if found[0] not in out.targets:
                out.targets.append(found[0])
            spans.append((start, m.end()))
        elif m.group(1):  # "@ word" naming nobody: ordinary text ("meet me @ noon")
            continue
        elif leading:
            (out.ambiguous if found else out.unknown).append(name)
            spans.append((start, m.end()))
    text = message
    for a, b in reversed(spans):
        text = text[:a] + text[b:]
    out.text = re.sub(r"^[\s,;:&+/]*", "", text).strip() if spans else message.strip()
    return out


# -- the local classifier ------------------------------------------------------------------------
GREETING = re.compile(r"^\s*(hi|hello|hey|hallo|yo|good (morning|afternoon|evening)|thanks|thank you|thx|"
                      r"你好|您好|嗨|谢谢)\b[\s!.,?。！]*", re.IGNORECASE)
META = re.compile(r"\b(who are you|what (can|do) you do|what are you|help me use|how do(es)? (you|this copilot) work|"
                  r"which assistants|who (else )?is (here|there)|what is this (copilot|tool|chat)|your name|"
                  r"how (do i|to) use (you|this)|what can i ask|what (is|has been|did you) index(ed)?|"
                  r"which (knowledge bases?|kbs?|sources) (do you|are)|what (do you|can you) know( about)?)\b|"
                  r"你是谁|你能做什么|怎么用你", re.IGNORECASE)


def classify(question: str, assistants: list[AssistantSpec],
             lean: Callable[[], str | None] | None = None) -> list[AssistantSpec]:
    """Local routing: [] means the Guide answers itself. `lean`, asked only when Coding and Tutoring are the
    choice, says where the answer is: "code" or "doc", the kind of the search's first hit for the question (None:
    nothing answers it). It decides between the two, and which speaks first when the words ask for both; the
    words decide alone without it, or when it says None."""
    specialists = [a for a in assistants if not a.is_guide]
    by_key = {a.key: a for a in specialists}
    # An assistant named in plain words ("ask the API assistant") wins.
    for a in specialists:
        if re.search(rf"\b{re.escape(a.key)}\b", question.lower()) and a.key not in ("coding", "tutoring"):
            return [a]
    q = question.strip()
    code, doc = kind_scores(q)
    words = re.findall(r"\w+", q)
    social = (GREETING.match(q) and len(words) <= 6) or META.search(q) or not words
    if social and code == 0 and (doc == 0 or META.search(q)):
        return []
    coding, tutoring = by_key.get("coding"), by_key.get("tutoring")
    if coding is None or tutoring is None:  # a configured set without the defaults: the first specialist
        return specialists[:1]
    where = lean() if lean is not None else None
    if code >= 2 and doc >= 2 and abs(code - doc) <= 1:
        return [coding, tutoring] if where == "code" else [tutoring, coding]
    if where is not None:  # the words guess where the answer is; the search has looked
        return [coding] if where == "code" else [tutoring]
    if code > doc:
        return [coding]
    return [tutoring]


# The search's first hit says where the answer is when it leads the best hit of the other kind by more than this
# share of its score; in a nearer race the words decide (0.9: fewer first citations right on the bench sets, 0.97
# and no margin: about the same as 0.95; bench/chat_citations.py).
LEAD = 0.95


def where_answered(found: Retrieval) -> str | None:
    """"code" or "doc": the kind of the first hit of a search of both kinds, when it answers (not weak) and leads
    the other kind's best hit clearly; else None."""
    if not found.hits or found.weak:
        return None
    first = found.hits[0]
    other = next((h for h in found.hits if h.chunk.kind != first.chunk.kind), None)
    if other is not None and other.score > LEAD * first.score:
        return None
    return first.chunk.kind


# -- the Guide's structured decision -----------------------------------------------------------
@dataclass
class Decision:
    targets: list[AssistantSpec]  # [] = the Guide answers itself
    reply: str = ""  # the Guide's own words (a greeting, a meta answer) when targets is empty
    how: str = "classifier"  # mention | model | repaired | classifier


def routing_prompt(assistants: list[AssistantSpec], kb_summary: str) -> str:
    lines = "\n".join(f"- {a.name}: {a.description}" for a in assistants if not a.is_guide)
    return (
        "You route questions in a developer copilot's group chat. The assistants are:\n"
        f"{lines}\n\nKnowledge indexed: {kb_summary}\n\n"
        "Decide who answers the user's last message. Reply with one JSON object and nothing else:\n"
        '{"route": ["<assistant name>", ...], "reply": "<text>"}\n'
        "- route: one assistant (two only when the question truly needs both docs and code), by exact name.\n"
        "- Use an empty route [] only for greetings, thanks, or questions about this copilot itself; then put a "
        "short friendly answer in reply, in the user's language.\n"
        "- Otherwise reply is empty.")


def _repair(text: str) -> tuple[object, bool]:
    """Parse the model's JSON, repairing common damage. Returns (value or None, repaired?)."""
    try:
        return json.loads(text), False
    except (TypeError, ValueError):
        pass
    t = re.sub(r"^```(?:json)?\s*|\s*```$", "", (text or "").strip(), flags=re.IGNORECASE)
    m = re.search(r"\{.*\}", t, re.DOTALL)
    if m:
        t = m.group(0)
    for fix in (lambda s: s, lambda s: re.sub(r",\s*([}\]])", r"\1", s),
                lambda s: re.sub(r",\s*([}\]])", r"\1", s.replace("'", '"'))):
        try:
            return json.loads(fix(t)), True
        except ValueError:
            continue
    return None, True


def validate_decision(raw: str, assistants: list[AssistantSpec]) -> Decision | None:
    """A Decision from the model's output, or None when it cannot be trusted."""
    value, repaired = _repair(raw)
    specialists = [a for a in assistants if not a.is_guide]
    if isinstance(value, dict):
        route = value.get("route", value.get("assistants", value.get("assistant", value.get("to"))))
        if isinstance(route, str):
            route = [route] if route.strip() else []
            repaired = True
        if isinstance(route, list) and all(isinstance(r, str) for r in route):
            targets: list[AssistantSpec] = []
            for r in route:
                name = r.strip().lstrip("@").strip()
                if name.lower() in ("guide", "none", "self", ""):
                    continue
                found = resolve_name(name, specialists)
                if len(found) != 1:
                    return None
                if found[0] not in targets:
                    targets.append(found[0])
            reply = value.get("reply", "")
            reply = reply.strip() if isinstance(reply, str) else ""
            if targets:
                return Decision(targets[:2], "", "repaired" if repaired else "model")
            if reply:
                return Decision([], reply, "repaired" if repaired else "model")
        return None
    # Not JSON at all: the model may have written the hand-over in words ("@Coding will take this").
    named = parse_mentions(raw or "", specialists).targets or [
        a for a in specialists if re.search(rf"\b{re.escape(a.name)}\b", raw or "")]
    if len(named) in (1, 2):
        return Decision(named, "", "repaired")
    return None
