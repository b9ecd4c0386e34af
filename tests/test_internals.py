"""The transformers and bm25s internals cmteb relies on (`cmteb/internals.py`) still exist with what cmteb uses
of them. When a library is upgraded and this fails, the message names the internal that moved."""

from __future__ import annotations

import importlib
import inspect
import operator

import numpy as np
import pytest

from cmteb.internals import BERT_LAYER_PARTS, CALLABLES, CONFIG_ATTRIBUTES, LOADING_INFO_KEYS


@pytest.mark.parametrize(("module", "path", "arguments", "user"), CALLABLES, ids=[f"{m}.{p}" for m, p, *_ in CALLABLES])
def test_each_internal_still_exists_with_the_arguments_used(module, path, arguments, user):
    try:
        found = operator.attrgetter(path)(importlib.import_module(module))
    except (ImportError, AttributeError):
        pytest.fail(f"{module} no longer has {path}: update cmteb/{user}")
    assert callable(found), f"{module}.{path} is no longer callable: update cmteb/{user}"
    missing = [a for a in arguments if a not in inspect.signature(found).parameters]
    assert not missing, f"{module}.{path} lost the arguments {missing}: update cmteb/{user}"


def test_a_bert_layer_has_the_parts_the_first_token_shortcut_computes_with(tiny_bert):
    from transformers import AutoModel

    model, info = AutoModel.from_pretrained(tiny_bert, output_loading_info=True)
    for part in BERT_LAYER_PARTS:
        owner = model
        for name in part.split("."):
            owner = owner[int(name)] if name.isdigit() else getattr(owner, name, None)
            assert owner is not None, f"transformers' BertModel has no {part}: update cmteb/models/speed/first_token.py"
    assert all(hasattr(model.config, a) for a in CONFIG_ATTRIBUTES), "config attributes models/speed/ reads"
    assert model.config._attn_implementation in ("sdpa", "eager")
    assert set(LOADING_INFO_KEYS) <= set(info), "what models/loading.py reads of output_loading_info"


def test_bm25s_scorers_compute_lucene_bm25_as_cmteb_assumes():
    """bm25.py applies bm25s' scorers to its own term-frequency matrix: idf(df, N) and tfc(tf, l_d, l_avg, k1,
    b, delta), elementwise, as Lucene's BM25 defines them."""
    from bm25s.scoring import _select_idf_scorer, _select_tfc_scorer

    idf = [_select_idf_scorer("lucene")(df, N=10) for df in (1, 5)]  # per token, as bm25.py calls it
    assert np.allclose(idf, [np.log(1 + (10 - df + 0.5) / (df + 0.5)) for df in (1, 5)])
    tf, lengths = np.array([1.0, 3.0]), np.array([4.0, 8.0])
    tfc = _select_tfc_scorer("lucene")(tf, lengths, 6.0, 1.5, 0.75, 0.5)
    assert np.allclose(tfc, tf / (tf + 1.5 * (1 - 0.75 + 0.75 * lengths / 6.0)))
