"""Retrieval policy: the one call every door uses to decide what is cited, and whether to trust it.

`retrieve(index, question, kbs, kind, k)` is what the chat's assistants quote, what
`devcopilot search` prints, what the HTTP API's answers cite. It returns ranked hits and a
confidence verdict, in four steps:

1. **Search each KB** (`Index.search`: fusion and the ranking rules) and merge the hits by
   their fused scores.
2. **Definitions first.** A question that names a symbol in code form (`Runner.run`,
   `MemoryStore`, `make_widget()`) almost always wants its definition, which similar text (an
   example calling it) often outranks: the chunk defining it leads, taken from the catalog when
   the search missed it. Not for doc-only retrieval.
3. **The verdict.** Retrieval is *weak* (the assistants answer "I don't know" with the closest
   sources, without calling a model) when there are no hits, when the best embedding similarity
   is under `search.min_similarity` (0.3 with the local model; the model reads Latin-script text
   only, so a question mostly in Chinese is not held to it), or when the question's terms found
   in any one of the top six chunks carry less than `search.min_overlap` (0.3) of its IDF
   weight AND the top chunk was not in the top 10 of both retrievers. A question naming a
   defined symbol is never weak.
4. **Widening** (`widen=True`, as the assistants ask): when retrieval limited to one kind is
   weak, both kinds are searched, and used when that is not weak.

Each KB is searched at one version of each library it holds (`versions`: a VersionChoice, by
default the newest; indexes/versions.py); a pinned version it does not hold is reported in
`Retrieval.missing`, and the newest is searched meanwhile.
"""
from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import numpy as np

from indexes.embeddings import content_hash
from indexes.graph import GraphAnswer, GraphError, Within, callees, callers, chunk_at
from indexes.lexical import tokenize
from indexes.page_kind import asks_for_news
from indexes.plain_names import RAISED
from indexes.query_kind import CODEISH, GraphQuestion, graph_question, read_intent
from indexes.search import Hit, Index, SearchError, is_mostly_cjk, lexical_text, query_forms, spread_files
from indexes.versions import Missing, VersionChoice
from ingest.chunk import Chunk

log = logging.getLogger("devcopilot.retrieve")


class RetrievalDown(RuntimeError):
    """The index could not be searched (e.g. the vector store server is down); `cause` says why."""

    def __init__(self, cause: BaseException):
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.cause = cause


@dataclass
class Retrieval:
    hits: list[Hit]  # best first
    weak: bool  # the confidence verdict: too weak to answer from
    named: int = 0  # definitions the question names, put first
    searches: int = 0  # index searches run (one per KB searched, for each kind tried)
    missing: list[Missing] = field(default_factory=list)  # pinned versions not indexed (the newest was searched)
    graph: GraphAnswer | None = None  # the code graph's answer, when the question asked who calls or what is called


def retrieve(index: Index, question: str, kbs: Iterable[str] = ("default",), kind: str | None = None,
             k: int = 10, widen: bool = False, versions: VersionChoice | None = None) -> Retrieval:
    """The hits to cite for `question` from `kbs` (KBs not indexed are skipped), `kind` "doc", "code"
    or None for both, at the `versions` chosen (None: the newest of each library), and whether they
    are too weak to answer from. Raises RetrievalDown when the store cannot be searched; a search
    the user got wrong in one KB (SearchError) is skipped."""
    kbs = list(kbs)
    scopes = {kb: index.scope(kb, versions) for kb in dict.fromkeys(kbs) if index.catalog.kb(kb) is not None}
    within = {kb: scope.sources for kb, scope in scopes.items()}
    missing = [m for scope in scopes.values() for m in scope.missing]
    if kind != "doc" and (asked := graph_question(question)) is not None:
        found = graph_retrieval(index, kbs, asked, k, within)
        if found is not None:  # who calls X, what X calls: the call sites are the sources, at the versions chosen
            found.missing = missing
            return found
    # Read deeper than k: a file's fourth chunk in the top ten steps behind the other files' hits (spread_files).
    hits, searches = _search(index, kbs, question, 2 * k, kind, within)
    named = 0
    if kind != "doc":
        hits, named = definitions_first(index, kbs, question, hits, 2 * k, within)
    hits = (spread_files(hits, within=k) if index.reranker is None else hits)[:k]  # a reranker has the last word
    weak = not named and is_weak(index, question, hits)
    if widen and kind is not None and weak:
        other, more = _search(index, kbs, question, k, None, within)
        searches += more
        if not is_weak(index, question, other):
            return Retrieval(other, False, 0, searches, missing)
    return Retrieval(hits, weak, named, searches, missing)


