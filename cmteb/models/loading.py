"""Resolve a model argument (hub id or local directory) and load transformers objects with clear errors."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cmteb.errors import CmtebError

logger = logging.getLogger(__name__)

WEIGHT_FILES = (
    "model.safetensors",
    "pytorch_model.bin",
    "model.safetensors.index.json",
    "pytorch_model.bin.index.json",
)


@dataclass(frozen=True)
class ModelSource:
    """Where a model's files are: `path` is what transformers loads (local dir or hub id)."""

    path: str
    name: str
    revision: str | None
    local_dir: Path | None


def _weights_fingerprint(model_dir: Path) -> str:
    """A short content hash of the weight files, standing in for a revision for local models."""
    digest = hashlib.sha256()
    for name in sorted(os.listdir(model_dir)):
        if name in WEIGHT_FILES or name.endswith((".safetensors", ".bin")):
            with open(model_dir / name, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
    return digest.hexdigest()[:16]


def pooling_from_sentence_transformers(model_dir: Path | None) -> str | None:
    """The pooling a sentence-transformers model declares in `1_Pooling/config.json`, if any."""
    if model_dir is None:
        return None
    config_file = model_dir / "1_Pooling" / "config.json"
    if not config_file.is_file():
        return None
    config = json.loads(config_file.read_text(encoding="utf-8"))
    if config.get("pooling_mode_cls_token"):
        return "cls"
    if config.get("pooling_mode_mean_tokens"):
        return "mean"
    return None


def _looks_like_path(model: str) -> bool:
    """Hub ids are `name` or `org/name`; anything else is meant as a filesystem path."""
    return model.startswith((".", "/", "~")) or model.count("/") > 1


def resolve_model(model: str, *, name: str | None = None, revision: str | None = None) -> ModelSource:
    """Resolve `model` to a local directory or a hub id; fail at once with a clear message.

    Local directories must hold a config and weights. A hub id must be in the local HF cache
    when `HF_HUB_OFFLINE` is set, so an offline machine fails now rather than after retries.
    """
    if name is not None and name.count("/") != 1:
        raise CmtebError(f"--model-name {name!r} must look like org/name (mteb's model naming), e.g. my-org/my-model")
    local = Path(model).expanduser()
    if local.is_dir():
        if not (local / "config.json").is_file():
            raise CmtebError(
                f"model directory {local} has no config.json: point --model at a transformers model directory"
            )
        if not any((local / w).is_file() for w in WEIGHT_FILES):
            raise CmtebError(
                f"model directory {local} has no weights (model.safetensors or pytorch_model.bin): "
                "copy the weight files there or pass a hub id"
            )
        # mteb names models org/name; a local model without a hub name goes under "local/".
        display = name or _name_from_config(local) or f"local/{local.name}"
        return ModelSource(str(local), display, revision or _weights_fingerprint(local), local)
    if _looks_like_path(model) or local.exists():
        raise CmtebError(
            f"model path {model} does not exist: pass an existing model directory "
            "or a hub id like BAAI/bge-large-zh-v1.5"
        )
    return _resolve_hub_id(model, name=name, revision=revision)


def _name_from_config(model_dir: Path) -> str | None:
    try:
        value = json.loads((model_dir / "config.json").read_text(encoding="utf-8")).get("_name_or_path")
    except (OSError, ValueError):
        return None
    # A hub id ("org/name") is worth keeping; a training machine's local path is not.
    if isinstance(value, str) and value.count("/") == 1 and not value.startswith(("/", ".")):
        return value
    return None


def _resolve_hub_id(model: str, *, name: str | None, revision: str | None) -> ModelSource:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}
    try:
        local = Path(snapshot_download(model, revision=revision, local_files_only=True))
    except (LocalEntryNotFoundError, OSError, ValueError) as exc:
        if offline:
            raise CmtebError(
                f"model {model} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set: "
                "download it on a connected machine or pass --model with a local model directory"
            ) from exc
        return ModelSource(model, name or model, revision, None)
    # The snapshot folder is named after the commit it holds: that is the model's revision.
    return ModelSource(str(local), name or model, revision if revision and len(revision) == 40 else local.name, local)


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


