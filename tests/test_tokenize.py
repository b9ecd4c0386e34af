"""Tokenising in parallel chunks gives exactly the ids of one tokenizer call."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from cmteb.models import tokenize as tokenize_module
from cmteb.models.tokenize import MIN_CHUNK, chunk_size, tokenize

PIECES = ["外卖送得很快", "味道一般", "T2Retrieval", "COVID-19 疫苗", "😀", "  ", "iPhone 15 Pro Max", "的" * 40]


def _texts(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    texts = ["".join(rng.choices(PIECES, k=rng.randint(0, 8))) for _ in range(count)]
    texts[7] = "长" * 900  # longer than max_length: truncated
    return texts


@pytest.mark.parametrize("cores", [1, 4])
def test_chunks_in_threads_equal_one_call(m3e_dir: Path, cores: int, monkeypatch: pytest.MonkeyPatch) -> None:
    tokenizer = AutoTokenizer.from_pretrained(m3e_dir)
    monkeypatch.setattr(tokenize_module, "usable_cores", lambda: cores)
    texts = _texts(40 * MIN_CHUNK + 30, seed=1)
    expected = dict(tokenizer(texts, padding=False, truncation=True, max_length=64))
    assert tokenize(tokenizer, texts, 64) == expected
    assert max(map(len, expected["input_ids"])) == 64


def test_pairs_equal_one_call(m3e_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tokenizer = AutoTokenizer.from_pretrained(m3e_dir)
    monkeypatch.setattr(tokenize_module, "usable_cores", lambda: 3)
    queries, passages = _texts(9 * MIN_CHUNK + 5, seed=2), _texts(9 * MIN_CHUNK + 5, seed=3)
    expected = dict(tokenizer(queries, passages, padding=False, truncation=True, max_length=48))
    got = tokenize(tokenizer, queries, 48, passages)
    assert got == expected
    assert set(got) == {"input_ids", "token_type_ids", "attention_mask"}
    assert any(1 in row for row in got["token_type_ids"]), "the passage is the second segment"


def test_chunks_spread_over_the_cores():
    assert chunk_size(613, 16) == MIN_CHUNK  # 39 chunks of long passages over 16 cores, not one
    assert chunk_size(20_000, 16) == 313 and chunk_size(20_000, 2) == 2_500
    assert chunk_size(10, 16) == MIN_CHUNK