def graph_retrieval(index: Index, kbs: list[str], asked: GraphQuestion, k: int, within: Within = None) \
        -> Retrieval | None:
    """The sources for a question the code graph answers ("who calls X?", "what does X call?", "what breaks
    if I change X?"): the chunks holding the call sites (for callees, X's own code first, then what it
    calls), at least a dozen when there are that many, in each KB's sources `within` (the versions chosen);
    None when the graph cannot answer (no graph, no definition of X there), and the question is searched as
    any other."""
    try:
        answer = (callers if asked.direction == "callers" else callees)(index, kbs, asked.symbol, asked.depth,
                                                                         within=within)
    except GraphError:
        return None
    places: list[tuple[str, Chunk | None]] = []
    defined = [(d.kb, chunk_at(index, d.kb, d.source_id, d.path, d.start_line)) for d in answer.definitions[:1]]
    if asked.direction == "callees":  # X's own code, where the calls are
        places += defined
    places += answer.chunks()
    if asked.direction == "callees":  # then the definitions of what it calls
        places += [(s.kb, chunk_at(index, s.kb, s.to.source_id, s.to.path, s.to.start_line)) for s in answer.resolved]
    if not places:  # nothing calls it: its definition, so the answer can say so and cite it
        places = defined
    seen, hits = set(), []
    for kb, c in places:
        if c is not None and c.id not in seen:
            seen.add(c.id)
            hits.append(Hit(c, 1.0 / (len(hits) + 1), kb))
    return Retrieval(hits[:max(k, 12)], False, named=len(answer.definitions[:1]), graph=answer)


def _search(index: Index, kbs: list[str], question: str, k: int, kind: str | None,
            within: dict[str, frozenset[str] | None] | None = None) -> tuple[list[Hit], int]:
    per_kb: dict[str, list[Hit]] = {}
    searches = 0
    for kb in dict.fromkeys(kbs):
        if index.catalog.kb(kb) is None:
            continue
        searches += 1
        try:
            sources = (within or {}).get(kb)  # None: every source (one version of each library)
            scoped = {"sources": sources} if sources is not None else {}
            per_kb[kb] = index.search(question, kb=kb, k=k, kind=kind, **scoped)
        except SearchError as e:
            log.info("search failed: %s", e)
        except Exception as e:  # the store is down or damaged: the caller says so and carries on
            log.exception("search failed")
            raise RetrievalDown(e) from None
    found = [hits for hits in per_kb.values() if hits]
    if len(found) == 1:  # one KB's list is already in its final order (a reranker may not keep scores sorted)
        return found[0][:k], searches
    return merge(index, question, {kb: hits for kb, hits in per_kb.items() if hits})[:k], searches


def merge(index: Index, question: str, per_kb: dict[str, list[Hit]]) -> list[Hit]:
    """Hits of several KBs in one list, by a score that compares across them.

    Fused scores do not: each KB's are scaled to its own best, so every KB's first hit scores
    near 1 (a KB of one chunk scores it 0.6 whatever the question). Instead each hit is scored
    as if the KBs were one corpus: its cosine similarity to the question (one embedding model
    serves every KB) and its BM25 score with the term statistics pooled over the KBs, each scaled
    over all the hits merged, weighted as the fusion weights them. Each KB keeps its own order
    (its ranking rules); its places take its hits' scores best first, and the lists are merged
    by them.
    """
    s = index.cfg.search
    lexical_query, dense_query = query_forms(question)
    terms = tokenize(lexical_query)
    lexes = {kb: index.lexical(kb) for kb in per_kb}
    n = sum(len(lx.ids) for lx in lexes.values() if lx is not None)
    idf = {}
    for t in set(terms):
        df = sum(lx.df(t) for lx in lexes.values() if lx is not None)
        idf[t] = math.log(1.0 + (n - df + 0.5) / (df + 0.5))
    lexical: dict[tuple[str, str], float] = {}
    for kb, hits in per_kb.items():
        if lexes[kb] is not None:
            got = lexes[kb].scores_with([h.chunk.id for h in hits], terms, idf)
            lexical.update(((kb, cid), sc) for cid, sc in got.items())
    dense = _similarities(index, dense_query, per_kb)
    top_lex = max(lexical.values(), default=0.0) or 1.0
    low, high = min(dense.values(), default=0.0), max(dense.values(), default=0.0)
    span = (high - low) or 1.0

    def comparable(kb: str, h: Hit) -> float:
        key = (kb, h.chunk.id)
        near = (dense[key] - low) / span if key in dense else 0.0  # no embedding cached: the floor
        return s.lexical_weight * lexical.get(key, 0.0) / top_lex + s.dense_weight * near

    merged: list[Hit] = []
    for kb, hits in per_kb.items():
        scores = sorted((comparable(kb, h) for h in hits), reverse=True)
        merged += [replace(h, score=sc) for h, sc in zip(hits, scores)]
    merged.sort(key=lambda h: -h.score)  # stable: a tie keeps a KB's own order
    return merged


