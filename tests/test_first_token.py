"""The last layer computed for the first token alone gives the full network's CLS row."""

from __future__ import annotations

import pytest
import torch
from tolerances import reordered

from cmteb.models.encoder import BGEEncoder
from cmteb.models.speed.first_token import FirstTokenLayer, compute_first_token_only, first_token_ready, pays_on

TEXTS = ["样例数据-1", "今天天气很好，我们去公园散步吧。", "这家外卖送得很快，味道也不错，下次还会再点。", "好"]


def _cls_rows(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    with torch.inference_mode():
        return model(**batch).last_hidden_state[:, 0]


@pytest.mark.parametrize("kernel", ["sdpa", "eager"])
def test_first_token_layer_gives_the_full_layers_cls_row(m3e_dir, kernel):
    """Padded texts of four lengths (the mask's first row is what the shortcut reads), one text alone."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(m3e_dir))
    full = AutoModel.from_pretrained(str(m3e_dir), attn_implementation=kernel).eval()
    short = AutoModel.from_pretrained(str(m3e_dir), attn_implementation=kernel).eval()
    assert compute_first_token_only(short) and isinstance(short.encoder.layer[-1], FirstTokenLayer)
    for texts in (TEXTS, TEXTS[1:2]):
        batch = tokenizer(texts, padding=True, return_tensors="pt")
        expected, ours = _cls_rows(full, batch), _cls_rows(short, batch)
        assert short(**batch).last_hidden_state.shape[1] == 1  # the other rows are never computed
        # Only the last layer differs, in the shapes of its matmuls: its longest sum is the feed-forward's
        # (2.1e-6 measured at most at AVX-512, AVX2 and default arithmetic, for a bound of 2.0e-5).
        tolerance = reordered(full.config.intermediate_size, float(expected.abs().max()))
        torch.testing.assert_close(ours, expected, rtol=0, atol=tolerance)


def test_the_encoder_uses_it_for_cls_pooling_only(m3e_dir):
    cls = BGEEncoder.load(str(m3e_dir), pooling="cls")
    mean = BGEEncoder.load(str(m3e_dir), pooling="mean")
    assert isinstance(cls.model.encoder.layer[-1], FirstTokenLayer)
    assert not isinstance(mean.model.encoder.layer[-1], FirstTokenLayer)  # mean pooling reads every row
    assert compute_first_token_only(cls.model)  # a second call leaves the wrapped layer as it is
    assert not isinstance(cls.model.encoder.layer[-1].layer, FirstTokenLayer)
    # On a GPU the shortcut measured slower than the full layer (H100, fp16): CPUs only.
    assert pays_on(cls.device) and not pays_on("cuda") and not pays_on("cuda:1")


@pytest.mark.parametrize(
    "change",
    [{"is_decoder": True}, {"chunk_size_feed_forward": 4}, {"_attn_implementation": "flash_attention_2"}],
)
def test_networks_not_shaped_for_it_keep_their_last_layer(tiny_bert, change):
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(tiny_bert)).eval()
    assert first_token_ready(model)
    for name, value in change.items():
        setattr(model.config, name, value)
    assert not first_token_ready(model)
    assert not compute_first_token_only(model)
    assert not isinstance(model.encoder.layer[-1], FirstTokenLayer)


def test_a_cross_encoder_scores_as_with_its_full_last_layer(tiny_cross_encoder):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from cmteb.models.reranker import BGEReranker

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_cross_encoder))
    full = AutoModelForSequenceClassification.from_pretrained(str(tiny_cross_encoder)).eval()
    reranker = BGEReranker.load(str(tiny_cross_encoder))
    assert isinstance(reranker.model.base_model.encoder.layer[-1], FirstTokenLayer)
    pairs = [("样例数据-1", text) for text in TEXTS]
    batch = tokenizer([q for q, _ in pairs], [p for _, p in pairs], padding=True, return_tensors="pt")
    with torch.inference_mode():
        expected = full(**batch).logits.view(-1)
    tolerance = reordered(full.config.intermediate_size, float(expected.abs().max()))
    torch.testing.assert_close(torch.from_numpy(reranker.score(pairs)), expected, rtol=0, atol=tolerance)
