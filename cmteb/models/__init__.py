"""The model families and cores: which family a model belongs to and how it runs (`families`, `st_files`,
`instructions`), the dense encoder and cross-encoder cores with their loading, tokenising and batching, the
embedding cache, and the adapters that present the cores to mteb. Two subpackages: `lexical/` (the `bm25`
baseline, no weights) and `speed/` (devices that make a forward pass cheaper without changing it)."""