def _similarities(index: Index, dense_query: str, per_kb: dict[str, list[Hit]]) -> dict[tuple[str, str], float]:
    """Each hit's cosine similarity to the query: the dense retriever's when it returned the chunk,
    else from the chunk's cached embedding (every indexed chunk's is in the cache)."""
    out = {(kb, h.chunk.id): h.similarity for kb, hits in per_kb.items() for h in hits if h.similarity is not None}
    missing = {(kb, h.chunk.id): h.chunk for kb, hits in per_kb.items() for h in hits if (kb, h.chunk.id) not in out}
    if missing:
        hashes = {key: content_hash(c.embed_text()) for key, c in missing.items()}
        vectors = index.cache.get_many(index.embedder.name, list(set(hashes.values())))
        q = index.embed_query(dense_query)
        for key, h in hashes.items():
            if h in vectors:
                out[key] = float(np.dot(q, vectors[h]))
    return out


MODIFIER = re.compile(r"[- ](style|like|based|compatible|flavou?red|shaped)\b", re.IGNORECASE)


def named_symbols(question: str) -> list[str]:
    """Up to three names the question writes in code form: `quoted`, dotted.names, snake_case, calls()
    (a call written with its arguments, `Image(data=b, format="jpg")`, names `Image`)."""
    # A name used as a modifier ("a SentencePiece style tokenizer", "an OpenAPI-compatible server") is
    # not what the question asks about.
    found = (m for m in CODEISH.finditer(question) if not MODIFIER.match(question, m.end()))
    names = (m.group(0).strip("`").split("(", 1)[0].strip() for m in found)
    return list(dict.fromkeys(n for n in names if n and not n[0].isdigit()))[:3]


def definitions_first(index: Index, kbs: list[str], question: str, hits: list[Hit], k: int,
                      within: dict[str, frozenset[str] | None] | None = None) -> tuple[list[Hit], int]:
    """The hits with the definition of each symbol the question names first, and how many were put first
    (`within`: each KB's sources at the chosen versions).

    Only a name that picks out one definition counts (`picks_one`). When the ranking already leads with
    a definition of a name, it stays first. A question that asks how to do something or compares things
    merely mentions the names, as does one about a release (what changed, moving to a version): the page
    that answers leads, and a definition the top five lack takes the fifth place (`seated`)."""
    names = named_symbols(question)
    if not names:
        return hits, 0

    def defines(h: Hit, name: str) -> bool:
        sym = h.chunk.symbol
        return bool(sym) and h.chunk.kind == "code" and (sym == name or sym.endswith("." + name))

    def has_def_line(h: Hit, name: str) -> bool:  # long functions span chunks: prefer the signature's
        last = re.escape(name.split(".")[-1])
        return re.search(rf"^\s*(async\s+def|def|class)\s+{last}\b", h.chunk.text, re.MULTILINE) is not None

    bare = question.strip().strip("`").removesuffix("()") == names[0]  # the name alone: find_definitions
    found: list[Hit] = []
    for name in names:
        if not bare and not picks_one(index, kbs, name, within):
            continue
        if hits and defines(hits[0], name):  # the ranking already leads with it (its best part, maybe)
            match = [hits[0]]
        else:
            match = [h for h in hits if defines(h, name)]
            if not any(has_def_line(h, name) for h in match):
                match += [Hit(c, 0.0, kb) for kb in kbs if index.catalog.kb(kb) is not None
                          for c in index.catalog.symbol_chunks(kb, name, sources=(within or {}).get(kb))]
            match.sort(key=lambda h: not has_def_line(h, name))  # stable: rank order otherwise
        found += [h for h in match[:1] if all(h.chunk.id != f.chunk.id for f in found)]
    if not found:
        return hits, 0
    if read_intent(question) in ("compare", "how_to") or asks_for_news(question):
        return seated(hits, found, k), len(found)
    if hits and hits[0] in found:  # what leads stays first
        found.remove(hits[0])
        found.insert(0, hits[0])
    ids = {h.chunk.id for h in found}
    ordered = (found + [h for h in hits if h.chunk.id not in ids])[:k]
    # Scores go with the places, as the search's own lifts do, so the list still reads best-first.
    places = [h.score for h in hits] + [hits[-1].score if hits else 0.0] * len(found)
    return [replace(h, score=sc) for h, sc in zip(ordered, places)], len(found)


