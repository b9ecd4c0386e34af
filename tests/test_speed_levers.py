"""The speed levers keep scores unchanged: embedding cache, token-budget batches, chunked search."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import mteb
import numpy as np
import pytest
from mteb.models.search_wrappers import SearchEncoderWrapper

from cmteb.models.adapter import BGEModel
from cmteb.models.batching import BatchStats, forward_in_batches
from cmteb.models.cache import EmbeddingCache
from cmteb.models.encoder import BGEEncoder
from cmteb.results.files import read_run_record
from cmteb.runner import run
from cmteb.tasks.build import build_task
from cmteb.tasks.registry import load_registry

TEXTS = ["短", "这是一个比较长的句子，用来测试排序和批次", "中等长度句子", "一", "再来一个稍长的句子啊", "短"]


def test_each_distinct_text_is_encoded_once(tiny_bert):
    encoder = BGEEncoder.load(str(tiny_bert))
    cache = EmbeddingCache({"model": "t"})
    first = cache.encode(TEXTS, encoder.encode, encoder.embedding_dim)
    assert encoder.stats.texts == 5, "the repeated text is encoded once"
    again = cache.encode(TEXTS[::-1], encoder.encode, encoder.embedding_dim)
    assert encoder.stats.texts == 5 and cache.hits == 6
    np.testing.assert_allclose(again[::-1], first)
    np.testing.assert_allclose(first, encoder.encode(TEXTS), atol=1e-5)


def test_disk_cache_is_shared_across_runs_and_keyed_on_settings(tiny_bert, tmp_path):
    namespace = {"model": "t", "max_length": 512}
    encoder = BGEEncoder.load(str(tiny_bert))
    EmbeddingCache(namespace, tmp_path).encode(TEXTS, encoder.encode, encoder.embedding_dim)
    reopened = EmbeddingCache(namespace, tmp_path)
    assert len(reopened) == 5
    before = encoder.stats.texts
    reopened.encode(TEXTS, encoder.encode, encoder.embedding_dim)
    assert encoder.stats.texts == before
    other = EmbeddingCache({**namespace, "max_length": 64}, tmp_path)
    assert len(other) == 0 and other.folder != reopened.folder


def test_damaged_shard_is_detected_and_recomputed(tiny_bert, tmp_path):
    encoder = BGEEncoder.load(str(tiny_bert))
    cache = EmbeddingCache({"model": "t"}, tmp_path)
    expected = cache.encode(TEXTS, encoder.encode, encoder.embedding_dim)
    shard = next(cache.folder.glob("shard-*.npy"))
    shard.write_bytes(shard.read_bytes()[:-16])  # truncated, as a crash or a full disk leaves it
    damaged = EmbeddingCache({"model": "t"}, tmp_path)
    assert damaged.corrupt_shards and len(damaged) == 0
    before = encoder.stats.texts
    np.testing.assert_allclose(damaged.encode(TEXTS, encoder.encode, encoder.embedding_dim), expected, atol=1e-5)
    assert encoder.stats.texts == before + 5
    flipped = next(p for p in cache.folder.glob("shard-*.npy") if p != shard)
    data = bytearray(flipped.read_bytes())
    data[-1] ^= 0x01  # same size, other content: the checksum catches it
    flipped.write_bytes(bytes(data))
    assert len(EmbeddingCache({"model": "t"}, tmp_path).corrupt_shards) == 2


def test_runs_share_the_cache_across_tasks_and_runs(tiny_bert, samples_dir, tmp_path):
    common = dict(
        tasks=["T2Retrieval", "T2Reranking"], data_dir=samples_dir, show_progress=False, cache_dir=tmp_path / "cache"
    )
    first = run(str(tiny_bert), output_dir=tmp_path / "a", **common)
    record = read_run_record(first.output_dir)
    # T2Reranking's passages come from the same collection as T2Retrieval's corpus: only its
    # queries that T2Retrieval did not ask are new.
    queries = {}
    for name in ("T2Retrieval", "T2Reranking"):
        task = build_task(load_registry().get(name), samples_dir)
        task.load_data()
        queries[name] = set(task.dataset["default"]["dev"]["queries"]["text"])
    new = len(queries["T2Reranking"] - queries["T2Retrieval"])
    assert 0 < new < 12 and record["tasks"]["T2Reranking"]["texts_encoded"] == new
    second = run(str(tiny_bert), output_dir=tmp_path / "b", **common)
    assert sum(e["texts_encoded"] for e in read_run_record(second.output_dir)["tasks"].values()) == 0
    assert [o.score for o in second.outcomes] == [o.score for o in first.outcomes]


def test_token_budget_batches_give_the_same_embeddings(tiny_bert):
    encoder = BGEEncoder.load(str(tiny_bert))
    encoded = encoder.tokenizer(TEXTS * 5, padding=False, truncation=True, max_length=512)
    sizes: list[tuple[int, int]] = []

    def run_batches(max_tokens):
        out = np.zeros((len(TEXTS) * 5, encoder.embedding_dim), dtype=np.float32)

        def forward(idx, batch):
            sizes.append(tuple(batch["input_ids"].shape))
            from cmteb.models.encoder import pool

            out[idx] = pool(encoder.model(**batch).last_hidden_state, batch["attention_mask"], "cls").detach().numpy()

        forward_in_batches(encoder.tokenizer, encoded, 64, "cpu", BatchStats(), forward, max_tokens=max_tokens)
        return out

    fixed = run_batches(None)
    sizes.clear()
    budget = run_batches(40)
    assert all(n * length <= 40 or n == 1 for n, length in sizes)
    assert len(sizes) > 1
    np.testing.assert_allclose(budget, fixed, atol=1e-5)


@pytest.mark.parametrize("task_name", ["T2Retrieval", "EcomRetrieval"])
def test_chunked_exact_search_equals_one_block(m3e_dir, samples_dir, task_name):
    """cmteb's exact search (`runner/search.py`) over chunks of 7 documents equals mteb's own search over the whole
    corpus in one block, every metric: a real model (truncated to 8 tokens, so rankings are imperfect) and one
    shared cache, so both searches see the very same vectors (a random model's float32 cosines tie too often)."""
    from cmteb.runner.search import ExactSearch

    model = BGEModel(BGEEncoder.load(str(m3e_dir), name="org/m3e-small", max_length=8), instructions={})
    spec = load_registry().get(task_name)
    scores = []
    for search in (SearchEncoderWrapper(model, corpus_chunk_size=50_000), ExactSearch(model, corpus_chunk_size=7)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = mteb.evaluate(
                search,
                build_task(spec, samples_dir, in_memory=False),
                cache=None,
                overwrite_strategy="always",
                show_progress_bar=False,
                encode_kwargs={"show_progress_bar": False},
            ).task_results[0]
        scores.append(result.scores["dev"][0])
    assert scores[0]["ndcg_at_10"] < 1  # rankings the search can get wrong
    assert scores[0] == scores[1]


def test_a_local_models_fingerprint_reads_its_files_once_until_one_changes(tiny_bert, tmp_path, monkeypatch):
    import builtins
    import shutil

    import cmteb.io
    from cmteb.fingerprints import fingerprint_memo_file
    from cmteb.models import sources

    model = shutil.copytree(tiny_bert, tmp_path / "m")
    read = []

    def counting_open(path, *args, **kwargs):
        read.append(Path(path).name)
        return builtins.open(path, *args, **kwargs)

    monkeypatch.setattr(cmteb.io, "open", counting_open, raising=False)  # where files are read for hashing
    first = sources.model_fingerprint(model)
    assert "model.safetensors" in read
    read.clear()
    assert sources.model_fingerprint(model) == first and read == [], "the second run reads no model file"
    config = model / "config.json"
    config.write_text(config.read_text().replace('"gelu"', '"relu"'))
    changed = sources.model_fingerprint(model)
    assert changed != first and "model.safetensors" in read
    fingerprint_memo_file().unlink()  # without the memo, the same content gives the same fingerprint
    assert sources.model_fingerprint(model) == changed
    # An in-place edit of the same size that puts the modification time back (`cp -p`, `rsync -a`, `touch -d`):
    # the status-change time still moved, so the folder is hashed again.
    stat = config.stat()
    config.write_text(config.read_text().replace('"relu"', '"silu"'))
    os.utime(config, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert (config.stat().st_size, config.stat().st_mtime_ns) == (stat.st_size, stat.st_mtime_ns)
    assert sources.model_fingerprint(model) not in (first, changed)


def test_all_state_lives_in_the_cache_folder_and_no_cache_writes_none(tiny_bert, samples_dir, tmp_path):
    """--cache-dir moves every file cmteb keeps between runs (embeddings, stored results, fingerprints);
    --no-cache writes none of them, under the default state folder or anywhere else."""
    from cmteb.cli import main
    from cmteb.fingerprints import cache_root

    home = cache_root()
    before = sorted(home.rglob("*")) if home.exists() else []
    args = ["run", "--model", str(tiny_bert), "--tasks", "ATEC", "--data-dir", str(samples_dir), "--no-progress"]
    assert main([*args, "--output-dir", str(tmp_path / "a"), "--no-cache"]) == 0
    assert main([*args, "--output-dir", str(tmp_path / "b"), "--cache-dir", str(tmp_path / "state")]) == 0
    after = sorted(home.rglob("*")) if home.exists() else []
    assert after == before, "nothing written under the default state folder"
    kept = {p.relative_to(tmp_path / "state").parts[0] for p in (tmp_path / "state").rglob("*") if p.is_file()}
    assert kept == {"embeddings", "results", "fingerprints.json"}


@pytest.mark.parametrize("side", ["right", "left"])
def test_batches_are_padded_exactly_as_the_tokenizer_pads_them(side, m3e_dir):
    import torch
    from transformers import AutoTokenizer

    from cmteb.models.batching import pad_batch

    tokenizer = AutoTokenizer.from_pretrained(str(m3e_dir))
    tokenizer.padding_side = side
    singles = tokenizer(TEXTS, padding=False)
    pairs = tokenizer(TEXTS, TEXTS[::-1], padding=False)  # a cross-encoder's pairs: token types 0 and 1
    for encoded in (singles, pairs):
        features = {k: list(v) for k, v in encoded.items()}
        expected = tokenizer.pad(features, padding=True, return_tensors="pt")
        padded = pad_batch(tokenizer, features)
        assert list(padded) == list(expected)
        assert all(torch.equal(padded[k], expected[k]) for k in expected)
    # single texts tokenised to their ids alone: the mask and token types are made, the same tensors
    padded = pad_batch(tokenizer, {"input_ids": list(singles["input_ids"])})
    expected = tokenizer.pad({k: list(v) for k, v in singles.items()}, padding=True, return_tensors="pt")
    assert list(padded) == list(expected) == ["input_ids", "token_type_ids", "attention_mask"]
    assert all(torch.equal(padded[k], expected[k]) for k in expected)


def test_a_mirrors_fingerprint_reads_its_files_once_until_one_changes(tmp_path, monkeypatch):
    import builtins
    import shutil

    import cmteb.io
    from cmteb.assets import SAMPLES_DIR
    from cmteb.fingerprints import fingerprint_memo_file
    from cmteb.tasks import mirror
    from cmteb.tasks.protocols import resolve_protocol

    spec = resolve_protocol(None).get("T2Retrieval")
    for repo, _ in spec.repos:
        shutil.copytree(mirror.mirror_path(SAMPLES_DIR, spec, repo), mirror.mirror_path(tmp_path, spec, repo))
    read = []

    def counting_open(path, *args, **kwargs):
        read.append(Path(path).name)
        return builtins.open(path, *args, **kwargs)

    monkeypatch.setattr(cmteb.io, "open", counting_open, raising=False)  # where files are read for hashing
    first = mirror.mirror_fingerprint(tmp_path, spec)
    assert first == mirror.mirror_fingerprint(SAMPLES_DIR, spec), "the hash is of the content, not of the place"
    assert any(name.endswith(".parquet") for name in read)
    read.clear()
    assert mirror.mirror_fingerprint(tmp_path, spec) == first and read == [], "the second run reads no data file"
    one_file = sorted(mirror.mirror_path(tmp_path, spec).rglob("*.parquet"))[-1]
    one_file.write_bytes(one_file.read_bytes() + b"\0")
    changed = mirror.mirror_fingerprint(tmp_path, spec)
    assert changed != first and one_file.name in read
    fingerprint_memo_file().unlink()  # without the memo, the same content gives the same fingerprint
    assert mirror.mirror_fingerprint(tmp_path, spec) == changed
