"""Where the encoder's time goes on short texts: tokenising, building batches, the forward passes.

`bench/forward_rate.py` times the network alone at fixed shapes; `bench/encoder_rate.py` the whole
encoder. On one H200 (bge-large-shaped, fp16, batch 256) the network ran 256 x 32 tokens with a padding
mask in 13.7 ms while the encoder took about 30 ms a batch on texts of 38 tokens: this splits the gap.
For N real short reviews, each the second of two timed passes, with the device synchronised at the end:

- tokenise: `cmteb.models.tokenize.tokenize` over all texts (chunks on every core);
- batches: length-sorted batches padded and moved to the device (`forward_in_batches`, no forward);
- forward: the encoder's own `batch_outputs` on those batches, already on the device, its attention mask
  decided on the host (`cmteb/models/speed/masks.py`: none where a batch has no padding, else the 4D mask
  transformers would build), so nothing waits on the device between batches;
- forward, transformers' mask: the same batches each with its 2D padding mask, from which transformers
  builds the mask after asking the device whether any token is masked (a wait per batch); the largest
  difference to `forward`'s embeddings is printed (0: the same kernels ran);
- forward beside Python work: `forward` again while another thread runs pure-Python work (sorting
  lists of tuples, as mteb's evaluation of the previous task does in a pipelined run), with Python's
  default 5 ms GIL switch interval and with 0.5 ms: how long the passes wait for the GIL;
- encode: `BGEEncoder.encode` end to end.

One GPU: `python bench/encoder_split.py --shape large --tokenizer DIR --device cuda --precision fp16 --batch-size 256`
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from encoder_rate import seconds_of, texts_of  # noqa: E402
from figures import add_model_args, bench_model  # noqa: E402

from cmteb.models.batching import BatchStats, forward_in_batches  # noqa: E402
from cmteb.models.encoder import BGEEncoder, pool  # noqa: E402
from cmteb.models.tokenize import tokenize  # noqa: E402


def device_batches(core: BGEEncoder, encoded: dict) -> list[dict[str, torch.Tensor]]:
    """The encoder's batches on its device, as `encode` makes them (no mask where a batch has no padding)."""
    batches: list[dict[str, torch.Tensor]] = []
    forward_in_batches(
        core.tokenizer,
        encoded,
        core.batch_size,
        core.device,
        BatchStats(),
        lambda _idx, batch: batches.append(batch),
        max_tokens=core.options.batch_tokens,
        mask_padded_only=core.prepared_masks,
    )
    return batches


def with_padding_masks(batches: list[dict[str, torch.Tensor]]) -> list[dict[str, torch.Tensor]]:
    """The same batches each with its 2D padding mask (all ones where the batch has no padding)."""
    return [
        batch if "attention_mask" in batch else {**batch, "attention_mask": torch.ones_like(batch["input_ids"])}
        for batch in batches
    ]


def forward_with_transformers_mask(core: BGEEncoder, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """`batch_outputs` as transformers alone computes it from a 2D padding mask."""
    emb = pool(core.model(**batch).last_hidden_state, batch["attention_mask"], core.pooling)
    return torch.nn.functional.normalize(emb, p=2, dim=1) if core.normalize else emb


@contextmanager
def python_work_beside(switch_seconds: float) -> Iterator[None]:
    """Another thread busy with pure-Python work (sorting lists of tuples) while the block runs, with the
    interpreter's GIL switch interval set to `switch_seconds`."""
    stop, before = threading.Event(), sys.getswitchinterval()

    def work() -> None:
        rows = [(float(i % 997), str(i)) for i in range(1000)]
        while not stop.is_set():
            sorted(rows, key=lambda row: -row[0])

    sys.setswitchinterval(switch_seconds)
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        sys.setswitchinterval(before)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_args(parser)
    parser.add_argument("--texts", type=int, default=10000, help="short texts")
    args = parser.parse_args()
    model = bench_model(args, Path(tempfile.mkdtemp(prefix="cmteb-encoder-split-")))
    core = BGEEncoder.load(
        str(model), pooling="cls", device=args.device, precision=args.precision, batch_size=args.batch_size
    )
    texts, _ = texts_of(args.texts, 0)
    rows: dict[str, float] = {}
    rows["tokenise"], encoded = seconds_of(lambda: tokenize(core.tokenizer, texts, core.max_length), args.device)
    rows["batches"], batches = seconds_of(lambda: device_batches(core, encoded), args.device)
    masked = with_padding_masks(batches)
    with torch.inference_mode():
        rows["forward"], hosted = seconds_of(lambda: [core.batch_outputs(b) for b in batches], args.device)
        rows["forward, transformers' mask"], plain = seconds_of(
            lambda: [forward_with_transformers_mask(core, b) for b in masked], args.device
        )
        for switch in (0.005, 0.0005):
            with python_work_beside(switch):
                rows[f"forward, Python beside ({switch * 1e3:g} ms)"], _ = seconds_of(
                    lambda: [core.batch_outputs(b) for b in batches], args.device
                )
    rows["encode"], _ = seconds_of(lambda: core.encode(texts), args.device)
    tokens = sum(map(len, encoded["input_ids"]))
    print(f"{model.name} on {args.device} in {args.precision}, batch {args.batch_size}")
    print(f"{len(texts):,} texts, {tokens / len(texts):.0f} tokens each, {len(batches)} batches")
    print(f"{'step':34}{'seconds':>9}{'ms/batch':>10}")
    for name, seconds in rows.items():
        print(f"{name:34}{seconds:9.3f}{1e3 * seconds / len(batches):10.2f}")
    gap = max(float((a - b).abs().max()) for a, b in zip(plain, hosted, strict=True))  # type: ignore[arg-type]
    print(f"largest difference, host-decided mask vs transformers' mask: {gap:.3g}")


if __name__ == "__main__":
    main()
