"""Tokenising in parallel chunks gives exactly the ids of one tokenizer call."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from cmteb.models import tokenize as tokenize_module
from cmteb.models.tokenize import CHUNK, tokenize

PIECES = ["外卖送得很快", "味道一般", "T2Retrieval", "COVID-19 疫苗", "😀", "  ", "iPhone 15 Pro Max", "的" * 40]


def _texts(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    texts = ["".join(rng.choices(PIECES, k=rng.randint(0, 30))) for _ in range(count)]
    texts[7] = "长" * 900  # longer than max_length: truncated
    return texts


@pytest.mark.parametrize("cores", [1, 4])
def test_chunks_in_threads_equal_one_call(m3e_dir: Path, cores: int, monkeypatch: pytest.MonkeyPatch) -> None:
    tokenizer = AutoTokenizer.from_pretrained(m3e_dir)
    monkeypatch.setattr(tokenize_module, "usable_cores", lambda: cores)
    texts = _texts(2 * CHUNK + 300, seed=1)
    expected = dict(tokenizer(texts, padding=False, truncation=True, max_length=64))
    assert tokenize(tokenizer, texts, 64) == expected
    assert max(map(len, expected["input_ids"])) == 64


def test_pairs_equal_one_call(m3e_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tokenizer = AutoTokenizer.from_pretrained(m3e_dir)
    monkeypatch.setattr(tokenize_module, "usable_cores", lambda: 3)
    queries, passages = _texts(CHUNK + 5, seed=2), _texts(CHUNK + 5, seed=3)
    expected = dict(tokenizer(queries, passages, padding=False, truncation=True, max_length=48))
    got = tokenize(tokenizer, queries, 48, passages)
    assert got == expected
    assert set(got) == {"input_ids", "token_type_ids", "attention_mask"}
    assert any(1 in row for row in got["token_type_ids"]), "the passage is the second segment"
