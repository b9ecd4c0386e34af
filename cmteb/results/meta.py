"""The model_meta.json of a result folder: what mteb knows of the model, named and revised as the folder is.

mteb's model registry (`mteb.get_model_meta`) holds what no model file says (release date, languages,
license, reference, training data); a model it does not know gets the metadata measured from the loaded model.
A run of non-default settings carries them as mteb's `experiment_kwargs`, so that mteb's `ResultCache` keeps
it apart from the model's default run (as an experiment of it) instead of merging the two folders' tasks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # mteb is imported by what calls this, never by a run answered from the result store
    from mteb.models.model_meta import ModelMeta


def registry_meta(name: str) -> ModelMeta | None:
    """mteb's registry entry for `name`, or None when mteb does not know the model (never asks the hub)."""
    import mteb

    try:
        return mteb.get_model_meta(name, fetch_from_hf=False)
    except KeyError:
        return None


def folder_model_meta(measured: ModelMeta, *, name: str, revision: str, variant: Mapping[str, Any]) -> ModelMeta:
    """The metadata a result folder of `name` at `revision` carries: the registry's entry (its empty fields
    filled from `measured`) or `measured` itself, with `variant` as experiment_kwargs (None for the default)."""
    known = registry_meta(name)
    base = measured
    if known is not None:
        filled = {k: v for k, v in measured.model_dump().items() if v is not None and getattr(known, k, 0) is None}
        base = known.model_copy(update=filled)
    return base.model_copy(update={"name": name, "revision": revision, "experiment_kwargs": dict(variant) or None})
