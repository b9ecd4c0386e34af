"""How far float noise can move a task's score: measured in the run, read by `cmteb compare`.

Two machines compute the same model's outputs with different last bits (`runner/arithmetic.py`). A task
whose score rests on a classifier fit, a k-means run or a handful of ties can turn such bits into points;
one of many texts cannot. Which is which is measured, not guessed: after a task is evaluated, it is
evaluated again `--noise-draws` times (NOISE_DRAWS by default with `--subsample`) with every embedding (or
reranker score) moved by a random relative amount of the probe's threshold (`results/probe.py:
drift_threshold`, the largest drift fp32 arithmetic alone can give: any drift `compare` calls arithmetic is
at most this, and it is 15 times the drift measured between ISA levels), the same move for the same text
within a draw. The largest change of the task's score over the draws is the task's noise; `compare` does
not call a change within it a regression. (An 18-text clustering measured 1.26 points this way: exactly the
move seen between an AVX2 and an AVX-512 machine.)

The perturbed evaluations read the embeddings the task's own evaluation left in the cache: they cost the
evaluator's time (a quick `--subsample` run: about 4 s for all 31 tasks a draw on 2 cores), not the model's.
Runs without `--subsample` measure nothing unless `--noise-draws` asks.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from cmteb.models.adapter import BGEModel, BGERerankerModel, loader_texts
from cmteb.runner.probe import pair_key


def _draw_rng(key: bytes, draw: int) -> np.random.Generator:
    seed = hashlib.blake2b(key + draw.to_bytes(4, "little"), digest_size=8).digest()
    return np.random.default_rng(int.from_bytes(seed, "little"))


def perturbed_vectors(vectors: np.ndarray, texts: Sequence[str], size: float, draw: int, normalize: bool) -> np.ndarray:
    """`vectors` each moved by a random direction of relative length `size` (about), decided by its text and
    the draw alone; back on the unit sphere when the model normalises."""
    if size == 0:
        return vectors
    out = np.empty_like(vectors)
    dim = vectors.shape[1]
    for k, (vector, text) in enumerate(zip(vectors, texts, strict=True)):
        direction = _draw_rng(text.encode("utf-8"), draw).standard_normal(dim) / np.sqrt(dim)
        moved = vector.astype(np.float64) + size * np.linalg.norm(vector) * direction
        out[k] = moved / np.linalg.norm(moved) if normalize else moved
    return out


def perturbed_scores(scores: np.ndarray, keys: Sequence[bytes], size: float, draw: int) -> np.ndarray:
    """Reranker scores each moved by a random relative amount `size` of max(|score|, 1) (`results/probe.py`'s
    scale for a score), decided by its pair and the draw alone."""
    moves = np.array([_draw_rng(key, draw).standard_normal() for key in keys])
    return (scores + size * np.maximum(np.abs(scores), 1.0) * moves).astype(scores.dtype)


class PerturbedEmbedder(BGEModel):
    """The run's embedder, its outputs moved as `perturbed_vectors` moves them; it shares the run's cache."""

    def __init__(self, model: BGEModel, size: float, draw: int) -> None:
        self.__dict__.update(model.__dict__)
        self.prefetcher = None  # every text of the task is cached by its own evaluation
        self.probe = None  # the probe is the unperturbed model's
        self.size, self.draw = size, draw

    def encode(self, inputs: Any, **kwargs: Any) -> np.ndarray:
        """The cached embeddings of `inputs`, moved."""
        vectors = super().encode(inputs, **kwargs)
        return perturbed_vectors(vectors, loader_texts(inputs), self.size, self.draw, self.encoder.normalize)


class PerturbedReranker(BGERerankerModel):
    """The run's reranker, its scores moved as `perturbed_scores` moves them."""

    def __init__(self, model: BGERerankerModel, size: float, draw: int) -> None:
        self.__dict__.update(model.__dict__)
        self.probe = None
        self.size, self.draw = size, draw

    def predict(self, inputs1: Any, inputs2: Any, **kwargs: Any) -> np.ndarray:
        """The reranker's scores of the pairs, moved."""
        scores = super().predict(inputs1, inputs2, **kwargs)
        keys = [pair_key(q, p) for q, p in zip(loader_texts(inputs1), loader_texts(inputs2), strict=True)]
        return perturbed_scores(scores, keys, self.size, self.draw)


def measure_noise(
    score_with: Callable[[Any], float], model: Any, reference: float, size: float, draws: int
) -> dict[str, Any]:
    """The task's noise: the largest change, in points, of `score_with(perturbed model)` from `reference` over
    `draws` draws of relative size `size`."""
    wrapper = PerturbedReranker if isinstance(model, BGERerankerModel) else PerturbedEmbedder
    scores = [score_with(wrapper(model, size, draw)) for draw in range(1, draws + 1)]
    changes = [abs(100 * (s - reference)) for s in scores]
    return {"size": size, "draws": draws, "points": round(max(changes), 6), "scores": [round(s, 8) for s in scores]}
