"""The attention mask decided on the host: the same outputs as transformers' own mask, and no batch that
makes transformers read the device to learn whether it holds padding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from cmteb.models.encoder import BGEEncoder
from cmteb.models.reranker import BGEReranker
from cmteb.models.speed.masks import takes_prepared_mask

# Token lengths 10, 10 | 8, 6 | 6, 6 | 4, 3 once sorted: batches of two with and without padding, in two
# shapes each.
TEXTS = ["好", "今天天气很好", "我们去公园散步吧", "样例数据", "今天天气真的很好", "很好", "味道不错", "外卖很快"]


def _xlm_roberta(tiny_bert: Path, target: Path) -> Path:
    """A tiny random XLM-R encoder (transformers' XLMRobertaModel) with the tiny BERT's vocabulary."""
    from transformers import AutoTokenizer, XLMRobertaConfig, XLMRobertaModel

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_bert))
    config = XLMRobertaConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=130,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(2)
    XLMRobertaModel(config, add_pooling_layer=False).save_pretrained(target)
    tokenizer.save_pretrained(target)
    return target


@pytest.fixture(scope="module")
def tiny_xlm_roberta(tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _xlm_roberta(tiny_bert, tmp_path_factory.mktemp("tiny-xlm-roberta"))


def _both_ways(core, compute):
    """`compute()` with the host-decided masks, then with transformers' own."""
    assert core.prepared_masks
    ours = compute()
    core.prepared_masks = False
    try:
        return ours, compute()
    finally:
        core.prepared_masks = True


@pytest.mark.parametrize("family", ["bert", "xlm-roberta"])
@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_embeddings_equal_transformers_masks_to_the_last_bit(tiny_bert, tiny_xlm_roberta, family, pooling):
    model = tiny_bert if family == "bert" else tiny_xlm_roberta
    core = BGEEncoder.load(str(model), pooling=pooling, batch_size=2, cpu_streams=1)
    ours, theirs = _both_ways(core, lambda: core.encode(TEXTS))
    assert np.array_equal(ours, theirs)


def test_reranker_scores_equal_transformers_masks_to_the_last_bit(tiny_cross_encoder):
    core = BGEReranker.load(str(tiny_cross_encoder), batch_size=2, cpu_streams=1)
    pairs = [(TEXTS[i], TEXTS[-1 - i]) for i in range(len(TEXTS))]
    ours, theirs = _both_ways(core, lambda: core.score(pairs))
    assert np.array_equal(ours, theirs)


def test_no_batch_makes_transformers_read_the_device(tiny_bert, monkeypatch):
    """transformers builds no mask from a 2D padding mask (where it would ask the device whether any token is
    masked); padded batches come with the 4D mask, unpadded ones with none."""
    import transformers.masking_utils as masking

    real_sdpa_mask = masking.ALL_MASK_ATTENTION_FUNCTIONS["sdpa"]

    def sdpa_mask(*args, **kwargs):
        assert kwargs.get("attention_mask") is None, "transformers was handed a 2D padding mask"
        return real_sdpa_mask(*args, **kwargs)

    monkeypatch.setitem(masking.ALL_MASK_ATTENTION_FUNCTIONS, "sdpa", sdpa_mask)
    core = BGEEncoder.load(str(tiny_bert), pooling="mean", batch_size=2, cpu_streams=1)
    masks: list[torch.Tensor | None] = []
    core.model.register_forward_pre_hook(lambda _m, _a, kw: masks.append(kw.get("attention_mask")), with_kwargs=True)
    core.encode(TEXTS)
    assert None in masks and any(mask is not None and mask.dim() == 4 for mask in masks)
    core.prepared_masks = False  # the check above fails on transformers' own path
    with pytest.raises(AssertionError, match="2D padding mask"):
        core.encode(TEXTS)


def test_only_transformers_own_sdpa_encoders_take_it(tiny_bert):
    from transformers import AutoModel, BertModel

    assert takes_prepared_mask(AutoModel.from_pretrained(str(tiny_bert)))
    eager = AutoModel.from_pretrained(str(tiny_bert), attn_implementation="eager")
    assert not takes_prepared_mask(eager)  # eager attention takes an additive float mask

    class RemoteCodeBert(BertModel):  # a network defined outside transformers, as remote code is
        pass

    remote = RemoteCodeBert.from_pretrained(str(tiny_bert))
    assert not takes_prepared_mask(remote)
    decoder = AutoModel.from_pretrained(str(tiny_bert))
    decoder.config.is_decoder = True
    assert not takes_prepared_mask(decoder)
