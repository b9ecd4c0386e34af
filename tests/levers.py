"""cmteb's speed levers, each switched off by a patch: the tests prove a lever changes no score by running
with it off, and `bench/lever_off.py` measures what it saves.

The levers:
- `none`: cmteb as shipped;
- `dedupe`: no embedding cache at all: every text a task asks for is encoded, repeats included,
  as plain mteb does (the cache otherwise encodes each distinct text once per model and settings);
- `length-sort`: batches in input order instead of longest first (fixed count, padded per batch);
- `result-store`: stored task results are never reused (only the embedding cache is);
- `trace`: a GPU's forward passes run eagerly, operator by operator from Python, instead of as the
  checked trace of `cmteb/models/speed/traced.py` (a CPU's passes are eager either way);
- `prefix`: long texts are tokenised whole, never from the prefix truncation keeps
  (`cmteb/models/speed/truncation.py`);
- `fill`: every pass holds --batch-size texts (fewer where the token budget is smaller), not as many
  short texts as fill the pass's token budget (`cmteb/models/plan.py: FILL_ROWS`);
- `tokenize-ahead`: a pipelined run tokenises each set when the model reaches it, not while the model
  encodes the set before it (`cmteb/runner/prefetch.py`);
- `parts`: a pipelined run encodes each set in one call, its tokens made whole before its first batch,
  instead of in parts of `PART_TEXTS` texts (`cmteb/runner/prefetch.py`);
- `pytrec-slices`: retrieval and reranking runs are scored by one pytrec_eval call, which holds the GIL
  (and so stops the thread encoding ahead) until it returns, instead of a slice of queries at a time
  (`cmteb/mteb_hooks.py: PytrecInSlices`);
- `ray-niceness`: a local Ray (`--ray`) runs its workers at Ray's default niceness of 15, below this
  process, instead of beside it (`cmteb/workers/ray_backend.py`).

The switches are patches kept here, beside the tests, so that the product has no knobs that exist only to
be measured or tested.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

import numpy


def _no_dedupe() -> None:
    from cmteb.models.cache import EmbeddingCache

    def encode(self, texts: Sequence[str], encode_fn: Callable[[list[str]], numpy.ndarray], dim: int):
        return encode_fn(list(texts))

    EmbeddingCache.encode = encode


def _no_length_sort() -> None:
    from cmteb.models import batching, plan

    def input_order(lengths: numpy.ndarray) -> numpy.ndarray:
        return numpy.arange(len(lengths))

    # Both names: the forward loop's batches and the plan that shards them over workers and counts passes.
    batching.longest_first = plan.longest_first = input_order


def _no_result_store() -> None:
    from cmteb.runner.store import ResultStore

    ResultStore.get = lambda self, key: None


def _no_trace() -> None:
    from cmteb.models import core

    core.traced_pass = lambda *_: None


def _no_prefix() -> None:
    from cmteb.models import tokenize

    tokenize.cut_rule = lambda _tokenizer: None


def _no_fill() -> None:
    from cmteb.models import plan

    plan.FILL_ROWS = 1


def _no_tokenize_ahead() -> None:
    from cmteb.runner.prefetch import Prefetcher
    from cmteb.runner.systems import cores

    cores.Prefetcher = lambda plan, is_cached, encode_ahead, _tokenize: Prefetcher(plan, is_cached, encode_ahead)


def _no_parts() -> None:
    from cmteb.runner import prefetch

    prefetch.PART_TEXTS = sys.maxsize


def _no_pytrec_slices() -> None:
    from cmteb import mteb_hooks

    mteb_hooks.PYTREC_SLICE_PAIRS = sys.maxsize


def _no_ray_niceness() -> None:
    import ray

    init = ray.init

    def init_with_rays_defaults(*args, **kwargs):
        kwargs.pop("_system_config", None)
        return init(*args, **kwargs)

    ray.init = init_with_rays_defaults


LEVERS = {
    "none": lambda: None,
    "dedupe": _no_dedupe,
    "length-sort": _no_length_sort,
    "result-store": _no_result_store,
    "trace": _no_trace,
    "prefix": _no_prefix,
    "fill": _no_fill,
    "tokenize-ahead": _no_tokenize_ahead,
    "parts": _no_parts,
    "pytrec-slices": _no_pytrec_slices,
    "ray-niceness": _no_ray_niceness,
}