PRECISIONS = ("fp32", "fp16", "bf16")


def pick_device(device: str | None) -> str:
    """`device` as given, or cuda when a GPU is present, else cpu."""
    import torch

    if device and device != "auto":
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise CmtebError(f"--device {device} asked for a GPU but torch sees none: use --device cpu")
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def load_network(
    auto_class: Any, source: ModelSource, config: Any, *, precision: str, device: str, trust_remote_code: bool = False
) -> Any:
    """Load weights with `auto_class` in `precision` on `device`, in eval mode.

    With several GPUs and `device == "cuda"`, the network is wrapped in DataParallel so each
    batch is split across them.
    """
    import torch

    if precision not in PRECISIONS:
        raise CmtebError(f"unknown precision {precision!r}: choose from {', '.join(PRECISIONS)}")
    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
    if precision == "fp16" and device == "cpu":
        logger.warning("fp16 on CPU is slow and loses accuracy; bf16 or fp32 are better choices there")
    try:
        net = auto_class.from_pretrained(
            source.path,
            config=config,
            dtype=dtype,
            revision=None if source.local_dir else source.revision,
            trust_remote_code=trust_remote_code,
        )
    except (OSError, ValueError) as exc:
        raise CmtebError(f"model {source.name} cannot be loaded: {str(exc).splitlines()[0]}") from exc
    net.eval().to(device)
    if device == "cuda" and torch.cuda.device_count() > 1:
        net = torch.nn.DataParallel(net)
    return net


def usable_max_length(config: Any, requested: int) -> int:
    """`requested`, capped at what the model's position embeddings allow."""
    if requested < 1:
        raise CmtebError(f"--max-length must be positive, got {requested}")
    limit = getattr(config, "max_position_embeddings", None)
    if limit and getattr(config, "model_type", "") in {"xlm-roberta", "roberta"}:
        limit -= 2  # RoBERTa-style position ids start after the padding index
    return min(requested, limit) if limit else requested


NOT_ENCODER_HEADS = ("ForCausalLM", "LMHeadModel", "ForConditionalGeneration")


def check_text_encoder(config: Any, name: str) -> None:
    """Refuse models that are not text encoders (decoders, encoder-decoders, non-text models)."""
    archs = list(getattr(config, "architectures", None) or [])
    is_generator = getattr(config, "is_encoder_decoder", False) or any(a.endswith(NOT_ENCODER_HEADS) for a in archs)
    if is_generator or not hasattr(config, "vocab_size"):
        kind = ", ".join(archs) or getattr(config, "model_type", "unknown")
        raise CmtebError(
            f"model {name} ({kind}) is not a text encoder: cmteb evaluates BERT/XLM-R-style embedding models "
            "and cross-encoders; pass one of those"
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


@dataclass(frozen=True)
class LoadedModel:
    """What a model core needs: network, tokenizer, where it came from, its config and limits."""

    net: Any
    tokenizer: Any
    source: ModelSource
    config: Any
    max_length: int
    device: str


def load_model(
    auto_class: Any,
    source: ModelSource,
    options: Any,
    *,
    check_config: Any = None,
) -> LoadedModel:
    """Load a resolved text encoder with `auto_class` as `options` say (a `LoadOptions`), failing with clear errors.

    `check_config(config, source)` may refuse a config before any weights are read.
    """
    config = load_config(source, trust_remote_code=options.trust_remote_code)
    check_text_encoder(config, source.name)
    if check_config is not None:
        check_config(config, source)
    max_length = usable_max_length(config, options.max_length)
    tokenizer = load_tokenizer(source, trust_remote_code=options.trust_remote_code, config=config)
    device = pick_device(options.device)
    net = load_network(
        auto_class,
        source,
        config,
        precision=options.precision,
        device=device,
        trust_remote_code=options.trust_remote_code,
    )
    return LoadedModel(net, tokenizer, source, config, max_length, device)
