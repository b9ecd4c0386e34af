"""The embedding probe stored beside each task result, and the drift between two runs' probes.

Every evaluated task keeps `<Task>.probe.parquet`: the outputs of a few of the task's own texts (the
ones with the smallest content keys, so the same data gives the same texts), each encoded in a forward
pass of its own, so that nothing but the model and the arithmetic decides them. An embedding is kept
through a fixed random projection to at most PROBE_DIMS dimensions (a few hundred KB for a whole run
whatever the model's width; a projection keeps relative L2 distances to within about 10 % at 256
dimensions, plenty to tell float noise, about 1e-6, from a changed model, 1e-3 and more). A
reranker's probe is its score of a few of the task's (query, passage) pairs.

`cmteb compare` reads both sides' probes: a drift within the threshold of fp32 arithmetic means the
same model computed on other hardware or libraries; beyond it, the model changed.

Columns: kind ("embedding" or "score"), key (the text's or pair's content key, hex), values (float32).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cmteb.errors import CmtebError
from cmteb.io import atomic_write_bytes

if TYPE_CHECKING:
    import pandas as pd

PROBE_SUFFIX = ".probe.parquet"
#: Texts (or pairs) per task in the probe: 31 tasks make about 250.
PROBE_PER_TASK = 8
#: Embeddings wider than this are stored through a fixed random projection to this width.
PROBE_DIMS = 128
#: fp32's machine epsilon.
EPS32 = float(np.finfo(np.float32).eps)
COLUMNS = ["kind", "key", "values"]


def drift_threshold(layers: int, reduction: int) -> float:
    """The largest relative drift that fp32 arithmetic alone can give a network's outputs.

    Another ISA level or library sums each dot product in another order: each of the `layers` layers adds a
    relative error of about eps x sqrt(K) for its longest reduction K (the feed-forward width), and the errors
    of successive layers add up. eps x layers x sqrt(K) is 2.2e-5 for m3e-small (4 layers, K = 2,048); the
    largest drift measured between its default, AVX2 and AVX-512 arithmetic is 1.4e-6 (`bench/arith_drift.py`),
    a 15-fold margin, while a changed model moves its outputs by 1e-3 and more.
    """
    return EPS32 * max(1, layers) * math.sqrt(max(1, reduction))


def probe_path(result_file: Path) -> Path:
    """`<Task>.probe.parquet` beside `<Task>.json`."""
    return Path(result_file).with_suffix("").with_suffix(PROBE_SUFFIX)


def projection(dim: int) -> np.ndarray | None:
    """The fixed `[dim, PROBE_DIMS]` Gaussian projection of embeddings wider than PROBE_DIMS, else None.

    Seeded by the width alone, so two runs of models of one width project alike; scaled so that lengths are
    kept on average."""
    if dim <= PROBE_DIMS:
        return None
    rng = np.random.default_rng(dim)
    return rng.standard_normal((dim, PROBE_DIMS)) / math.sqrt(PROBE_DIMS)


def project(vectors: np.ndarray) -> np.ndarray:
    """Embeddings as the probe keeps them: projected (in float64, so that the projection adds no noise of its
    own) when wider than PROBE_DIMS."""
    matrix = projection(vectors.shape[1])
    return vectors.astype(np.float32) if matrix is None else (vectors.astype(np.float64) @ matrix).astype(np.float32)


def write_probe(result_file: Path, rows: list[dict]) -> Path | None:
    """Write a task's probe rows atomically beside its result; None when there are none (a probe left by an
    earlier evaluation of the task is then removed: it no longer describes the result)."""
    if not rows:
        probe_path(result_file).unlink(missing_ok=True)
        return None
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "kind": [r["kind"] for r in rows],
            "key": [r["key"] for r in rows],
            "values": pa.array([np.asarray(r["values"], np.float32) for r in rows], type=pa.list_(pa.float32())),
        }
    )
    path = probe_path(result_file)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    atomic_write_bytes(path, sink.getvalue().to_pybytes())
    return path


def read_probe(result_file: Path) -> pd.DataFrame | None:
    """The probe rows beside a result file; None when there are none; an unreadable file is a CmtebError."""
    path = probe_path(result_file)
    if not path.is_file():
        return None
    import pandas as pd

    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several kinds for a damaged file
        raise CmtebError(f"{path.name} cannot be read ({type(exc).__name__})") from exc
    if list(frame.columns) != COLUMNS:
        raise CmtebError(f"{path.name} has columns {list(frame.columns)}, not {COLUMNS}")
    return frame


@dataclass(frozen=True)
class Drift:
    """How far one side's probe is from the other's, over the rows both hold."""

    largest: float  # the largest relative drift of one text or pair
    median: float
    rows: int  # rows compared


def relative_drift(base: np.ndarray, cand: np.ndarray, kind: str) -> float:
    """One row's drift: for an embedding ||a - b|| / ||a||; for a score |a - b| / max(|a|, 1) (a logit near 0
    has no scale of its own; a cross-encoder's logits are of order 1 to 10)."""
    if base.shape != cand.shape:
        return math.inf  # another width: another model
    difference = float(np.linalg.norm(base.astype(np.float64) - cand.astype(np.float64)))
    if kind == "score":
        return difference / max(float(np.abs(base).max()), 1.0)
    return difference / max(float(np.linalg.norm(base.astype(np.float64))), 1e-30)


def probe_drift(base: pd.DataFrame, cand: pd.DataFrame) -> Drift | None:
    """The drift between two probes over their common (kind, key) rows; None when they share none."""
    unique = ["kind", "key"]  # a text probed in two tasks (a shared corpus) counts once
    merged = base.drop_duplicates(unique).merge(cand.drop_duplicates(unique), on=unique, suffixes=("_b", "_c"))
    if merged.empty:
        return None
    drifts = [
        relative_drift(np.asarray(b), np.asarray(c), kind)
        for kind, b, c in zip(merged["kind"], merged["values_b"], merged["values_c"], strict=True)
    ]
    return Drift(float(max(drifts)), float(np.median(drifts)), len(drifts))
