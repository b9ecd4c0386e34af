"""cmteb's cosine scores equal mteb's `cos_sim`, and never go through torch.compile."""

from __future__ import annotations

import mteb.similarity_functions as mteb_similarity
import numpy as np
import pytest
import torch

from cmteb.models.similarity import CosineScores


def test_equal_to_mteb_cos_sim_without_compiling(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    queries, docs = rng.normal(size=(7, 16)).astype(np.float32), rng.normal(size=(40, 16)).astype(np.float32)
    expected = mteb_similarity.cos_sim(queries, docs)  # on this CPU machine mteb does not compile

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("torch.compile called")

    # As on an H100: mteb would compile here; cmteb's scores must not.
    monkeypatch.setattr(mteb_similarity, "_use_torch_compile", lambda: True)
    monkeypatch.setattr(torch, "compile", refuse)
    with pytest.raises(AssertionError, match=r"torch\.compile called"):
        mteb_similarity.cos_sim(torch.from_numpy(queries), torch.from_numpy(docs))
    scores = CosineScores()
    got = scores.similarity(queries, docs)
    assert got.device.type == "cpu" and got.dtype == torch.float32 and got.shape == (7, 40)
    assert torch.equal(got, torch.as_tensor(expected))
    one = scores.similarity(queries[0], docs)  # a single embedding is one row (another product shape: float noise)
    assert one.shape == (1, 40) and torch.allclose(one, got[:1], atol=1e-6)
    assert torch.equal(scores.scores_on_device(queries, docs), got)
