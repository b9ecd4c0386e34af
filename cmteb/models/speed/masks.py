"""The attention mask handed to the network, decided on the host: no batch waits on the device for it.

Given a 2D padding mask, transformers (5.x, SDPA attention) first asks whether any token is masked
(`padding_mask.all()` read in Python) and passes SDPA no mask when none is. On a GPU that read waits for
every pass queued before it, once per batch: the host cannot pad, pin and queue the next batch while the
device computes this one. The host already knows the answer from the token lengths. So a batch without
padding goes in without a mask (what transformers then passes SDPA), and a batch with padding gets the
4D boolean mask transformers would build from it (`[batch, 1, query, key]`, each row the padding mask),
which transformers passes through as given. The same kernels run on the same inputs: the embeddings are
equal to the last bit (`tests/test_masks.py`).

Only networks whose code is known to take a prepared 4D mask that way get one (`takes_prepared_mask`):
transformers' own BERT, RoBERTa and XLM-R encoders with SDPA attention. Any other network (eager or
flash attention, remote code, other families) gets the 2D mask of every batch, as before.
"""

from __future__ import annotations

from typing import Any

import torch

PREPARED_MASK_FAMILIES = ("bert", "roberta", "xlm-roberta")  # transformers' create_bidirectional_mask path


def takes_prepared_mask(model: torch.nn.Module) -> bool:
    """Whether `model` is one of transformers' own encoders that take the host-decided mask (see the module)."""
    config = getattr(model, "config", None)
    return (
        config is not None
        and type(model).__module__.startswith("transformers.models.")
        and getattr(config, "model_type", None) in PREPARED_MASK_FAMILIES
        and getattr(config, "_attn_implementation", None) == "sdpa"
        and not getattr(config, "is_decoder", False)
    )


def network_inputs(batch: dict[str, torch.Tensor], prepared: bool) -> dict[str, Any]:
    """The keyword arguments of one forward pass: with `prepared`, a padding mask (present only when the batch
    has padding) becomes the 4D boolean mask transformers would build from it, without reading the device."""
    mask = batch.get("attention_mask")
    if not prepared or mask is None:
        return batch
    size, length = mask.shape
    return {**batch, "attention_mask": mask.bool()[:, None, None, :].expand(size, 1, length, length)}
