"""Questions about a release, answered from the indexed versions: "what changed in X since 0.23?",
"what's new in X 0.24?", "is `Runner.run_sync` deprecated?".

`plan_changes` reads the question (indexes/query_kind.py: its intent, the library or symbol it
names, its versions) against what the KBs hold: which library, which two versions, which symbol;
or one sentence when it names a version that is not indexed. `deprecation_status` says, for a
symbol, whether a version marks it deprecated and since which indexed version. The chat's Coding
assistant answers such questions with these (indexes/retrieve.py `change_hits`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from indexes.changes import (
    ChangesError,
    Citations,
    Place,
    Version,
    ingest_hint,
    libraries,
    pick_version,
    read_api,
    side_of,
    versions_of,
)
from indexes.query_kind import ReleaseQuestion, read_release_question
from indexes.search import Index


@dataclass
class ChangePlan:
    """What a question about a release asks of the indexed versions."""
    intent: str  # "release" or "deprecation"
    kb: str
    library: str
    symbol: str = ""  # the symbol it is about, "" for the whole library
    old: Version | None = None  # FROM (None: a deprecation question about the oldest indexed version)
    new: Version | None = None  # TO, or the version a deprecation question is about
    versions: list[Version] = field(default_factory=list)  # every indexed version, oldest first
    problem: str = ""  # one sentence when the question names what is not indexed


def plan_changes(index: Index, kbs: list[str], question: str) -> ChangePlan | None:
    """The plan for a question about a release that the indexed versions can answer; None when the
    question is not about a release, or names no library (or symbol of one) indexed in `kbs`."""
    q = read_release_question(question)
    if q is None:
        return None
    found = _library(index, [kb for kb in dict.fromkeys(kbs) if index.catalog.kb(kb) is not None], q)
    if found is None:
        return None
    kb, versions, symbol = found
    library = versions[0].library
    if q.intent == "deprecation" and not symbol:
        return None  # "is the library deprecated?" is no question about one of its symbols
    plan = ChangePlan(q.intent, kb, library, symbol, versions=versions)
    try:
        plan.new = pick_version(versions, q.until, kb, library, newest=True) if q.until else versions[-1]
        earlier = versions[:versions.index(plan.new)]
        if q.since:
            plan.old = pick_version(versions, q.since, kb, library, newest=False)
        elif earlier:
            plan.old = earlier[-1]
        if q.intent == "release" and plan.old is None:
            plan.problem = (f"Only one version of {library} is indexed in KB '{kb}' ({plan.new.version}), so there is "
                            f"nothing to compare it with; index an earlier one, e.g. "
                            f"`{ingest_hint(versions, library, 'VERSION', kb)}`.")
        elif plan.old is not None and plan.old.source_id == plan.new.source_id:
            plan.problem = f"Both versions are {library} {plan.new.version}; name two different versions."
    except ChangesError as e:
        plan.problem = str(e)
    return plan


def _library(index: Index, kbs: list[str], q: ReleaseQuestion) -> tuple[str, list[Version], str] | None:
    """(KB, the library's versions, the symbol asked about) for what the question names: a library,
    else a symbol one of the libraries defines; with neither, the one library indexed at several
    versions (or holding the versions named)."""
    if q.subject:
        for kb in kbs:
            versions = versions_of(index, kb, q.subject)
            if versions:
                return kb, versions, ""
        for name in _name_forms(q.subject):
            for kb in kbs:
                ids = {c.source_id for c in index.catalog.symbol_chunks(kb, name, limit=50)}
                for versions in libraries(index, kb).values():
                    if ids & {v.source_id for v in versions}:
                        return kb, versions, name
        return None
    named = [v.lstrip("vV") for v in (q.since, q.until) if v]
    candidates = [(kb, vs) for kb in kbs for vs in libraries(index, kb).values() if len(vs) > 1
                  and all(any(x.version.lstrip("vV") == n or x.version.lstrip("vV").startswith(n + ".") for x in vs)
                          for n in named)]
    if len(candidates) == 1:
        return candidates[0][0], candidates[0][1], ""
    return None


def _name_forms(subject: str) -> list[str]:
    """`agents.Runner.run`, then `Runner.run`, then `run`: how the index may name a symbol."""
    parts = [p for p in subject.strip("`").removesuffix("()").split(".") if p]
    return [".".join(parts[i:]) for i in range(len(parts))]


@dataclass
class Status:
    """Whether one version marks a symbol deprecated."""
    name: str
    what: str
    version: str
    deprecated: str  # the evidence, "" when it is not marked deprecated
    place: Place
    since: str = ""  # the oldest indexed version, in the run up to `version`, that marks it deprecated


def deprecation_status(index: Index, plan: ChangePlan, limit: int = 5) -> list[Status]:
    """For each public symbol of `plan.new` that `plan.symbol` names (itself, or a symbol whose name
    ends with it): whether it is marked deprecated there, and since which indexed version."""
    target = side_of(index, plan.kb, plan.new)
    api = read_api(target)
    wanted = plan.symbol
    found = [s for s in api.values() if s.name == wanted or s.name.endswith("." + wanted)][:limit]
    cite = Citations(target, target)
    out = []
    for s in found:
        status = Status(s.name, s.what, plan.new.version, s.deprecated, cite.of(1, s))
        if s.deprecated:
            status.since = plan.new.version
            for older in reversed(plan.versions[:plan.versions.index(plan.new)]):
                before = read_api(side_of(index, plan.kb, older))
                twin = before.get(next((k for k, o in before.items() if o.name == s.name), ""))
                if twin is None or not twin.deprecated:
                    break
                status.since = older.version
        out.append(status)
    return out
