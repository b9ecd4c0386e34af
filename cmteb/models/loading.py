"""Load transformers objects for a resolved model (`sources.ModelSource`) with clear errors: its config, its
weights (and what did not match), its tokenizer."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from cmteb.errors import CmtebError
from cmteb.models.devices import pick_device
from cmteb.models.sources import ModelSource

logger = logging.getLogger(__name__)


def load_config(source: ModelSource, *, trust_remote_code: bool = False) -> Any:
    """Load the model config; a model that needs remote code fails with a message naming the flag."""
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(
            source.path, revision=None if source.local_dir else source.revision, trust_remote_code=trust_remote_code
        )
    except ValueError as exc:
        if "trust_remote_code" in str(exc):
            raise CmtebError(
                f"model {source.name} needs its own code to load: rerun with --trust-remote-code if you trust it"
            ) from exc
        raise CmtebError(f"model {source.name} cannot be loaded: {str(exc).splitlines()[0]}") from exc
    except OSError as exc:
        raise CmtebError(
            f"model {source.name} cannot be loaded ({str(exc).splitlines()[0]}): check the hub id, or pass a local "
            "directory; without network, set HF_HUB_OFFLINE=1 and use cached or local models"
        ) from exc


#: Model types whose config.json alone gives their position limit (`max_position_embeddings`, no remote code).
PLAIN_POSITION_TYPES = frozenset({"bert", "roberta", "xlm-roberta"})


def position_config(source: ModelSource, *, trust_remote_code: bool = False) -> Any:
    """What `usable_max_length` reads of a model's config. A local BERT/RoBERTa-style config.json is read as
    JSON (importing transformers takes about a second, and a run the result store answers needs nothing
    else of it); any other model goes through `load_config`."""
    file = source.local_dir / "config.json" if source.local_dir else None
    try:
        fields = json.loads(file.read_text(encoding="utf-8")) if file else {}
    except (OSError, ValueError):
        fields = {}
    plain = fields.get("model_type") in PLAIN_POSITION_TYPES and "auto_map" not in fields
    if plain and isinstance(fields.get("max_position_embeddings"), int):
        limit = fields["max_position_embeddings"]
        return SimpleNamespace(model_type=fields["model_type"], max_position_embeddings=limit)
    return load_config(source, trust_remote_code=trust_remote_code)


PRECISIONS = ("fp32", "fp16", "bf16")


#: Weights an embedding model may lack or carry in excess without changing an embedding: the pooler
#: (cmteb pools the last hidden state itself), pre-training and task heads, buffers.
HARMLESS_FOR_EMBEDDINGS = re.compile(r"(^|\.)(pooler|cls|lm_head|classifier|score|qa_outputs)\.|position_ids$")
HARMLESS_BUFFERS = re.compile(r"position_ids$")


def _layers(keys: list[str]) -> str:
    """Weight names summarised by layer (`encoder.layer.3`, `pooler`), for a one-line message."""
    layers = sorted({".".join(k.split(".")[:3]) if ".layer." in k else k.rsplit(".", 1)[0] for k in keys})
    return ", ".join(layers[:6]) + (f" and {len(layers) - 6} more" if len(layers) > 6 else "")


def weight_report(info: dict[str, Any], harmless: re.Pattern[str]) -> dict[str, list[str]]:
    """The checkpoint's missing and unexpected weights (those that would change outputs), by transformers' load."""
    return {
        kind: sorted(k for k in info.get(f"{kind}_keys") or () if not harmless.search(k))
        for kind in ("missing", "unexpected", "mismatched")
    }


def check_weights(source: ModelSource, report: dict[str, list[str]], allow: bool) -> None:
    """Stop a run whose checkpoint lacks weights (they would be random) or holds others, unless allowed."""
    found = [(kind, keys) for kind, keys in report.items() if keys]
    if not found or allow:
        return
    what = "; ".join(f"{len(keys)} {kind} ({_layers(list(keys))})" for kind, keys in found)
    raise CmtebError(
        f"model {source.name} does not match its checkpoint: {what} weights, which would run with random "
        "values: point --model at the complete checkpoint, or pass --allow-missing-weights to run it anyway"
    )


def load_network(
    auto_class: Any,
    source: ModelSource,
    config: Any,
    *,
    precision: str,
    device: str,
    trust_remote_code: bool = False,
    harmless: re.Pattern[str] = HARMLESS_BUFFERS,
) -> tuple[Any, dict[str, list[str]]]:
    """Load weights with `auto_class` in `precision` on `device`, in eval mode; also what did not match.

    `harmless` names weights whose absence or excess changes no output. Several devices are served by
    one worker process each (`cmteb.workers`), never by DataParallel.
    """
    import torch

    if precision not in PRECISIONS:
        raise CmtebError(f"unknown precision {precision!r}: choose from {', '.join(PRECISIONS)}")
    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
    load = dict(  # the from_pretrained keywords: used again for a mismatch report
        config=config,
        dtype=dtype,
        revision=None if source.local_dir else source.revision,
        trust_remote_code=trust_remote_code,
        output_loading_info=True,
        # Onto the GPU as the weights are read: no full copy in host memory and no second copy after.
        device_map={"": torch.device(device)} if device.startswith("cuda") else None,
    )
    try:
        net, info = auto_class.from_pretrained(source.path, **load)
    except (OSError, ValueError) as exc:
        raise CmtebError(f"model {source.name} cannot be loaded: {str(exc).splitlines()[0]}") from exc
    except Exception as exc:  # safetensors' SafetensorError, torch's PytorchStreamReader RuntimeError, ...
        if "ignore_mismatched_sizes" in str(exc):
            raise _size_mismatch(auto_class, source, load) from exc
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0].split(". ")[0]  # the cause, not advice
        raise CmtebError(
            f"the weight files of model {source.name} cannot be read ({type(exc).__name__}: {first}): "
            "they are damaged or incomplete; copy or download them again"
        ) from exc
    net.eval().to(device)
    return net, weight_report(info, harmless)


def _size_mismatch(auto_class: Any, source: ModelSource, load: dict[str, Any]) -> CmtebError:
    """The error for weights whose shapes differ from what config.json declares (a config of another model
    size): the first differing weight, found by loading again with transformers' own mismatch report."""
    _, info = auto_class.from_pretrained(source.path, **load, ignore_mismatched_sizes=True)
    mismatched = sorted(info.get("mismatched_keys") or [])  # (name, shape in the weights, shape by the config)
    detail = ""
    if mismatched:
        key, in_weights, by_config = mismatched[0]
        detail = f": {key} is {list(in_weights)} in the weights, {list(by_config)} by the config ({len(mismatched)} so)"
    return CmtebError(
        f"the config.json of model {source.name} does not match its weights{detail}: use the config.json that came "
        "with these weights"
    )


