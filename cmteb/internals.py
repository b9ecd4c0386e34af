"""The internals of transformers and bm25s that cmteb relies on, listed in one place (mteb's are in
`mteb_hooks.USED_INTERNALS`). `tests/test_internals.py` checks each still exists with what cmteb uses of it,
and `tests/test_first_token.py`, `tests/test_masks.py` and `tests/test_lexical.py` check the results are
still equal to the plain path's; pyproject.toml's ranges are the versions these tests passed on.

Each entry: (module, attribute path, the arguments cmteb passes or the attributes it reads, where it is used).
"""

from __future__ import annotations

#: Callables whose arguments cmteb names: (module, attribute path, arguments, the cmteb module using it).
CALLABLES: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    ("transformers.modeling_utils", "ALL_ATTENTION_FUNCTIONS.get_interface", (), "models/speed/first_token.py"),
    ("transformers.models.bert.modeling_bert", "eager_attention_forward", (), "models/speed/first_token.py"),
    ("transformers.masking_utils", "create_bidirectional_mask", (), "models/speed/masks.py"),
    ("transformers.utils.logging", "disable_progress_bar", (), "runner/evaluate.py, workers/replica.py"),
    ("transformers.utils.logging", "set_verbosity_error", (), "workers/replica.py"),
    ("bm25s.scoring", "_select_idf_scorer", ("method",), "models/lexical/bm25.py"),
    ("bm25s.scoring", "_select_tfc_scorer", ("method",), "models/lexical/bm25.py"),
)

#: The layout of transformers' BERT layer that the first-token shortcut computes with (module paths read from a
#: loaded BertModel; XLM-R and RoBERTa share it).
BERT_LAYER_PARTS = (
    "encoder.layer",
    "encoder.layer.0.attention.self.query",
    "encoder.layer.0.attention.self.key",
    "encoder.layer.0.attention.self.value",
    "encoder.layer.0.attention.self.scaling",
    "encoder.layer.0.attention.output",
    "encoder.layer.0.intermediate",
    "encoder.layer.0.output",
)

#: Config attributes read: the attention implementation a model runs with (a private field of transformers').
CONFIG_ATTRIBUTES = ("_attn_implementation", "is_decoder", "add_cross_attention", "chunk_size_feed_forward")

#: What `from_pretrained(..., output_loading_info=True)` returns beside the model (models/loading.py).
LOADING_INFO_KEYS = ("missing_keys", "unexpected_keys", "mismatched_keys")
