"""On a GPU each batch's pass runs as a TorchScript trace: one call from Python per batch.

The trace holds the whole pass from the padded batch on the device to its outputs: the attention mask
decided on the host (`masks.py`), the network, and the head (pooling and normalisation, or the score
head's logits). Every operator left outside, run eagerly from Python, would release the GIL and wait to
take it back behind a thread of pure Python, up to the 5 ms switch interval (see "Why" and the figures in
the README).

Why. An eager pass of a bge-large-shaped BERT is about 600 operators, each dispatched from Python through
transformers' module tree, and each releasing the GIL and taking it back. On a GPU that host work can be
what a batch of short texts waits on (on one H200 the encoder took about 34 ms a batch of 256 short texts
where the network alone ran one in 13.7 ms), and in a pipelined run (encoding ahead on one thread while mteb
evaluates the previous task on another) every operator also waits for the evaluating thread to give the
GIL back: up to Python's 5 ms switch interval each time that thread runs pure Python. A traced pass
runs the same recorded operators from C++ and releases the GIL once. Measured on 2 CPU cores with a
network of bge-large's 24 layers at a width whose arithmetic costs next to nothing, so that the time is
the host's (`python bench/traced_rate.py`: 16 batches of 4 short reviews, torch on one thread so that the
Python thread has the other core; medians of 5): 50.0 ms a pass eager, 36.5 ms with the network alone
traced and the head eager, 35.7 ms with the whole pass traced; beside a thread of pure-Python work 4,534 ms
eager, 108.4 ms with the head eager (its operators, about ten, each waited for the GIL), 61.0 ms with the whole
pass traced. The same embeddings to the last bit.

Why TorchScript, which PyTorch keeps in maintenance in favour of `torch.compile` and `torch.export`:
compiled graphs specialise on shapes (every batch of length-sorted texts has its own) or capture CUDA
graphs per shape after a compile of minutes, and an exported program's module dispatches its operators
from Python again. A trace replays the operators eager ran, with the JIT's optimisations off, so it
computes what eager computes; each input signature's trace is checked against eager on a batch of
another shape, and any failure or difference (a shape the trace baked in, a removed API) sends that
core back to eager passes for good (`TracedPass`).

On a CPU the passes stay eager: there the arithmetic dominates (m3e-small, 1,500 short texts, mean pooling,
two rounds: 19.10 / 18.83 s eager, 19.13 / 18.72 s traced) and a CPU run does not pipeline by default. The
GPU figures are for a session with a GPU: `bench/gpu.sh` times both (`bench/traced_rate.py`, and a
`make bench` run with the `trace` lever of `bench/lever_off.py` off).
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

logger = logging.getLogger(__name__)

Signature = tuple[tuple[str, int], ...]  # the inputs' names and ranks (a 4D mask or none trace apart)


def traces_on(device: str) -> bool:
    """Whether passes on `device` are traced: GPUs only (see the module's docstring)."""
    return device.startswith("cuda")


Step = Callable[[dict[str, torch.Tensor]], torch.Tensor]  # a padded batch on the device -> its outputs


def traced_pass(model: torch.nn.Module, step: Step, device: str, prepared_masks: bool) -> TracedPass | None:
    """The traced passes of `step` (the core's eager pass, computed with `model`) on `device`, or None for
    eager ones. Only networks that take the host-decided mask are traced (transformers' own BERT, RoBERTa
    and XLM-R with SDPA: `masks.py`): with the mask decided, no branch of their forward depends on a
    tensor's values, which a trace would freeze at the first batch's branch without the check on another
    shape noticing."""
    return TracedPass(model, step) if traces_on(device) and prepared_masks else None


class _Replay(torch.nn.Module):
    """The pass as a function of positional tensors: what a trace takes. `model` is registered so that the
    trace reads its parameters as the module's own (shared, not copied)."""

    def __init__(self, model: torch.nn.Module, step: Step, names: tuple[str, ...]) -> None:
        super().__init__()
        self.model, self.step, self.names = model, step, names

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        return self.step(dict(zip(self.names, tensors, strict=True)))


@dataclass
class _Trace:
    module: Any
    shape: tuple[int, ...]  # the batch it was recorded on
    checked: bool = False  # equal to eager on a batch of another shape


class TracedPass:
    """`step`'s outputs for a batch of named tensors, computed by a trace per input signature once one is
    recorded and checked (see the module's docstring), else eagerly."""

    def __init__(self, model: torch.nn.Module, step: Step) -> None:
        self.model, self.step = model, step
        self.traces: dict[Signature, _Trace] = {}
        self.failed = False  # a trace failed or differed: eager from then on
        self._lock = threading.Lock()  # recording and checking happen once, whichever thread comes first

    def eager(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """The outputs computed eagerly, operator by operator."""
        return self.step(inputs)

    def __call__(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.failed:
            return self.eager(inputs)
        signature = tuple((name, tensor.dim()) for name, tensor in inputs.items())
        trace = self.traces.get(signature)
        if trace is not None and trace.checked:
            return _run(trace.module, inputs)
        with self._lock:
            return self._record_or_check(signature, inputs)

    def _record_or_check(self, signature: Signature, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Record the signature's trace on this batch, or check it against eager on a batch of another shape."""
        outputs = self.eager(inputs)
        if self.failed:  # another thread's check failed while this one waited
            return outputs
        trace = self.traces.get(signature)
        shape = tuple(inputs["input_ids"].shape)
        try:
            if trace is None:
                self.traces[signature] = _Trace(_record(_Replay(self.model, self.step, tuple(inputs)), inputs), shape)
            elif trace is not None and not trace.checked and shape != trace.shape:
                trace.checked = self._same(_run(trace.module, inputs), outputs)
        except Exception as exc:  # any failure of the trace leaves the eager result standing
            self._give_up(f"{type(exc).__name__}: {exc}")
        return outputs

    def _same(self, traced: torch.Tensor, eager: torch.Tensor) -> bool:
        if torch.equal(traced, eager):
            return True
        self._give_up(f"its output differed from eager by {float((traced - eager).abs().max()):.3g}")
        return False

    def _give_up(self, why: str) -> None:
        logger.info("forward passes stay eager: the traced pass failed its check (%s)", why)
        self.failed = True


def _record(replay: _Replay, inputs: dict[str, torch.Tensor]) -> Any:
    # The tracer reads every property of the modules, transformers' training-loss one included, which then
    # warns about a loss no pass computes.
    transformers_log = logging.getLogger("transformers.modeling_utils")
    level = transformers_log.level
    transformers_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's notes and the API's deprecation (see the docstring)
            with torch.jit.optimized_execution(False):
                return torch.jit.trace(replay, tuple(inputs.values()), check_trace=False)
    finally:
        transformers_log.setLevel(level)


def _run(module: Callable[..., torch.Tensor], inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    with torch.jit.optimized_execution(False):  # the recorded operators as they are: what eager runs
        return module(*inputs.values())