def picks_one(index: Index, kbs: list[str], name: str, within: dict[str, frozenset[str] | None] | None,
              most: int = 2) -> bool:
    """Whether a name the question writes picks out a definition to put first: not an exception (`ToolError`
    names what went wrong), not a special method (`__init__`: every class has one), and defined in at
    most `most` places (`read_file` in five providers: the question does not say which)."""
    last = name.split(".")[-1]
    if RAISED.search(last) or last.startswith("__"):
        return False
    places = {(c.path, c.symbol) for kb in kbs if index.catalog.kb(kb) is not None
              for c in index.catalog.symbol_chunks(kb, name, limit=50, sources=(within or {}).get(kb))}
    return len(places) <= most


def seated(hits: list[Hit], found: list[Hit], k: int, top: int = 5) -> list[Hit]:
    """The hits with the definitions `found` that the top five lack taking the last places of the top five;
    those already there keep theirs."""
    have = {h.chunk.id for h in hits[:top]}
    late = [h for h in found if h.chunk.id not in have]
    if not late:
        return hits[:k]
    ids = {h.chunk.id for h in late}
    rest = [h for h in hits if h.chunk.id not in ids]
    at = max(0, min(top, len(rest)) - len(late))
    ordered = (rest[:at] + late + rest[at:])[:k]
    places = [h.score for h in hits] + [hits[-1].score if hits else 0.0] * len(late)
    return [replace(h, score=sc) for h, sc in zip(ordered, places)]


def is_weak(index: Index, question: str, hits: list[Hit]) -> bool:
    """The verdict of step 3 in this module's docstring."""
    if not hits:
        return True
    s = index.cfg.search
    floor = s.min_similarity
    if floor < 0:
        floor = 0.3 if index.cfg.embedding.provider == "local" else 0.0
    best = max((h.similarity for h in hits if h.similarity is not None), default=None)
    ranks = hits[0].ranks
    agree = len(ranks) == 2 and max(ranks.values()) < 10  # both retrievers put it in their top 10
    # Far from everything indexed, unless the top chunk holds every term of the question and both
    # retrievers agree on it: short, generic questions ("how do I get started?") embed far from any
    # chunk, while an off-topic question's rare words are missing from the corpus.
    if floor and best is not None and best < floor and not is_mostly_cjk(question) \
            and not (agree and coverage(index, question, hits[:1]) >= 1.0):
        return True
    return coverage(index, question, hits) < s.min_overlap and not agree


# The chunks whose words the verdict reads: the six an assistant quotes by default (its top_k). The top three
# called weak a question whose answer was cited fourth and fifth (dev: "which model is used when neither the agent
# nor the run config names one": "I don't know" under a plain-words definition first); on the eight bench sets,
# six took answerable questions' "I don't know" from 8 to 6 and left the off-topic ones' at 74 of 80.
COVERED_BY = 6


def coverage(index: Index, question: str, hits: list[Hit]) -> float:
    """Share of the question's IDF weight whose terms appear in one of the top `COVERED_BY` chunks.

    Weighting by IDF means a shared common word ("world", "configure") counts for little and a
    missing rare one ("sourdough") for much.
    """
    terms = set(tokenize(question))
    if not terms:
        return 1.0
    lex = index.lexical(hits[0].kb)
    weights = {t: lex.idf(t) if lex is not None else 1.0 for t in terms}
    total = sum(weights.values()) or 1.0
    return max(sum(weights[t] for t in terms & set(tokenize(lexical_text(h.chunk)))) / total for h in hits[:COVERED_BY])



@dataclass
class Definition:
    hit: Hit
    line: int  # where the definition starts: a method of a small class is defined inside the class's chunk

    @property
    def lines(self) -> list[str]:
        """The chunk's lines from the definition on."""
        return self.hit.chunk.text.splitlines()[self.line - self.hit.chunk.start_line:]


