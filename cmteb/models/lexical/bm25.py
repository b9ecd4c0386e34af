"""BM25 over a Chinese corpus at full size in seconds: token counts by numpy, scores by bm25s.

Why not mteb's `BM25Search` as it is: at T2Retrieval's size (118,605 passages of ~900
characters) its tokenizer and bm25s' indexing walk about 100 million tokens as Python strings,
several times over: 218 s and 9 GiB to index, 66 s to search (`bench/bm25_full.py`). Here the
character bigrams of the whole corpus are counted at once with numpy into a sparse
term-frequency matrix, the BM25 weights come from bm25s' own scoring functions applied to that
matrix (bm25s invites replacing its index builder), and bm25s scores the queries.
"""

from __future__ import annotations

import functools
import os
import re
import unicodedata
from collections.abc import Callable, Sequence
from typing import Any

import bm25s
import numpy as np
import pandas as pd
from bm25s.scoring import _select_idf_scorer, _select_tfc_scorer
from scipy import sparse

from cmteb.columns import column_values
from cmteb.models.lexical.tokens import CJK_RANGES, OTHER_WORD

#: Tokens found in this share of the documents or more are left out (mteb's BM25 without a stopword list).
COMMON_SHARE = 0.9
_SHIFT = 21  # code points need 21 bits: a bigram's key is (first << 21) | second


def _is_cjk(points: np.ndarray) -> np.ndarray:
    inside = np.zeros(len(points), dtype=bool)
    for first, last in CJK_RANGES:
        inside |= (points >= first) & (points <= last)
    return inside


