"""`python bench/pad_batch.py`: padding one batch of 256 tokenised texts (~50 tokens, m3e-small's
tokenizer) with `tokenizer.pad` and with cmteb's numpy `pad_batch` (from every column, and from the ids alone,
the mask and token types made from the lengths); prints ms per batch and whether the
tensors are identical. Figures only."""

from __future__ import annotations

import time

import torch
from transformers import AutoTokenizer

from cmteb.assets import bundled_model_dir
from cmteb.models.batching import pad_batch

TEXT = "手机耗电快时可以降低屏幕亮度，关闭后台自动刷新的应用，并在设置里打开省电模式"


def per_batch_ms(pad, repeats: int = 20) -> float:
    pad()
    started = time.perf_counter()
    for _ in range(repeats):
        pad()
    return (time.perf_counter() - started) / repeats * 1000


def main() -> None:
    tokenizer = AutoTokenizer.from_pretrained(str(bundled_model_dir()))
    encoded = tokenizer([TEXT * (1 + i % 3) for i in range(256)], padding=False, truncation=True, max_length=512)
    features = {k: list(v) for k, v in encoded.items()}
    slow = per_batch_ms(lambda: tokenizer.pad(features, padding=True, return_tensors="pt"))
    fast = per_batch_ms(lambda: pad_batch(tokenizer, features))
    ids_only = {"input_ids": features["input_ids"]}  # how cmteb tokenises single texts (tokenize.py)
    from_ids = per_batch_ms(lambda: pad_batch(tokenizer, ids_only))
    expected = tokenizer.pad(features, padding=True, return_tensors="pt")
    same = all(
        list(padded) == list(expected) and all(torch.equal(expected[k], padded[k]) for k in expected)
        for padded in (pad_batch(tokenizer, features), pad_batch(tokenizer, ids_only))
    )
    print(
        f"tokenizer.pad {slow:.1f} ms, pad_batch {fast:.1f} ms, pad_batch from the ids alone {from_ids:.1f} ms "
        f"per 256 texts; identical tensors: {same}"
    )


if __name__ == "__main__":
    main()
