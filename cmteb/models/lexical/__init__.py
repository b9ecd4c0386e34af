"""The lexical baseline `bm25`: a floor beside every dense model, with no weights.

Retrieval and Reranking: BM25 (`bm25s`'s scoring) as an mteb search model, so mteb's retrieval
evaluation computes the metrics; Chinese text is cut into overlapping character bigrams (see
`chinese_bigrams`; jieba words were measured too: `bench/bm25_full.py`). A reranking query
scores every one of its own candidates. `bm25` says why the index is built with numpy.

The other task types: a character n-gram TF-IDF vector (scikit-learn), its idf fitted on the
texts of the task being evaluated (as an unsupervised lexical baseline is), hashed to a fixed
feature space, projected to a dense vector of fixed width by a seeded sparse random projection
and L2-normalised: deterministic, and cosine-comparable like a dense embedding.
"""
