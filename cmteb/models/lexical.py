"""The lexical baseline `bm25`: a floor beside every dense model, with no weights.

Retrieval and Reranking: BM25 (`bm25s`'s scoring) as an mteb search model, so mteb's retrieval
evaluation computes the metrics; Chinese text is cut into overlapping character bigrams (see
`chinese_bigrams`; jieba words were measured too: `bench/bm25_full.py`). A reranking query
scores every one of its own candidates. `bm25_index` says why the index is built with numpy.

The other task types: a character n-gram TF-IDF vector (scikit-learn), its idf fitted on the
texts of the task being evaluated (as an unsupervised lexical baseline is), hashed to a fixed
feature space, projected to a dense vector of fixed width by a seeded sparse random projection
and L2-normalised: deterministic, and cosine-comparable like a dense embedding.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

#: The name the baseline's results are filed under, and the reserved `--model` value that asks for it.
LEXICAL_NAME = "cmteb/bm25"
LEXICAL_ARGUMENT = "bm25"

#: The CJK ranges whose characters are cut into bigrams, as (first, last) code points.
CJK_RANGES = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF))
_CJK = "".join(f"{chr(first)}-{chr(last)}" for first, last in CJK_RANGES)
#: A run of CJK characters, or a run of other letters and digits (a word of Latin script, a number).
_RUNS = re.compile(f"([{_CJK}]+)|([^\\W_{_CJK}]+)")
#: A run of letters or digits outside the CJK ranges: one token.
OTHER_WORD = re.compile(f"[^\\W_{_CJK}]+")


@dataclass(frozen=True)
class LexicalSettings:
    """Everything that determines the baseline's scores; its hash is the results' revision."""

    tokenizer: str = "char-bigram"  # or "jieba"
    k1: float = 1.5  # bm25s' defaults (method lucene)
    b: float = 0.75
    method: str = "lucene"
    ngram_range: tuple[int, int] = (1, 2)  # characters, for the TF-IDF vectors
    hashed_features: int = 2**18
    width: int = 768
    features_per_dimension: int = 16  # dimensions each hashed feature reaches, about
    seed: int = 0

    def fingerprint(self) -> str:
        """A 16-hex-digit hash of the settings."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]


def chinese_bigrams(text: str) -> list[str]:
    """Overlapping character bigrams of each run of CJK characters (a lone character stays a unigram),
    and whole words of other scripts, after NFKC and lower-casing: `北京大学 AI` -> 北京, 京大, 大学, ai."""
    tokens: list[str] = []
    for cjk, word in _RUNS.findall(unicodedata.normalize("NFKC", text).lower()):
        if word:
            tokens.append(word)
        elif len(cjk) == 1:
            tokens.append(cjk)
        else:
            tokens.extend(cjk[k : k + 2] for k in range(len(cjk) - 1))
    return tokens


def jieba_words(text: str) -> list[str]:
    """jieba's words (its default dictionary, precise mode), letters and digits only, lower-cased."""
    import jieba

    jieba.setLogLevel(60)  # its dictionary-loading messages are not the run's
    normal = unicodedata.normalize("NFKC", text).lower()
    return [w for w in jieba.lcut(normal) if _RUNS.fullmatch(w)]


TOKENIZERS = {"char-bigram": chinese_bigrams, "jieba": jieba_words}


def lexical_search(settings: LexicalSettings) -> Any:
    """BM25 with the settings' tokenizer, as an mteb search model (`bm25_index.ChineseBM25`)."""
    from functools import partial

    from cmteb.models.bm25_index import ChineseBM25, bigram_counts, token_counts

    tokenize = TOKENIZERS[settings.tokenizer]
    count = bigram_counts if tokenize is chinese_bigrams else partial(token_counts, tokenize=tokenize)
    return ChineseBM25(tokenize, count, k1=settings.k1, b=settings.b, method=settings.method)


def sparse_projection(settings: LexicalSettings) -> Any:
    """A seeded sparse random projection `[hashed_features, width]`: each feature goes to
    `features_per_dimension` random dimensions with random signs, scaled by 1/sqrt of that number, so
    dot products are kept in expectation. Why not sklearn's `SparseRandomProjection`: at this shape it
    takes 8.7 s to draw its matrix (this takes milliseconds), and its default density (1 / sqrt of the
    features) would send about half the hashed n-grams to no dimension at all."""
    from scipy import sparse

    rng = np.random.default_rng(settings.seed)
    per_feature = min(settings.features_per_dimension, settings.width)
    shape = (settings.hashed_features, per_feature)
    columns = rng.integers(0, settings.width, size=shape)
    values = rng.choice(np.array([-1.0, 1.0]), size=shape) / np.sqrt(per_feature)
    rows = np.arange(0, settings.hashed_features * per_feature + 1, per_feature)
    matrix = sparse.csr_matrix(
        (values.ravel(), columns.ravel(), rows), shape=(settings.hashed_features, settings.width)
    )
    matrix.sum_duplicates()  # two draws of one dimension add up
    return matrix


class TfidfProjector:
    """Character n-gram TF-IDF, hashed, projected to `width` dimensions, L2-normalised (module docstring)."""

    def __init__(self, settings: LexicalSettings) -> None:
        from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer

        self.settings = settings
        # Hashing, not a fitted vocabulary: the features of a text never depend on which other texts
        # came with it, so the two sides of a pair land in one space.
        self.counts = HashingVectorizer(
            analyzer="char",
            ngram_range=settings.ngram_range,
            n_features=settings.hashed_features,
            alternate_sign=False,
            norm=None,
            lowercase=True,
            preprocessor=lambda text: unicodedata.normalize("NFKC", text).lower(),
        )
        self.tfidf = TfidfTransformer(sublinear_tf=True, smooth_idf=True, norm="l2")
        self.matrix = sparse_projection(settings)

    def fit(self, texts: list[str]) -> TfidfProjector:
        """Fit the idf on `texts` (the task's own)."""
        self.tfidf.fit(self.counts.transform(texts))
        return self

    def weights(self, texts: list[str]) -> Any:
        """The sparse TF-IDF rows of `texts` (each L2-normalised)."""
        return self.tfidf.transform(self.counts.transform(texts))

    def embed(self, texts: list[str]) -> np.ndarray:
        """Dense, L2-normalised float32 vectors `[len(texts), width]`."""
        dense = np.asarray((self.weights(texts) @ self.matrix).todense(), dtype=np.float64)
        norms = np.linalg.norm(dense, axis=1, keepdims=True)
        return (dense / np.where(norms == 0, 1.0, norms)).astype(np.float32)