def bigram_counts(texts: Sequence[str]) -> tuple[sparse.csr_matrix, list[str]]:
    """The term-frequency matrix `[len(texts), vocabulary]` of `tokens.chinese_bigrams` tokens and its
    vocabulary, computed for all texts at once (the same counts as that function, text by text)."""
    normal = _normalized(texts)
    points = np.frombuffer("\n".join(normal).encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
    doc = np.cumsum(points == ord("\n"))  # the text each position belongs to
    cjk = _is_cjk(points)
    pair = cjk[:-1] & cjk[1:]
    before = np.concatenate([[False], cjk[:-1]])
    after = np.concatenate([cjk[1:], [False]])
    lone = cjk & ~before & ~after
    words = [(k, w) for k, t in enumerate(normal) for w in OTHER_WORD.findall(t)]
    word_ids = {w: -(k + 1) for k, w in enumerate(dict.fromkeys(w for _, w in words))}  # negative keys
    keys = np.concatenate(
        [(points[:-1][pair] << _SHIFT) | points[1:][pair], points[lone], [word_ids[w] for _, w in words]]
    ).astype(np.int64)
    rows = np.concatenate([doc[:-1][pair], doc[lone], [k for k, _ in words]]).astype(np.int64)
    columns, unique = pd.factorize(keys)  # a hash table: np.unique would sort 100 million keys
    counts = sparse.csr_matrix(
        (np.ones(len(keys), dtype=np.int32), (rows, columns)), shape=(len(texts), len(unique))
    )  # repeated (text, token) entries add up
    by_word = {key: w for w, key in word_ids.items()}
    vocabulary = [by_word[k] if k < 0 else _key_text(int(k)) for k in unique.tolist()]
    return counts, vocabulary


@functools.cache
def _folding() -> tuple[dict[int, str], re.Pattern[str]]:
    """What NFKC and lower-casing make of each character of the Basic Multilingual Plane that they change
    on its own (for `str.translate`), and a pattern of the characters whose result depends on their
    neighbours (combining marks, Hangul jamo, capital sigma) or that lie beyond that plane."""
    table, context = {}, []
    for point in range(0x10000):
        char = chr(point)
        if unicodedata.combining(char) or 0x1100 <= point <= 0x11FF or 0xD800 <= point <= 0xDFFF or char == "Σ":
            context.append(point)
            continue
        folded = unicodedata.normalize("NFKC", char).lower()
        if folded != char:
            table[point] = folded
    ranges = "".join(
        f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in _ranges(context) if a >= 0xE000 or b < 0xD800
    )
    return table, re.compile(f"[{ranges}\\U00010000-\\U0010ffff]")


def _ranges(points: list[int]) -> list[tuple[int, int]]:
    """Sorted code points as (first, last) runs."""
    runs: list[tuple[int, int]] = []
    for point in points:
        if runs and runs[-1][1] == point - 1:
            runs[-1] = (runs[-1][0], point)
        else:
            runs.append((point, point))
    return runs


def _normalized(texts: Sequence[str]) -> list[str]:
    """The texts after NFKC and lower-casing, newlines made spaces: by `str.translate` where no character
    depends on its neighbours (17 s of `unicodedata.normalize` at T2Retrieval's size, 2 s this way)."""
    table, context = _folding()
    return [
        (unicodedata.normalize("NFKC", t).lower() if context.search(t) else t.translate(table)).replace("\n", " ")
        for t in texts
    ]


def _key_text(key: int) -> str:
    first = key >> _SHIFT
    return chr(first) + chr(key & ((1 << _SHIFT) - 1)) if first else chr(key)


def token_counts(texts: Sequence[str], tokenize: Callable[[str], list[str]]) -> tuple[sparse.csr_matrix, list[str]]:
    """The term-frequency matrix of any tokenizer's tokens, text by text (the path for jieba words)."""
    vocabulary: dict[str, int] = {}
    rows, columns = [], []
    for k, text in enumerate(texts):
        ids = [vocabulary.setdefault(t, len(vocabulary)) for t in tokenize(text)]
        rows.extend([k] * len(ids))
        columns.extend(ids)
    data = np.ones(len(rows), dtype=np.int32)
    return sparse.csr_matrix((data, (rows, columns)), shape=(len(texts), len(vocabulary))), list(vocabulary)


def drop_common(counts: sparse.csr_matrix, vocabulary: list[str], share: float) -> tuple[Any, list[str]]:
    """Leave out tokens found in `share` of the texts or more, as mteb's BM25 does without a stopword list."""
    found_in = np.diff(counts.tocsc().indptr)
    keep = np.flatnonzero(found_in / max(1, counts.shape[0]) < share)
    return counts[:, keep], [vocabulary[k] for k in keep]


class CountsBM25(bm25s.BM25):
    """bm25s, indexed from a term-frequency matrix instead of token lists."""

    def index_counts(self, counts: sparse.csr_matrix, vocabulary: list[str]) -> None:
        """Index the texts whose term frequencies are `counts` (columns named by `vocabulary`): the same
        weights as `bm25s.BM25.index` on the texts' tokens, for methods without a non-occurrence term."""
        if self.method in self.methods_requiring_nonoccurrence:
            raise ValueError(f"method {self.method} needs bm25s' own index")
        # An empty token in no text, as bm25s' own index adds: a query of unknown tokens then scores 0
        # even when every token was left out.
        counts = sparse.hstack([counts, sparse.csr_matrix((counts.shape[0], 1), dtype=counts.dtype)], format="csr")
        vocabulary = [*vocabulary, ""]
        entries = counts.tocoo()
        lengths = np.asarray(counts.sum(axis=1)).ravel().astype(self.dtype)
        found_in = np.bincount(entries.col, minlength=counts.shape[1])
        idf_of = _select_idf_scorer(self.idf_method)
        idf = np.fromiter((idf_of(int(n), N=counts.shape[0]) for n in found_in), self.dtype, counts.shape[1])
        tf = entries.data.astype(self.dtype)
        tfc = _select_tfc_scorer(self.method)(tf, lengths[entries.row], lengths.mean(), self.k1, self.b, self.delta)
        weights = sparse.csc_matrix(
            ((idf[entries.col] * tfc).astype(self.dtype), (entries.row, entries.col)), shape=counts.shape
        )
        self.scores = {
            "data": weights.data,
            "indices": weights.indices.astype(self.int_dtype),
            "indptr": weights.indptr,
            "num_docs": counts.shape[0],
        }
        self.vocab_dict = {token: k for k, token in enumerate(vocabulary)}
        self.unique_token_ids_set = set(self.vocab_dict.values())
        self.nonoccurrence_array = None


class ChineseBM25:
    """BM25 as an mteb search model (mteb's `SearchProtocol`: `index` a corpus, then `search` queries), so
    mteb's retrieval evaluation computes every metric. A reranking query scores each of its candidates."""

    def __init__(
        self,
        tokenize: Callable[[str], list[str]],
        count: Callable[[list[str]], tuple[sparse.csr_matrix, list[str]]],
        *,
        k1: float,
        b: float,
        method: str,
    ) -> None:
        self.tokenize = tokenize  # queries
        self.count = count  # the corpus, all at once: the same tokens counted
        self.retriever = CountsBM25(k1=k1, b=b, method=method)
        self.doc_ids: np.ndarray = np.array([], dtype=object)

    def index(self, corpus: Any, **kwargs: Any) -> None:
        """Index the corpus (title and text, as mteb's BM25 joins them)."""
        # Columns read in one slice each: iterating a `datasets` column formats it row by row.
        titles = column_values(corpus, "title") if "title" in corpus.column_names else [""] * len(corpus)
        texts = [f"{title or ''}\n{text}" for title, text in zip(titles, column_values(corpus, "text"), strict=True)]
        self.retriever.index_counts(*drop_common(*self.count(texts), COMMON_SHARE))
        self.doc_ids = np.array(column_values(corpus, "id"), dtype=object)

    def search(self, queries: Any, *, top_k: int, top_ranked: Any = None, **kwargs: Any) -> dict[str, dict[str, float]]:
        """Each query's top `top_k` documents with their scores, or its candidates' scores when reranking."""
        query_ids = column_values(queries, "id")
        tokens = [self.tokenize(text) for text in column_values(queries, "text")]
        if top_ranked:
            position = {doc_id: k for k, doc_id in enumerate(self.doc_ids)}
            results = {}
            for query_id, query in zip(query_ids, tokens, strict=True):
                scores = self.retriever.get_scores_from_ids(self.retriever.get_tokens_ids(query))  # [] allowed
                candidates = [d for d in top_ranked.get(query_id, []) if d in position]
                results[query_id] = {d: float(scores[position[d]]) for d in candidates}
            return results
        found, scores = self.retriever.retrieve(
            tokens, k=min(top_k, len(self.doc_ids)), show_progress=False, n_threads=os.cpu_count() or 1
        )
        return {
            query_id: dict(zip(self.doc_ids[row].tolist(), values.tolist(), strict=True))
            for query_id, row, values in zip(query_ids, found, scores, strict=True)
        }
