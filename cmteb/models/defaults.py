"""Per-model defaults: the retrieval instruction (FlagEmbedding's model list) and the pooling."""

from __future__ import annotations

import re

from cmteb.tasks.types import TYPES

ZH_INSTRUCTION = "为这个句子生成表示以用于检索相关文章："
EN_INSTRUCTION = "Represent this sentence for searching relevant passages: "

#: Task types whose queries get the instruction; passages and every other type never do.
INSTRUCTED_TASK_TYPES = frozenset(t.name for t in TYPES.values() if t.instructed)


def default_instruction(model_name: str) -> str | None:
    """The query instruction FlagEmbedding documents for `model_name`, or None.

    BGE v1/v1.5 zh models take the Chinese instruction, en models the English one; the
    `-noinstruct` variants, bge-m3 and non-BGE models take none.
    """
    name = model_name.lower().rstrip("/").split("/")[-1]
    if not name.startswith("bge-") or "noinstruct" in name or name.startswith("bge-m3"):
        return None
    if "reranker" in name:
        return None
    if re.search(r"-zh(-|$)", name):
        return ZH_INSTRUCTION
    if re.search(r"-en(-|$)", name):
        return EN_INSTRUCTION
    return None


def default_pooling(model_name: str) -> str | None:
    """The pooling a model family was trained with when its files do not say; None: ask the files.

    M3E models are trained with mean pooling but ship no sentence-transformers pooling file.
    """
    name = model_name.lower().rstrip("/").split("/")[-1]
    if name.startswith("m3e-"):
        return "mean"
    return None
