"""Forward passes eager against traced (`cmteb/models/traced.py`), alone and beside a thread of Python work.

Times the encoder's `batch_outputs` over the same length-sorted batches of N short real reviews, with the
network's own (eager) forward and with the checked trace a GPU core uses, each alone and while another
thread runs pure-Python work at Python's 5 ms GIL switch interval (as mteb's evaluation of the previous
task does in a pipelined run). Prints ms per pass and the largest difference between the two sets of
embeddings (0: the trace computed what eager computes).

The default network is bge-large's 24 layers at a width whose arithmetic costs next to nothing
(`--shape large-narrow`), so on a CPU the time is the host's: the work a GPU's host does per batch.
On one GPU: `python bench/traced_rate.py --shape large --tokenizer DIR --device cuda --precision fp16
--batch-size 256 --texts 10000`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from encoder_rate import seconds_of, texts_of  # noqa: E402
from encoder_split import device_batches, python_work_beside  # noqa: E402
from figures import add_model_args, bench_model  # noqa: E402

from cmteb.models.encoder import BGEEncoder  # noqa: E402
from cmteb.models.tokenize import tokenize  # noqa: E402
from cmteb.models.traced import TracedNetwork  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_args(parser)
    parser.add_argument("--texts", type=int, default=64, help="short texts")
    parser.set_defaults(shape="large-narrow", batch_size=4)
    args = parser.parse_args()
    model = bench_model(args, Path(tempfile.mkdtemp(prefix="cmteb-traced-rate-")))
    core = BGEEncoder.load(
        str(model), pooling="cls", device=args.device, precision=args.precision, batch_size=args.batch_size
    )
    texts, _ = texts_of(args.texts, 0)
    batches = device_batches(core, tokenize(core.tokenizer, texts, core.max_length))
    ways = {"eager": None, "traced": TracedNetwork(core.model, core.OUTPUT_FIELD)}
    rows: dict[str, float] = {}
    outputs = {}
    with torch.inference_mode():
        for name, traced in ways.items():
            core.traced = traced
            rows[name], outputs[name] = seconds_of(lambda: [core.batch_outputs(b) for b in batches], args.device)
            with python_work_beside(0.005):
                rows[f"{name}, Python beside (5 ms)"], _ = seconds_of(
                    lambda: [core.batch_outputs(b) for b in batches], args.device
                )
    print(f"{model.name} on {args.device} in {args.precision}, batch {args.batch_size}, {len(batches)} batches")
    print(f"{'passes':34}{'ms/pass':>10}")
    for name, seconds in rows.items():
        print(f"{name:34}{1e3 * seconds / len(batches):10.2f}")
    pairs = zip(outputs["eager"], outputs["traced"], strict=True)  # type: ignore[call-overload]
    print(f"largest difference, traced vs eager: {max(float((a - b).abs().max()) for a, b in pairs):.3g}")
    network = ways["traced"]
    checked = all(t.checked for t in network.traces.values())  # type: ignore[union-attr]
    print(f"traces checked: {checked}; eager after a failed check: {network.failed}")  # type: ignore[union-attr]


if __name__ == "__main__":
    main()