def usable_max_length(config: Any, requested: int) -> int:
    """`requested`, capped at what the model's position embeddings allow."""
    if requested < 1:
        raise CmtebError(f"--max-length must be positive, got {requested}")
    limit = getattr(config, "max_position_embeddings", None)
    if limit and getattr(config, "model_type", "") in {"xlm-roberta", "roberta"}:
        limit -= 2  # RoBERTa-style position ids start after the padding index
    return min(requested, limit) if limit else requested


NOT_ENCODER_HEADS = ("ForCausalLM", "LMHeadModel", "ForConditionalGeneration")


def check_text_encoder(config: Any, name: str, *, decoder: bool = False) -> None:
    """Refuse models that are not text models of the kind asked: a decoder (a causal language model) only where
    its family runs one (`decoder`), never an encoder-decoder or a non-text model."""
    archs = list(getattr(config, "architectures", None) or [])
    generates = any(a.endswith(NOT_ENCODER_HEADS) for a in archs) and not decoder
    is_generator = getattr(config, "is_encoder_decoder", False) or generates
    if is_generator or not hasattr(config, "vocab_size"):
        kind = ", ".join(archs) or getattr(config, "model_type", "unknown")
        raise CmtebError(
            f"model {name} ({kind}) is not a model cmteb runs this way: a decoder is run only as a family that "
            "knows it (`cmteb families` lists them), never an encoder-decoder"
        )


