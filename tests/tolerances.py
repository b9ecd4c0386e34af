"""Tolerances derived from fp32 arithmetic, for tests that must hold on any x86-64 CPU.

Two correct fp32 computations of one result differ when their sums run in another order: another ISA level
(default, AVX2, AVX-512), another GEMM blocking for another matrix shape, another batch. Reordering a dot
product of K terms moves it by about eps x sqrt(K) relative to the magnitude of what is summed (the
probabilistic bound of Higham and Mary, 2019); a layer's output is then off by that times its own scale.
These bounds are 10x and more what was measured across ISA levels (`make test-arith` runs the sensitive tests
under default and AVX2 arithmetic), while a real error (a wrong mask row, a missed token) moves a value by
1e-2 and more.
"""

from __future__ import annotations

import math

import numpy as np

EPS32 = float(np.finfo(np.float32).eps)


def reordered(reduction: int, scale: float) -> float:
    """The absolute difference two orders of a `reduction`-term fp32 sum can give, for outputs of `scale`."""
    return EPS32 * math.sqrt(reduction) * scale


def assert_same_embeddings(ours: np.ndarray, expected: np.ndarray, config) -> None:
    """Each row of `ours` within the relative drift fp32 arithmetic allows a network of `config`'s shape
    (`results/probe.py: drift_threshold`, the bound `cmteb compare` holds two runs of one model to)."""
    from cmteb.results.probe import drift_threshold

    bound = drift_threshold(config.num_hidden_layers, config.intermediate_size)
    drift = np.linalg.norm(ours - expected, axis=1) / np.linalg.norm(expected, axis=1)
    assert drift.max() <= bound, f"largest relative drift {drift.max():.2e} beyond the {bound:.2e} fp32 allows"
