"""The lexical index: BM25 over code-aware tokens, one index per KB.

Tokens keep identifiers whole and also split them (`run_streamed` -> run_streamed, run,
streamed; `RunConfig` -> runconfig, run, config), stem English words, drop stop words, and
cut CJK text into overlapping character pairs so Chinese questions match Chinese docs
without a segmenter. The index is a sparse matrix of BM25 weights (chunks x terms),
rebuilt from the tokens stored in the catalog and saved atomically.
"""
from __future__ import annotations

import json
import math
import os
import re
import threading
import zipfile
from array import array
from collections import Counter
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import sparse

# Bump when tokenize() changes: stored tokens of older versions are recomputed on the next rebuild.
TOKENIZER_VERSION = "2"

STOP = set("""
a an and are as at be but by can do does did for from has have how i if in into is it its of on or
so that the their then there these this to was what when where which who why will with would you
your me my we our should could may might use using used want get make show tell not no yes don
doesn didn isn aren wasn won can't cannot also just any some all than
""".split())

WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\d+|[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]+")
CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")

try:
    import Stemmer

    _stemmer = Stemmer.Stemmer("english")

    @lru_cache(maxsize=200_000)
    def stem(word: str) -> str:
        return _stemmer.stemWord(word)
except ImportError:  # stemming is a bonus, not a requirement
    def stem(word: str) -> str:
        return word


@lru_cache(maxsize=500_000)
def _word_tokens(w: str) -> tuple[str, ...]:
    if CJK.match(w):
        if len(w) == 1:
            return (w,)
        return tuple(w[i:i + 2] for i in range(len(w) - 1))
    low = w.lower()
    parts = [p.lower() for p in re.split(r"_+", w) for p in CAMEL.findall(p)] if (
        "_" in w.strip("_") or not (w.islower() or w.isupper())) else []
    out = []
    if low not in STOP and len(low) > 1:
        out.append(low if parts else stem(low))
    for p in parts:
        if p not in STOP and len(p) > 1 and p != low:
            out.append(stem(p))
    return tuple(out)


def tokenize(text: str) -> list[str]:
    out: list[str] = []
    for w in WORD.findall(text):
        out.extend(_word_tokens(w))
    return out


class BM25Index:
    """BM25 weights as a CSC matrix; a query sums the columns of its terms."""

    def __init__(self, ids: list[str], kinds: np.ndarray, vocab: dict[str, int], tf: sparse.csr_matrix,
                 generation: int, cjk: np.ndarray | None = None, k1: float = 1.2, b: float = 0.75):
        self.ids = ids
        self.kinds = kinds  # 0 doc, 1 code
        self.cjk = cjk if cjk is not None else np.zeros(len(ids), np.int8)  # 1: written mostly in CJK
        self._row: dict[str, int] | None = None
        self.vocab = vocab
        self.tf = tf  # raw term counts (chunks x terms): kept so an update touches only changed rows
        self.weights = _bm25_weights(tf, k1, b)
        self.generation = generation
        self._of_kind: dict[str, list[str]] = {}
        self._masks: dict[frozenset[str], np.ndarray] = {}  # the rows of a set of chunks (one version's)

    @classmethod
    def build(cls, rows, generation: int) -> BM25Index:
        """rows: iterable of (id, kind, space-joined tokens)."""
        vocab: dict[str, int] = {}
        ids, kinds, cjk, tf = _count(rows, vocab)
        return cls(ids, kinds, vocab, tf, generation, cjk)

    def updated(self, remove: set[str], rows, generation: int) -> BM25Index:
        """A new index without the `remove` chunks and with `rows` added; only those are tokenized.
        The weights are recomputed for all (document frequencies and lengths change), vectorized."""
        keep = np.fromiter((cid not in remove for cid in self.ids), bool, len(self.ids))
        vocab = dict(self.vocab)  # this index may be serving a search right now: leave it untouched
        ids, kinds, cjk, added = _count(rows, vocab)
        kept = self.tf[keep]
        kept = sparse.csr_matrix((kept.data, kept.indices, kept.indptr), shape=(kept.shape[0], max(len(vocab), 1)))
        return BM25Index([cid for cid, k in zip(self.ids, keep) if k] + ids,
                         np.concatenate([self.kinds[keep], kinds]), vocab,
                         sparse.vstack([kept, added], format="csr"), generation,
                         np.concatenate([self.cjk[keep], cjk]))

    def mostly_cjk(self, ids: list[str]) -> set[str]:
        """Which of these chunks are written mostly in Chinese, Japanese or Korean."""
        if self._row is None:
            self._row = {cid: i for i, cid in enumerate(self.ids)}
        return {cid for cid in ids if (i := self._row.get(cid)) is not None and self.cjk[i]}

    def idf(self, term: str) -> float:
        """BM25's inverse document frequency of a token: a term few chunks hold weighs much."""
        j = self.vocab.get(term)
        df = 0 if j is None else int(self.weights.indptr[j + 1] - self.weights.indptr[j])
        return math.log(1.0 + (len(self.ids) - df + 0.5) / (df + 0.5))

    def df(self, term: str) -> int:
        """How many chunks hold the term."""
        j = self.vocab.get(term)
        return 0 if j is None else int(self.weights.indptr[j + 1] - self.weights.indptr[j])

    def scores_with(self, ids: list[str], tokens: list[str], idf: dict[str, float], k1: float = 1.2,
                    b: float = 0.75) -> dict[str, float]:
        """BM25 of the chunks `ids` for `tokens`, with the term weights `idf` given rather than this
        index's own (e.g. pooled over several knowledge bases, so scores compare across them)."""
        if self._row is None:
            self._row = {cid: i for i, cid in enumerate(self.ids)}
        if not self.ids:
            return {}
        avg = float(self.tf.sum()) / len(self.ids) or 1.0
        qtf = Counter(t for t in tokens if t in self.vocab)
        out: dict[str, float] = {}
        for cid in ids:
            i = self._row.get(cid)
            if i is None:
                continue
            lo, hi = self.tf.indptr[i], self.tf.indptr[i + 1]
            counts = dict(zip(self.tf.indices[lo:hi].tolist(), self.tf.data[lo:hi].tolist()))
            norm = k1 * (1 - b + b * sum(counts.values()) / avg)
            out[cid] = sum(n * idf.get(t, 0.0) * tf * (k1 + 1) / (tf + norm)
                           for t, n in qtf.items() if (tf := counts.get(self.vocab[t], 0.0)))
        return out

    def ids_of(self, kind: str) -> list[str]:
        """The ids of the chunks of `kind` ("doc" or "code"), worked out once (an update makes a new index)."""
        found = self._of_kind.get(kind)
        if found is None:
            wanted = 1 if kind == "code" else 0
            found = self._of_kind[kind] = [cid for cid, k in zip(self.ids, self.kinds) if k == wanted]
        return found

    def rows_of(self, ids: frozenset[str]) -> np.ndarray:
        """Which rows hold these chunks (a mask), worked out once per set."""
        mask = self._masks.get(ids)
        if mask is None:
            mask = np.fromiter((cid in ids for cid in self.ids), bool, len(self.ids))
            if len(self._masks) > 8:
                self._masks.clear()
            self._masks[ids] = mask
        return mask

    def search(self, tokens: list[str], k: int, kind: str | None = None,
               among: frozenset[str] | None = None) -> list[tuple[str, float]]:
        """The `k` best chunks for `tokens`, of `kind` (None: both), and only of `among` when given."""
        cols = [self.vocab[t] for t in tokens if t in self.vocab]
        if not cols or not self.ids:
            return []
        uniq, qtf = np.unique(np.asarray(cols), return_counts=True)
        scores = np.asarray(self.weights[:, uniq] @ qtf.astype(np.float32)).ravel()
        if kind:
            scores = np.where(self.kinds == (1 if kind == "code" else 0), scores, 0.0)
        if among is not None:
            scores = np.where(self.rows_of(among), scores, 0.0)
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top])]
        return [(self.ids[i], float(scores[i])) for i in top if scores[i] > 0]

    def save(self, folder: Path) -> None:
        """Write atomically: a reader sees the old index or the new one, never a mix."""
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".tmp-{os.getpid()}-{threading.get_ident()}.npz"
        tf = self.tf
        with open(tmp, "wb") as f:
            np.savez(f, tf_data=tf.data, indices=tf.indices, indptr=tf.indptr, shape=np.asarray(tf.shape),
                     kinds=self.kinds, cjk=self.cjk, meta=np.frombuffer(json.dumps(
                         {"ids": self.ids, "vocab": self.vocab, "generation": self.generation}).encode(), np.uint8))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, folder / "bm25.npz")

    @classmethod
    def load(cls, folder: Path) -> BM25Index | None:
        try:
            z = np.load(folder / "bm25.npz")
            meta = json.loads(z["meta"].tobytes().decode())
            if "tf_data" not in z.files:  # an index saved by an older version: the caller rebuilds it
                return None
            tf = sparse.csr_matrix((z["tf_data"], z["indices"], z["indptr"]), shape=tuple(z["shape"]))
            return cls(meta["ids"], z["kinds"], meta["vocab"], tf, meta["generation"], z["cjk"])
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):  # damaged: the caller rebuilds
            return None


