"""A model folder's sentence-transformers files, read as sentence-transformers reads them (no torch import).

- `modules.json`: the module pipeline. A `Pooling` module's folder holds its `config.json` (the mode: the
  legacy `pooling_mode_*` flags or `pooling_mode`, and `include_prompt`); `Normalize` L2-normalises; `Dense`
  is a linear layer (its folder: `config.json` with `in_features`, `out_features`, `bias`,
  `activation_function`, and its weights).
- `sentence_bert_config.json`: `max_seq_length`, `do_lower_case`.
- `config_sentence_transformers.json`: `prompts` (name -> text put before the input) and
  `default_prompt_name` (the prompt every input without one gets).

A folder without `modules.json` is not a sentence-transformers folder (sentence-transformers would build a
mean-pooling pipeline of its own: cmteb decides from the model family instead, `families.py`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cmteb.errors import CmtebError

#: Pooling modes cmteb computes (sentence-transformers' names).
POOLING_MODES = ("cls", "mean", "lasttoken")
#: The legacy per-mode flags of a Pooling config, in sentence-transformers' order.
LEGACY_POOLING_FLAGS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}
#: Module types of the pipeline cmteb runs itself, by the last part of their class name.
TRANSFORMER, POOLING, NORMALIZE, DENSE = "Transformer", "Pooling", "Normalize", "Dense"


@dataclass(frozen=True)
class SentenceTransformerFiles:
    """What a folder's sentence-transformers files say (`present` False: there are none)."""

    present: bool = False
    pooling: str | None = None  # sentence-transformers' mode name
    include_prompt: bool = True
    normalize: bool = False
    dense: tuple[str, ...] = ()  # the Dense modules' folders, relative to the model folder, in order
    max_seq_length: int | None = None
    do_lower_case: bool = False
    prompts: dict[str, str] = field(default_factory=dict)
    default_prompt_name: str | None = None
    modules: tuple[str, ...] = ()  # every module's type, as modules.json names it

    def describe(self) -> str:
        """The pipeline in words, for the run record and messages."""
        dense = [f"dense {Path(d).name}" for d in self.dense]
        return ", ".join([f"{self.pooling} pooling", *dense, "normalised" if self.normalize else "not normalised"])


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CmtebError(f"{path} cannot be read as JSON ({exc}): fix the file or remove it") from exc


def _pooling(config: dict[str, Any], path: Path) -> tuple[str, bool]:
    """The one pooling mode of a Pooling config, and whether the prompt's tokens take part."""
    mode = config.get("pooling_mode")
    if mode is None:
        modes = [name for flag, name in LEGACY_POOLING_FLAGS.items() if config.get(flag)]
        mode = modes if len(modes) != 1 else modes[0]
        if not modes:
            mode = "mean"  # sentence-transformers' default when no flag is set
    if isinstance(mode, list):
        mode = mode[0] if len(mode) == 1 else tuple(mode)
    if not isinstance(mode, str):
        raise CmtebError(f"{path} concatenates pooling modes {list(mode)}: cmteb computes one of {POOLING_MODES}")
    return mode, bool(config.get("include_prompt", True))


def read_sentence_transformers(model_dir: Path | None) -> SentenceTransformerFiles:
    """The sentence-transformers files of `model_dir` (none: `present` False)."""
    if model_dir is None or not (model_dir / "modules.json").is_file():
        return SentenceTransformerFiles()
    modules = _read_json(model_dir / "modules.json")
    found: dict[str, Any] = {"pooling": None, "include_prompt": True, "normalize": False, "dense": []}
    types = []
    for module in sorted(modules, key=lambda m: m.get("idx", 0)):
        kind = str(module.get("type", "")).rsplit(".", 1)[-1]
        types.append(kind)
        folder = model_dir / module.get("path", "")
        if kind == POOLING:
            found["pooling"], found["include_prompt"] = _pooling(_read_json(folder / "config.json"), folder)
        elif kind == NORMALIZE:
            found["normalize"] = True
        elif kind == DENSE:
            found["dense"].append(module.get("path", ""))
    bert_config = model_dir / "sentence_bert_config.json"
    st_config = model_dir / "config_sentence_transformers.json"
    bert = _read_json(bert_config) if bert_config.is_file() else {}
    prompts_config = _read_json(st_config) if st_config.is_file() else {}
    prompts = {k: v for k, v in (prompts_config.get("prompts") or {}).items() if isinstance(v, str)}
    return SentenceTransformerFiles(
        present=True,
        pooling=found["pooling"],
        include_prompt=found["include_prompt"],
        normalize=found["normalize"],
        dense=tuple(found["dense"]),
        max_seq_length=bert.get("max_seq_length"),
        do_lower_case=bool(bert.get("do_lower_case", False)),
        prompts=prompts,
        default_prompt_name=prompts_config.get("default_prompt_name"),
        modules=tuple(types),
    )
