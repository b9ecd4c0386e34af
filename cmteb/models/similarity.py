"""Cosine similarity for cmteb's mteb models: as mteb's `cos_sim` computes it, without `torch.compile`.

Why not mteb's: on H100/H200-class GPUs (compute capability 9.0, also 7.0 and 8.0) `cos_sim` wraps a
row normalisation and one matrix product in `torch.compile`, and the first retrieval task of a run
waits for inductor to compile it (seen in a profile of T2Retrieval on one H200; plain mteb's
sentence-transformers wrapper scores with its own uncompiled function). Here the same
two operations run eagerly in fp32, on the model's device, so exact search scores a chunk where its
embeddings were made and copies only each query's top candidates back.
"""

from __future__ import annotations

from typing import Any

import torch


def _rows(embeddings: Any, device: str) -> torch.Tensor:
    """`embeddings` as a 2-D float32 tensor on `device` (one row per embedding)."""
    tensor = torch.as_tensor(embeddings).to(device=device, dtype=torch.float32)
    return tensor.reshape(1, -1) if tensor.dim() == 1 else tensor


class CosineScores:
    """Mixin for an mteb encoder whose similarity is cosine: `similarity` on the host, as mteb's, and
    `scores_on_device` that leaves the score matrix on `score_device` for a search to cut there."""

    score_device: str = "cpu"

    def scores_on_device(self, embeddings1: Any, embeddings2: Any) -> torch.Tensor:
        """cos(embeddings1[i], embeddings2[j]) for every i, j, on `score_device`."""
        a, b = _rows(embeddings1, self.score_device), _rows(embeddings2, self.score_device)
        return torch.nn.functional.normalize(a, p=2, dim=1) @ torch.nn.functional.normalize(b, p=2, dim=1).T

    def similarity(self, embeddings1: Any, embeddings2: Any) -> torch.Tensor:
        """cos(embeddings1[i], embeddings2[j]) for every i, j, on the host (mteb's `EncoderProtocol.similarity`)."""
        return self.scores_on_device(embeddings1, embeddings2).cpu()
