"""CLS pooling reads one row of the last layer, so the last layer is computed for the first token alone.

In a BERT-family encoder the last layer's keys and values need every token, but its query, attention
output, feed-forward and layer norms are per token: for CLS pooling only the first token's are ever
read. Computing just that row removes 10 of the last layer's 12 hidden² matmul FLOPs per token: about a
fifth of the network's matmul work for a 4-layer model (m3e-small's shape), 7 % for bge-base, 3.5 % for bge-large.
The arithmetic is the same per row; only the matmul shapes differ, which moves an embedding by float
rounding (about 1e-7 in fp32), as batch composition does.

It is applied on a CPU only (`pays_on`). There the last layer's matmuls are most of its time and the
shortcut measured 0.785 of the encoder's time (m3e-small, CLS, 2 cores). On an H100 in fp16 a
bge-large-shaped encoder with it was slower, not faster: 0.622 s against 0.552 s for 613 texts of 512
tokens, and a cold `make bench` encoded at 55,000 tokens/s against 412,000 before it (one query row per
text turns the last layer's attention and matmuls into shapes the GPU kernels serve badly, for a 3.5 %
cut in FLOPs).

The layer is driven through transformers' own submodules and attention function, so the weights,
scaling, mask handling and attention kernel are the model's own; any network not shaped as expected
(a decoder, cross-attention, chunked feed-forward, an attention kernel other than SDPA or eager, other
module names) keeps its full last layer.
"""

from __future__ import annotations

from typing import Any

import torch

ATTENTION_KERNELS = ("sdpa", "eager")  # both take the query rows and a 4D mask as given


class FirstTokenLayer(torch.nn.Module):
    """The encoder's last layer computed for the first position only: outputs `[batch, 1, hidden]`."""

    def __init__(self, layer: torch.nn.Module) -> None:
        super().__init__()
        self.layer = layer
        self.attend = _attention_function(layer.attention.self)  # resolved once, not per batch

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None, *_: Any, **__: Any):
        """What the wrapped layer gives at position 0, from every position's keys and values."""
        attention = self.layer.attention
        heads = attention.self
        batch, first = hidden_states.shape[0], hidden_states[:, :1]
        split = (batch, -1, heads.num_attention_heads, heads.attention_head_size)
        query = heads.query(first).view(split).transpose(1, 2)
        key = heads.key(hidden_states).view(split).transpose(1, 2)
        value = heads.value(hidden_states).view(split).transpose(1, 2)
        if attention_mask is not None and attention_mask.dim() == 4:
            attention_mask = attention_mask[:, :, :1]  # the first query's row of a [batch, 1, query, key] mask
        context, _ = self.attend(heads, query, key, value, attention_mask, dropout=0.0, scaling=heads.scaling)
        attended = attention.output(context.reshape(batch, 1, -1), first)
        return self.layer.output(self.layer.intermediate(attended), attended)


def _attention_function(heads: torch.nn.Module) -> Any:
    """The attention function the model's self-attention calls: transformers' registered kernel (SDPA),
    else the eager function of the module's own model file (None if it has none)."""
    import importlib

    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    eager = getattr(importlib.import_module(type(heads).__module__), "eager_attention_forward", None)
    return ALL_ATTENTION_FUNCTIONS.get_interface(heads.config._attn_implementation, eager)


def first_token_ready(model: torch.nn.Module) -> bool:
    """Whether `model`'s last layer can be (or already is) computed for its first token alone (see the
    module's docstring)."""
    config = getattr(model, "config", None)
    layers = getattr(getattr(model, "encoder", None), "layer", None)
    if config is None or not isinstance(layers, torch.nn.ModuleList) or len(layers) == 0:
        return False
    if getattr(config, "is_decoder", True) or getattr(config, "add_cross_attention", True):
        return False
    if getattr(config, "chunk_size_feed_forward", 1) != 0 or config._attn_implementation not in ATTENTION_KERNELS:
        return False
    last = layers[-1]
    if isinstance(last, FirstTokenLayer):
        return True
    heads = getattr(getattr(last, "attention", None), "self", None)
    parts = [getattr(heads, name, None) for name in ("query", "key", "value")]
    return (
        all(isinstance(p, torch.nn.Linear) for p in parts)
        and hasattr(heads, "scaling")
        and _attention_function(heads) is not None
        and hasattr(last.attention, "output")
        and hasattr(last, "intermediate")
        and hasattr(last, "output")
    )


def pays_on(device: str) -> bool:
    """Whether the shortcut is applied on `device`: a CPU only (see the module's docstring for the GPU figures)."""
    return device == "cpu"


def compute_first_token_only(model: torch.nn.Module) -> bool:
    """Replace `model`'s last layer with its first-token form when the network allows it; whether it did."""
    if not first_token_ready(model):
        return False
    if not isinstance(model.encoder.layer[-1], FirstTokenLayer):
        model.encoder.layer[-1] = FirstTokenLayer(model.encoder.layer[-1])
    return True
