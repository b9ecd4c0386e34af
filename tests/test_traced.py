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
from cmteb.models.speed.traced import TracedPass, traced_pass, traces_on


def _traced_and_eager(core, compute):
    """`compute()` with the core's passes traced (as on a GPU), then eager."""
    core.traced = TracedPass(core.model, core.eager_outputs)
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
    baked = _BakesItsLength()
    network = TracedPass(baked, lambda inputs: baked(**inputs).last_hidden_state)
    first, other = torch.ones(2, 3, dtype=torch.long), torch.ones(2, 5, dtype=torch.long)
    for ids in (first, other, other, first):
        assert torch.equal(network({"input_ids": ids}), ids.float() + torch.arange(ids.shape[1]))
    assert network.failed


def test_passes_are_traced_on_gpus_only_for_networks_with_host_decided_masks(tiny_bert):
    assert traces_on("cuda") and traces_on("cuda:1") and not traces_on("cpu")
    core = BGEEncoder.load(str(tiny_bert), pooling="cls")
    assert core.prepared_masks and core.traced is None  # a CPU core: eager passes
    assert isinstance(traced_pass(core.model, core.eager_outputs, "cuda:0", True), TracedPass)
    # another network's forward may branch on its inputs' values, which a trace would freeze
    assert traced_pass(core.model, core.eager_outputs, "cuda:0", False) is None
    assert traced_pass(core.model, core.eager_outputs, "cpu", True) is None


def test_the_benchmarks_trace_lever_makes_gpu_passes_eager(monkeypatch):
    from levers import LEVERS

    from cmteb.models import core

    monkeypatch.setattr(core, "traced_pass", core.traced_pass)  # put back after the test
    linear = torch.nn.Linear(1, 1)
    assert core.traced_pass(linear, linear, "cuda", True) is not None
    LEVERS["trace"]()
    assert core.traced_pass(linear, linear, "cuda", True) is None


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_once_checked_a_pass_runs_no_python_of_the_core(tiny_bert, pooling, monkeypatch):
    """The head (pooling, normalisation) and the mask's 4D form are inside the trace: after the traces are
    checked, a batch calls neither the network's nor the head's Python (each would be operators from Python,
    each waiting for the GIL behind another thread)."""
    from cmteb.models.speed import traced

    eager = BGEEncoder.load(str(tiny_bert), pooling=pooling, batch_size=2, cpu_streams=1).encode(TEXTS)
    monkeypatch.setattr(traced, "traces_on", lambda device: True)  # the core traces as it would on a GPU
    core = BGEEncoder.load(str(tiny_bert), pooling=pooling, batch_size=2, cpu_streams=1)
    core.encode(TEXTS)  # records and checks both signatures
    assert all(trace.checked for trace in core.traced.traces.values())
    called: list[str] = []
    for name in ("network", "head"):
        monkeypatch.setattr(core, name, lambda *args, name=name: called.append(name))
    assert np.array_equal(core.encode(TEXTS), eager) and called == []


def test_a_gpu_batch_travels_as_one_array(monkeypatch):
    """Pinning and copying each column would be two operators from Python per column; one array is two."""
    from cmteb.models import batching

    calls: list[tuple[str, tuple, dict]] = []

    def pin(self):
        calls.append(("pin", tuple(self.shape), {}))
        return self.clone()  # a new tensor, as pinning makes

    def to(self, *args, **kwargs):
        calls.append(("to", tuple(self.shape), {"args": args, **kwargs}))
        return self.clone()

    monkeypatch.setattr(torch.Tensor, "pin_memory", pin)
    monkeypatch.setattr(torch.Tensor, "to", to)
    batch = {
        "input_ids": torch.tensor([[101, 5, 102], [101, 102, 0]]),
        "token_type_ids": torch.zeros(2, 3, dtype=torch.long),
        "attention_mask": torch.tensor([[1, 1, 1], [1, 1, 0]]),
    }
    moved = batching.to_device(batch, "cuda")
    # One [columns, batch, length] array: pinned once, sent once, without waiting for the copy.
    assert calls == [("pin", (3, 2, 3), {}), ("to", (3, 2, 3), {"args": ("cuda",), "non_blocking": True})]
    assert list(moved) == list(batch) and all(torch.equal(moved[name], batch[name]) for name in batch)
    assert batching.to_device(batch, "cpu") is batch and len(calls) == 2  # a CPU batch is not copied