TOKENIZER_FILES = (
    "tokenizer.json",
    "vocab.txt",
    "sentencepiece.bpe.model",
    "tokenizer.model",
    "spiece.model",
    "vocab.json",
)


def load_tokenizer(source: ModelSource, *, trust_remote_code: bool = False, config: Any = None) -> Any:
    """Load the model's tokenizer, refusing a missing or vocabulary-less one.

    transformers builds an empty tokenizer (special tokens only) for a folder without tokenizer
    files, which would turn every character into [UNK]; that is caught here.
    """
    from transformers import AutoTokenizer

    hint = "add the tokenizer files (tokenizer.json or vocab.txt) to the model directory"
    if source.local_dir is not None and not any((source.local_dir / f).is_file() for f in TOKENIZER_FILES):
        raise CmtebError(
            f"model {source.name} has no usable tokenizer (no tokenizer files in {source.local_dir}): {hint}"
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            source.path, revision=None if source.local_dir else source.revision, trust_remote_code=trust_remote_code
        )
    except (OSError, ValueError, TypeError) as exc:
        raise CmtebError(f"model {source.name} has no usable tokenizer ({str(exc).splitlines()[0]}): {hint}") from exc
    expected = getattr(config, "vocab_size", None)
    if expected and len(tokenizer) < expected // 2:
        raise CmtebError(
            f"model {source.name} has no usable tokenizer ({len(tokenizer)} tokens for a model of {expected}): {hint}"
        )
    return tokenizer


def check_max_length(tokenizer: Any, max_length: int) -> None:
    """Refuse a max length that leaves no room for text: the tokenizer would then truncate nothing at all."""
    # A pair (query and passage for a reranker) needs its special tokens and one token of each side.
    needed = max(
        tokenizer.num_special_tokens_to_add(pair=False) + 1, tokenizer.num_special_tokens_to_add(pair=True) + 2
    )
    if max_length < needed:
        raise CmtebError(
            f"--max-length {max_length} leaves no room for text: this model's tokenizer adds special tokens, "
            f"so pass at least {needed}"
        )


@dataclass(frozen=True)
class LoadedModel:
    """What a model core needs: network, tokenizer, where it came from, its config and limits."""

    net: Any
    tokenizer: Any
    source: ModelSource
    config: Any
    max_length: int
    device: str
    weights: dict[str, list[str]]  # checkpoint weights that did not match: missing, unexpected, mismatched


def load_model(
    auto_class: Any,
    source: ModelSource,
    options: Any,
    *,
    check_config: Any = None,
    harmless: re.Pattern[str] = HARMLESS_BUFFERS,
    decoder: bool = False,
) -> LoadedModel:
    """Load a resolved text encoder with `auto_class` as `options` say (a `LoadOptions`), failing with clear errors.

    `check_config(config, source)` may refuse a config before any weights are read. A checkpoint whose
    weights do not match the network (beyond those `harmless` names) stops the load unless
    `options.allow_missing_weights`.
    """
    config = load_config(source, trust_remote_code=options.trust_remote_code)
    check_text_encoder(config, source.name, decoder=decoder)
    if check_config is not None:
        check_config(config, source)
    max_length = usable_max_length(config, options.max_length)
    tokenizer = load_tokenizer(source, trust_remote_code=options.trust_remote_code, config=config)
    check_max_length(tokenizer, max_length)
    device = pick_device(options.device)
    net, weights = load_network(
        auto_class,
        source,
        config,
        precision=options.precision,
        device=device,
        trust_remote_code=options.trust_remote_code,
        harmless=harmless,
    )
    check_weights(source, weights, options.allow_missing_weights)
    return LoadedModel(net, tokenizer, source, config, max_length, device, weights)
