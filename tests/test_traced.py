"""Forward passes replayed from a trace: the same outputs as eager, checked per input signature on a batch
of another shape, and eager for good once a trace fails or differs."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from test_masks import TEXTS

from cmteb.models.encoder import BGEEncoder
from cmteb.models.reranker import BGEReranker
from cmteb.models.traced import TracedNetwork, traced_network, traces_on


def _traced_and_eager(core, compute):
    """`compute()` with the core's passes traced (as on a GPU), then eager."""
    core.traced = TracedNetwork(core.model, core.OUTPUT_FIELD)
    traced = compute()
    network, core.traced = core.traced, None
    return traced, compute(), network


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_traced_embeddings_equal_eager_to_the_last_bit(tiny_bert, pooling):
    core = BGEEncoder.load(str(tiny_bert), pooling=pooling, batch_size=2, cpu_streams=1)
    traced, eager, network = _traced_and_eager(core, lambda: core.encode(TEXTS))
    assert np.array_equal(traced, eager)
    assert not network.failed
    # one trace with the 4D mask, one without; each checked on a batch of another shape, then used
    assert len(network.traces) == 2 and all(trace.checked for trace in network.traces.values())


def test_traced_reranker_scores_equal_eager_to_the_last_bit(tiny_cross_encoder):
    core = BGEReranker.load(str(tiny_cross_encoder), batch_size=2, cpu_streams=1)
    pairs = [(TEXTS[i], TEXTS[-1 - i]) for i in range(len(TEXTS))]
    traced, eager, network = _traced_and_eager(core, lambda: core.score(pairs))
    assert np.array_equal(traced, eager)
    assert not network.failed and any(trace.checked for trace in network.traces.values())


class _BakesItsLength(torch.nn.Module):
    """A network whose Python reads its input's length as a number: a trace keeps the first batch's."""

    def forward(self, input_ids: torch.Tensor) -> SimpleNamespace:
        positions = torch.arange(int(input_ids.shape[1]), dtype=torch.float32)
        return SimpleNamespace(last_hidden_state=input_ids.float() + positions)


def test_a_trace_that_differs_from_eager_sends_the_network_back_to_eager():
    network = TracedNetwork(_BakesItsLength(), "last_hidden_state")
    first, other = torch.ones(2, 3, dtype=torch.long), torch.ones(2, 5, dtype=torch.long)
    for ids in (first, other, other, first):
        assert torch.equal(network({"input_ids": ids}), ids.float() + torch.arange(ids.shape[1]))
    assert network.failed


def test_passes_are_traced_on_gpus_only_for_networks_with_host_decided_masks(tiny_bert):
    assert traces_on("cuda") and traces_on("cuda:1") and not traces_on("cpu")
    core = BGEEncoder.load(str(tiny_bert), pooling="cls")
    assert core.prepared_masks and core.traced is None  # a CPU core: eager passes
    assert isinstance(traced_network(core.model, "last_hidden_state", "cuda:0", True), TracedNetwork)
    # another network's forward may branch on its inputs' values, which a trace would freeze
    assert traced_network(core.model, "last_hidden_state", "cuda:0", False) is None
    assert traced_network(core.model, "last_hidden_state", "cpu", True) is None


def test_the_benchmarks_trace_lever_makes_gpu_passes_eager(monkeypatch):
    from bench.lever_off import LEVERS
    from cmteb.models import core

    monkeypatch.setattr(core, "traced_network", core.traced_network)  # put back after the test
    assert core.traced_network(torch.nn.Linear(1, 1), "last_hidden_state", "cuda", True) is not None
    LEVERS["trace"]()
    assert core.traced_network(torch.nn.Linear(1, 1), "last_hidden_state", "cuda", True) is None
