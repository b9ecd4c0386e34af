"""Tiny randomly initialised models of each family's architecture, laid out as their hub repos are (config.json,
weights, tokenizer files and, where the family ships them, sentence-transformers files), built in the test:
no downloads. Their vocabulary is the sample texts' characters, so every sample text tokenises without [UNK]."""

from __future__ import annotations

import json
from pathlib import Path

from cmteb.assets import SAMPLES_DIR

DECODER_SPECIALS = ["<pad>", "<unk>", "<|endoftext|>", "<s>", "yes", "no", "Yes"]


def sample_chars() -> list[str]:
    """Every character of the sample texts (and of the instructions and prompts the families add)."""
    text = (SAMPLES_DIR / "source.yaml").read_text(encoding="utf-8")
    text += "Instruct: Given a query A and passage B, <instruct>\n<query>|_<>'.?!\"0123456789"
    text += "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return sorted({c for c in text if not c.isspace()} | {" ", "\n"})


def write_sentence_transformers_files(
    target: Path,
    *,
    pooling: str,
    normalize: bool,
    width: int,
    prompts: dict[str, str] | None = None,
    default_prompt_name: str | None = None,
    max_seq_length: int | None = None,
) -> None:
    """modules.json (Transformer, Pooling, optionally Normalize) and the configs sentence-transformers reads."""
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    if normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
        (target / "2_Normalize").mkdir(parents=True, exist_ok=True)
    (target / "modules.json").write_text(json.dumps(modules))
    (target / "1_Pooling").mkdir(parents=True, exist_ok=True)
    flags = {f: False for f in ("cls_token", "mean_tokens", "max_tokens", "mean_sqrt_len_tokens", "lasttoken")}
    flags[{"cls": "cls_token", "mean": "mean_tokens", "lasttoken": "lasttoken"}[pooling]] = True
    pooling_config = {"word_embedding_dimension": width, **{f"pooling_mode_{k}": v for k, v in flags.items()}}
    (target / "1_Pooling" / "config.json").write_text(json.dumps(pooling_config))
    (target / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": max_seq_length or 128, "do_lower_case": False})
    )
    st_config = {"prompts": prompts or {}, "default_prompt_name": default_prompt_name, "similarity_fn_name": "cosine"}
    (target / "config_sentence_transformers.json").write_text(json.dumps(st_config))


def build_tiny_bert(target: Path, *, seed: int = 0, num_labels: int | None = None, st: dict | None = None) -> Path:
    """A randomly initialised 2-layer BERT (a cross-encoder with `num_labels`), with `st`'s sentence-transformers
    files when given (`write_sentence_transformers_files`' keywords)."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertModel, BertTokenizerFast

    chars = [c for c in sample_chars() if not c.isspace()]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars]
    target.mkdir(parents=True, exist_ok=True)
    (target / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast(vocab=str(target / "vocab.txt"), tokenize_chinese_chars=True)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        num_labels=num_labels or 2,
    )
    torch.manual_seed(seed)
    model = BertForSequenceClassification(config) if num_labels else BertModel(config)
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    if st is not None:
        write_sentence_transformers_files(target, width=config.hidden_size, **st)
    return target


def _decoder_tokenizer(target: Path, *, eos: bool, bos: bool, padding_side: str):
    """A character-level fast tokenizer, ending each input with <|endoftext|> when `eos` (as Qwen3-Embedding's
    post-processor does) and starting it with <s> when `bos` (as Gemma's does)."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {token: k for k, token in enumerate(DECODER_SPECIALS + [c for c in sample_chars() if c not in DECODER_SPECIALS])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex("."), "isolated")
    single = " ".join([*(["<s>"] if bos else []), "$A", *(["<|endoftext|>"] if eos else [])])
    pair = " ".join([*(["<s>"] if bos else []), "$A", "$B", *(["<|endoftext|>"] if eos else [])])
    specials = [("<s>", vocab["<s>"]), ("<|endoftext|>", vocab["<|endoftext|>"])]
    backend.post_processor = processors.TemplateProcessing(single=single, pair=pair, special_tokens=specials)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="<pad>",
        unk_token="<unk>",
        eos_token="<|endoftext|>",
        bos_token="<s>" if bos else None,
        padding_side=padding_side,
    )
    tokenizer.save_pretrained(target)
    return tokenizer


def decoder_config(arch: str, vocab_size: int):
    """A tiny config of a decoder architecture: qwen2, qwen3, gemma2, mistral, llama, gemma."""
    import transformers

    common = dict(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=512,
        pad_token_id=0,
        eos_token_id=2,
        bos_token_id=3,
    )
    extra = {"head_dim": 16} if arch in ("qwen3", "gemma2", "gemma") else {}
    name = {"qwen2": "Qwen2", "qwen3": "Qwen3", "gemma2": "Gemma2", "gemma": "Gemma", "mistral": "Mistral", "llama": "Llama"}
    return getattr(transformers, f"{name[arch]}Config")(**common, **extra)


def build_tiny_decoder(
    target: Path,
    arch: str = "qwen3",
    *,
    seed: int = 0,
    eos: bool = True,
    bos: bool = False,
    padding_side: str = "left",
    causal_lm: bool = True,
    st: dict | None = None,
) -> Path:
    """A randomly initialised 2-layer decoder of `arch`, saved as its CausalLM (as the embedding models built on
    one are), with `st`'s sentence-transformers files when given."""
    import torch
    import transformers

    target.mkdir(parents=True, exist_ok=True)
    tokenizer = _decoder_tokenizer(target, eos=eos, bos=bos, padding_side=padding_side)
    config = decoder_config(arch, len(tokenizer))
    torch.manual_seed(seed)
    kind = "ForCausalLM" if causal_lm else "Model"
    model = getattr(transformers, f"{type(config).__name__.removesuffix('Config')}{kind}")(config)
    model.save_pretrained(target)
    if st is not None:
        write_sentence_transformers_files(target, width=config.hidden_size, **st)
    return target


def real_model_folder(source: Path, target: Path, st: dict) -> Path:
    """A folder of a real model's files (linked, not copied) with `st`'s sentence-transformers files: a hub
    repo's layout with real weights, whose embeddings are far enough apart that rankings do not rest on ties."""
    import json as _json

    target.mkdir(parents=True, exist_ok=True)
    for path in source.iterdir():
        if path.is_file() and not (target / path.name).exists():
            (target / path.name).symlink_to(path)
    width = _json.loads((source / "config.json").read_text())["hidden_size"]
    write_sentence_transformers_files(target, width=width, **st)
    return target
