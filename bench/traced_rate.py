"""Forward passes eager against traced (`cmteb/models/speed/traced.py`), alone and beside a thread of Python work.

Times the encoder's `batch_outputs` over the same length-sorted batches of N short real reviews: eager;
with the network alone traced and the head (pooling, normalisation) eager; and with the whole pass traced,
as a GPU core runs it. Each alone and while another thread runs pure-Python work at Python's 5 ms GIL
switch interval (as mteb's evaluation of the previous task does in a pipelined run). Prints ms per pass
(median of `--rounds`) and the largest difference between eager's and the traced pass's embeddings (0:
the trace computed what eager computes). On a CPU torch computes on one thread (`--threads`), so that
the Python thread takes the other core and what the passes lose beside it is the GIL, not a core.

The default network is bge-large's 24 layers at a width whose arithmetic costs next to nothing
(`--shape large-narrow`), so on a CPU the time is the host's: the work a GPU's host does per batch.
On one GPU: `python bench/traced_rate.py --shape large --tokenizer DIR --device cuda --precision fp16
--batch-size 256 --texts 10000`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from encoder_rate import texts_of  # noqa: E402
from encoder_split import device_batches, python_work_beside  # noqa: E402
from figures import add_model_args, bench_model  # noqa: E402

from cmteb.models.encoder import BGEEncoder  # noqa: E402
from cmteb.models.speed.traced import TracedPass  # noqa: E402
from cmteb.models.tokenize import tokenize  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_args(parser)
    parser.add_argument("--texts", type=int, default=64, help="short texts")
    parser.add_argument("--rounds", type=int, default=5, help="timings per row (the median is printed)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads on a CPU")
    parser.set_defaults(shape="large-narrow", batch_size=4)
    args = parser.parse_args()
    model = bench_model(args, Path(tempfile.mkdtemp(prefix="cmteb-traced-rate-")))
    core = BGEEncoder.load(
        str(model), pooling="cls", device=args.device, precision=args.precision, batch_size=args.batch_size
    )
    if args.device == "cpu":
        torch.set_num_threads(args.threads)
    texts, _ = texts_of(args.texts, 0)
    batches = device_batches(core, tokenize(core.tokenizer, texts, core.max_length))
    network = TracedPass(core.model, core.network)
    whole = TracedPass(core.model, core.eager_outputs)
    ways = {
        "eager": core.eager_outputs,
        "network traced, head eager": lambda batch: core.head(network(batch), batch),
        "whole pass traced": whole,
    }
    rows: dict[str, float] = {}
    outputs = {}
    with torch.inference_mode():
        for name, step in ways.items():
            passes = partial(run_passes, step, batches)
            passes()  # records and checks the traces: the outputs compared are the next run's
            outputs[name] = passes()
            rows[name] = median_seconds(passes, args.rounds)
            rounds = 1 if name == "eager" else args.rounds  # eager beside Python takes seconds a pass
            with python_work_beside(0.005):
                rows[f"{name}, Python beside (5 ms)"] = median_seconds(passes, rounds)
    print(f"{model.name} on {args.device} in {args.precision}, batch {args.batch_size}, {len(batches)} batches")
    print(f"{'passes':48}{'ms/pass':>10}")
    for name, seconds in rows.items():
        print(f"{name:48}{1e3 * seconds / len(batches):10.2f}")
    pairs = zip(outputs["eager"], outputs["whole pass traced"], strict=True)
    print(f"largest difference, traced pass vs eager: {max(float((a - b).abs().max()) for a, b in pairs):.3g}")
    checked = all(t.checked for t in whole.traces.values())
    print(f"traces checked: {checked}; eager after a failed check: {whole.failed}")


def run_passes(step: Callable[[dict], torch.Tensor], batches: list[dict]) -> list[torch.Tensor]:
    """`step` on every batch."""
    return [step(batch) for batch in batches]


def median_seconds(run: Callable[[], object], rounds: int) -> float:
    """The median over `rounds` of `run`'s seconds (the device synchronised at both ends)."""
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    seconds = []
    for _ in range(rounds):
        sync()
        started = time.perf_counter()
        run()
        sync()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


if __name__ == "__main__":
    main()
