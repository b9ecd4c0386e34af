"""The model cores (dense encoder, cross-encoder reranker), their loading and batching, per-model defaults,
and the adapters that present them to mteb."""
