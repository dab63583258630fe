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
   in any one of the top three chunks carry less than `search.min_overlap` (0.3) of its IDF
   weight AND the top chunk was not in the top 10 of both retrievers. A question naming a
   defined symbol is never weak.
4. **Widening** (`widen=True`, as the assistants ask): when retrieval limited to one kind is
   weak, both kinds are searched, and used when that is not weak.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

from indexes.lexical import tokenize
from indexes.query_kind import CODEISH
from indexes.search import Hit, Index, SearchError, is_mostly_cjk, lexical_text

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


def retrieve(index: Index, question: str, kbs: Iterable[str] = ("default",), kind: str | None = None,
             k: int = 10, widen: bool = False) -> Retrieval:
    """The hits to cite for `question` from `kbs` (KBs not indexed are skipped), `kind` "doc", "code"
    or None for both, and whether they are too weak to answer from. Raises RetrievalDown when the
    store cannot be searched; a search the user got wrong in one KB (SearchError) is skipped."""
    kbs = list(kbs)
    hits, searches = _search(index, kbs, question, k, kind)
    named = 0
    if kind != "doc":
        hits, named = definitions_first(index, kbs, question, hits, k)
    weak = not named and is_weak(index, question, hits)
    if widen and kind is not None and weak:
        other, more = _search(index, kbs, question, k, None)
        searches += more
        if not is_weak(index, question, other):
            return Retrieval(other, False, 0, searches)
    return Retrieval(hits, weak, named, searches)


def _search(index: Index, kbs: list[str], question: str, k: int, kind: str | None) -> tuple[list[Hit], int]:
    hits: list[Hit] = []
    searches = 0
    for kb in kbs:
        if index.catalog.kb(kb) is None:
            continue
        searches += 1
        try:
            hits += index.search(question, kb=kb, k=k, kind=kind)
        except SearchError as e:
            log.info("search failed: %s", e)
        except Exception as e:  # the store is down or damaged: the caller says so and carries on
            log.exception("search failed")
            raise RetrievalDown(e) from None
    if searches > 1:  # one KB's list is already in its final order (a reranker may not keep scores sorted)
        hits.sort(key=lambda h: -h.score)
    return hits[:k], searches


def named_symbols(question: str) -> list[str]:
    """Up to three names the question writes in code form: `quoted`, dotted.names, snake_case, calls()."""
    return [n for n in (m.strip("`()") for m in CODEISH.findall(question)) if n and not n[0].isdigit()][:3]


def definitions_first(index: Index, kbs: list[str], question: str, hits: list[Hit], k: int) -> tuple[list[Hit], int]:
    """The hits with the definition of each symbol the question names first, and how many were put first."""
    names = named_symbols(question)
    if not names:
        return hits, 0

    def defines(h: Hit, name: str) -> bool:
        sym = h.chunk.symbol
        return bool(sym) and h.chunk.kind == "code" and (sym == name or sym.endswith("." + name))

    def has_def_line(h: Hit, name: str) -> bool:  # long functions span chunks: prefer the signature's
        last = re.escape(name.split(".")[-1])
        return re.search(rf"^\s*(async\s+def|def|class)\s+{last}\b", h.chunk.text, re.MULTILINE) is not None

    found: list[Hit] = []
    for name in names:
        match = [h for h in hits if defines(h, name)]
        if not any(has_def_line(h, name) for h in match):
            match += [Hit(c, 0.0, kb) for kb in kbs if index.catalog.kb(kb) is not None
                      for c in index.catalog.symbol_chunks(kb, name)]
        match.sort(key=lambda h: not has_def_line(h, name))  # stable: rank order otherwise
        found += [h for h in match[:1] if all(h.chunk.id != f.chunk.id for f in found)]
    if not found:
        return hits, 0
    ids = {h.chunk.id for h in found}
    ordered = (found + [h for h in hits if h.chunk.id not in ids])[:k]
    # Scores go with the places, as the search's own lifts do, so the list still reads best-first.
    places = [h.score for h in hits] + [hits[-1].score if hits else 0.0] * len(found)
    return [replace(h, score=sc) for h, sc in zip(ordered, places)], len(found)


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
    if floor and best is not None and best < floor and not is_mostly_cjk(question):
        # Far from everything indexed, unless the top chunk holds every term of the question and both
        # retrievers agree on it: short, generic questions ("how do I get started?") embed far from
        # any chunk, while an off-topic question's rare words are missing from the corpus.
        if not (agree and coverage(index, question, hits[:1]) >= 1.0):
            return True
    return coverage(index, question, hits) < s.min_overlap and not agree


def coverage(index: Index, question: str, hits: list[Hit]) -> float:
    """Share of the question's IDF weight whose terms appear in one of the top three chunks.

    Weighting by IDF means a shared common word ("world", "configure") counts for little and a
    missing rare one ("sourdough") for much.
    """
    terms = set(tokenize(question))
    if not terms:
        return 1.0
    lex = index.lexical(hits[0].kb)
    weights = {t: lex.idf(t) if lex is not None else 1.0 for t in terms}
    total = sum(weights.values()) or 1.0
    return max(sum(weights[t] for t in terms & set(tokenize(lexical_text(h.chunk)))) / total for h in hits[:3])

