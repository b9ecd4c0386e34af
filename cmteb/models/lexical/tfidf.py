"""The baseline's vectors for the task types that are not search: character n-gram TF-IDF, hashed, projected
to a dense vector of fixed width and L2-normalised."""

from __future__ import annotations

import unicodedata
from typing import Any

import numpy as np

from cmteb.models.lexical.settings import LexicalSettings


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