def _count(rows, vocab: dict[str, int]):
    """Term counts of rows (id, kind, tokens) as a CSR matrix, growing `vocab` with new terms."""
    ids: list[str] = []
    kinds = array("b")
    cjk = array("b")
    indptr = array("q", [0])
    indices = array("i")  # compact: a list of Python ints costs ~9x more at 100k chunks
    counts = array("f")
    for cid, kind, toks in rows:
        ids.append(cid)
        kinds.append(1 if kind == "code" else 0)
        tf = Counter(toks.split())
        n_all = n_cjk = 0
        for t, c in tf.items():
            j = vocab.get(t)
            if j is None:
                j = vocab[t] = len(vocab)
            indices.append(j)
            counts.append(c)
            n_all += c
            if t[0] >= "\u3040":  # tokens are ASCII words or CJK pairs
                n_cjk += c
        cjk.append(1 if n_cjk > 0.3 * n_all else 0)
        indptr.append(len(indices))
    tf_m = sparse.csr_matrix((np.frombuffer(counts, np.float32), np.frombuffer(indices, np.int32),
                              np.frombuffer(indptr, np.int64)), shape=(len(ids), max(len(vocab), 1)))
    return ids, np.frombuffer(kinds, np.int8).copy(), np.frombuffer(cjk, np.int8).copy(), tf_m


def _bm25_weights(tf: sparse.csr_matrix, k1: float, b: float) -> sparse.csc_matrix:
    """BM25 term weights per (chunk, term), from raw counts; column-major for fast queries."""
    n = tf.shape[0]
    w = tf.copy()
    if n and w.nnz:
        doc_len = np.asarray(w.sum(axis=1)).ravel()
        avg = doc_len.mean() or 1.0
        df = np.bincount(w.indices, minlength=w.shape[1]).astype(np.float32)
        idf = np.log(1.0 + (n - df + 0.5) / (df + 0.5)).astype(np.float32)
        norm = (k1 * (1 - b + b * doc_len / avg)).astype(np.float32)
        row_of = np.repeat(np.arange(n), np.diff(w.indptr))
        w.data = (w.data * (k1 + 1) / (w.data + norm[row_of]) * idf[w.indices]).astype(np.float32)
    return w.tocsc()
