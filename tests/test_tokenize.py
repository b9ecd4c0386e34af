"""Tokenising in parallel chunks gives exactly the ids of one tokenizer call."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from cmteb.models import tokenize as tokenize_module
from cmteb.models.speed.truncation import cut_rule, prefix_chars
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
    expected = tokenizer(texts, padding=False, truncation=True, max_length=64)
    assert tokenize(tokenizer, texts, 64) == {"input_ids": expected["input_ids"]}  # pad_batch makes the rest
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


# Pieces that stress a cut: words split across it, words over WordPiece's 100 characters ([UNK] whole,
# but not when cut), characters the normaliser drops or decomposes, special tokens' text, CJK ideographs.
CUT_PIECES = [
    "外卖", "送", "得很快", "，", "。", " ", "  ", "\t", "\n", "\x00", "\x1f", "\x7f", "é", "e\u0301", "É",
    ";", "\u037e", "\uf900", "😀", "iPhone", "15", "COVID-19", "a" * 7, "z" * 120, "[SEP]", "[MA", "SK]", "##",
    "x", "_", "—", "①", "ｆｕｌｌ",
]  # fmt: skip


def _cut_texts(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choices(CUT_PIECES, k=rng.randint(1, 40))) for _ in range(count)]


@pytest.mark.parametrize("which", ["m3e", "minilm", "tiny"])
def test_long_texts_cut_to_prefixes_keep_the_whole_texts_ids(
    which: str, m3e_dir: Path, minilm_dir: Path, tiny_bert: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tokenizer = AutoTokenizer.from_pretrained({"m3e": m3e_dir, "minilm": minilm_dir, "tiny": tiny_bert}[which])
    assert cut_rule(tokenizer) is not None
    calls: list[list[str]] = []
    in_threads = tokenize_module._in_threads

    def spy(tok, texts, *args, **kwargs):
        calls.append(list(texts))
        return in_threads(tok, texts, *args, **kwargs)

    monkeypatch.setattr(tokenize_module, "_in_threads", spy)
    texts = _cut_texts(3000, seed={"m3e": 4, "minilm": 5, "tiny": 6}[which])
    for max_length in (12, 24):
        calls.clear()
        expected = tokenizer(texts, padding=False, truncation=True, max_length=max_length)["input_ids"]
        assert tokenize(tokenizer, texts, max_length) == {"input_ids": expected}
        limit = prefix_chars(max_length)
        long = sum(len(text) > limit for text in texts)
        assert max(map(len, calls[0])) == limit and long > 1000, "long texts were tokenised from prefixes"
        assert 0 < len(calls[1]) < long, "some prefixes, not all, were tokenised again in full"


def test_no_cut_where_it_cannot_be_proven(m3e_dir: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    word_level = Tokenizer(models.WordLevel({"[UNK]": 0, "外卖": 1}, unk_token="[UNK]"))
    word_level.pre_tokenizer = pre_tokenizers.Whitespace()
    assert cut_rule(PreTrainedTokenizerFast(tokenizer_object=word_level)) is None  # not BERT's pre-tokenizer
    joined = AutoTokenizer.from_pretrained(m3e_dir)
    joined.add_tokens(["很快送"])  # matched before words are split: a cut through it changes the words before
    assert cut_rule(joined) is None
    left = AutoTokenizer.from_pretrained(m3e_dir, truncation_side="left")
    assert cut_rule(left) is None
    texts = _cut_texts(200, seed=7)
    for tokenizer in (joined, left):
        expected = tokenizer(texts, padding=False, truncation=True, max_length=12)["input_ids"]
        assert tokenize(tokenizer, texts, 12) == {"input_ids": expected}
    pairs = _cut_texts(200, seed=8)
    expected = dict(joined(texts, pairs, padding=False, truncation=True, max_length=12))
    assert tokenize(joined, texts, 12, pairs) == expected


def test_the_benchmarks_prefix_lever_tokenises_whole_texts(m3e_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from levers import LEVERS

    monkeypatch.setattr(tokenize_module, "cut_rule", tokenize_module.cut_rule)  # put back after the test
    tokenizer = AutoTokenizer.from_pretrained(m3e_dir)
    seen: list[list[str]] = []
    in_threads = tokenize_module._in_threads
    monkeypatch.setattr(
        tokenize_module, "_in_threads", lambda tok, texts, *rest: seen.append(texts) or in_threads(tok, texts, *rest)
    )
    texts = ["长" * 900, "短"]
    tokenize(tokenizer, texts, 64)
    assert len(seen[-1][0]) == prefix_chars(64)
    LEVERS["prefix"]()
    tokenize(tokenizer, texts, 64)
    assert seen[-1] == texts


def test_finding_the_cut_rule_leaves_the_backends_truncation_alone(m3e_dir: Path) -> None:
    """Another thread may be tokenising with the backend's truncation set: reading the rule must not reset it."""
    tokenizer = AutoTokenizer.from_pretrained(m3e_dir)
    tokenizer(["外卖"], truncation=True, max_length=24)
    before = tokenizer.backend_tokenizer.truncation
    assert before is not None and before["max_length"] == 24
    assert cut_rule(tokenizer) is not None and tokenizer.backend_tokenizer.truncation == before