def find_definitions(index: Index, name: str, kbs: Iterable[str], limit: int = 3,
                     versions: VersionChoice | None = None) -> list[Definition]:
    """Where a class, function or method (`Runner.run`, `run`, `MemoryStore`) is defined, best first:
    `retrieve()` for the name in code form (the definition it puts first leads), then the other code
    chunks it found that define the name; at the `versions` chosen (None: the newest)."""
    name = name.strip().strip("`").removesuffix("()").strip()
    if not name:
        return []
    last = name.split(".")[-1]
    defines = re.compile(rf"^\s*(async\s+def|def|class)\s+{re.escape(last)}\b", re.MULTILINE)
    found = retrieve(index, f"`{name}`", kbs, kind="code", k=20, versions=versions)
    out: list[Definition] = []
    for h in found.hits:
        c = h.chunk
        if c.symbol and (c.symbol == name or c.symbol.endswith("." + name)):
            m = defines.search(c.text)
            out.append(Definition(h, c.start_line + (c.text.count("\n", 0, m.start()) if m else 0)))
        elif (m := defines.search(c.text)) and (not c.symbol or name.startswith(c.symbol + ".")
                                                or c.symbol.split(".")[-1] == last):
            out.append(Definition(h, c.start_line + c.text.count("\n", 0, m.start())))
    exact = [d for d in out if d.hit.chunk.symbol and d.hit.chunk.symbol.split(".")[-1] == last]
    return (exact + [d for d in out if d not in exact])[:limit]


# -- questions about a release -----------------------------------------------------------------------
@dataclass
class ChangeRetrieval(Retrieval):
    """What the chat cites for a question about a release (indexes/change_questions.py): the places
    of each change in both versions, as hits, and the changes listed with those hits' numbers."""
    listing: str = ""  # the changes (or a symbol's deprecation), each citation written [n]
    problem: str = ""  # one sentence when the question names what is not indexed; then no hits


def change_hits(index: Index, question: str, kbs: Iterable[str], max_changes: int = 10) -> ChangeRetrieval | None:
    """The citations and listing that answer "what changed in X since V?" or "is X deprecated?" from
    the versions indexed in `kbs`; None when the question is no such question about them."""
    from indexes.change_questions import deprecation_status, plan_changes
    from indexes.changes import Place, compare, listing, place_chunk

    plan = plan_changes(index, list(kbs), question)
    if plan is None:
        return None
    if plan.problem:
        return ChangeRetrieval([], False, problem=plan.problem)
    hits: list[Hit] = []
    numbers: dict[tuple, int] = {}

    def cite(place: Place, name: str = "", kind: str = "code") -> str:
        key = (place.version, place.path, place.start_line, place.end_line)
        if key not in numbers:
            numbers[key] = len(hits) + 1
            hits.append(Hit(place_chunk(place, name or place.path, kind), 1.0, plan.kb))
        return f"[{numbers[key]}] {place.cite()}"

    lines: list[str] = []
    if plan.intent == "deprecation":
        lines += _deprecation_lines(deprecation_status(index, plan), plan, cite)
    if plan.old is not None:
        report = compare(index, plan.kb, plan.old, plan.new, plan.symbol)
        names = {id(p): (c.name, "doc" if c.kind.startswith("page_") else "code") for c in report.changes
                 for p in (c.old, c.new) if p is not None}
        everything = f"`devcopilot changes {plan.library} {plan.old.version} {plan.new.version}` lists them all"
        lines.append(listing(report, cite=lambda p: cite(p, *names.get(id(p), ("", "code"))),
                             max_changes=max_changes, more=everything))
    return ChangeRetrieval(hits, False, listing="\n\n".join(lines))


def _deprecation_lines(statuses, plan, cite) -> list[str]:
    if not statuses:
        return [f"`{plan.symbol}` is not a public symbol of {plan.library} {plan.new.version}."]
    out = []
    for st in statuses:
        where = cite(st.place, st.name)
        if st.deprecated:
            since = f", since {st.since}" if st.since and st.since != st.version else ""
            out.append(f"`{st.name}` ({st.what}) is deprecated in {plan.library} {st.version}{since}: "
                       f"{st.deprecated} {where}")
        else:
            out.append(f"`{st.name}` ({st.what}) is not marked deprecated in {plan.library} {st.version} (no "
                       f"deprecation decorator, warning or docstring note) {where}")
    return out
