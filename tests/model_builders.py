"""Tiny randomly initialised models of each family's architecture, laid out as their hub repos are (config.json,
weights, tokenizer files and, where the family ships them, sentence-transformers files), built in the test:
no downloads. Their vocabulary is the sample texts' characters, so every sample text tokenises without [UNK]."""

from __future__ import annotations

import json
from pathlib import Path

from cmteb.assets import SAMPLES_DIR

DECODER_SPECIALS = ["<pad>", "<unk>", "<|endoftext|>", "<s>", "yes", "no", "Yes"]


#: The width and depth of every tiny test network: enough for real attention, cheap on a CPU.
TINY_SHAPE = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2}


def sample_chars() -> list[str]:
    """Every character of the sample texts (and of the instructions and prompts the families add)."""
    text = (SAMPLES_DIR / "source.yaml").read_text(encoding="utf-8")
    text += "Instruct: Given a query A and passage B, <instruct>\n<query>|_<>'.?!\"0123456789"
    text += "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    text += (
        "今天北京的天气怎么样？这家外卖送得很快吗如何更换手机电池晴，气温二十度。半小时就到了味道不错可以在售后好长段落"
    )
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
        **TINY_SHAPE,
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

    vocab = {
        token: k for k, token in enumerate(DECODER_SPECIALS + [c for c in sample_chars() if c not in DECODER_SPECIALS])
    }
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
        **TINY_SHAPE,
        num_key_value_heads=1,
        max_position_embeddings=512,
        pad_token_id=0,
        eos_token_id=2,
        bos_token_id=3,
    )
    extra = {"head_dim": 16} if arch in ("qwen3", "gemma2", "gemma") else {}
    name = {
        "qwen2": "Qwen2",
        "qwen3": "Qwen3",
        "gemma2": "Gemma2",
        "gemma": "Gemma",
        "mistral": "Mistral",
        "llama": "Llama",
    }
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


SENTENCE_TRANSFORMERS_FILES = (
    "modules.json",
    "1_Pooling",
    "2_Normalize",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
)


def copy_sentence_transformers_files(source: Path, target: Path) -> None:
    """The sentence-transformers files of `source` into `target` (a model folder assembled from parts)."""
    import shutil

    for name in SENTENCE_TRANSFORMERS_FILES:
        path = source / name
        if path.is_dir():
            shutil.copytree(path, target / name, dirs_exist_ok=True)
        elif path.is_file():
            shutil.copy(path, target / name)


def _xlmr_tokenizer(target: Path):
    """A character-level XLM-R tokenizer: `<s> A </s>` and `<s> A </s></s> B </s>`, as XLM-R's own."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, processors
    from transformers import XLMRobertaTokenizerFast

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    pieces = specials + ["▁"] + [c for c in sample_chars() if c not in specials and not c.isspace()]
    # A unigram model of single characters: what XLM-R's tokenizer class is built on.
    backend = Tokenizer(models.Unigram([(piece, 0.0) for piece in pieces], unk_id=3))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex("."), "isolated")
    backend.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    tokenizer = XLMRobertaTokenizerFast(
        tokenizer_object=backend, bos_token="<s>", eos_token="</s>", sep_token="</s>", cls_token="<s>",
        pad_token="<pad>", unk_token="<unk>", mask_token="<mask>",
    )  # fmt: skip
    tokenizer.save_pretrained(target)
    return tokenizer


def build_tiny_xlmr_cross_encoder(target: Path, *, seed: int = 2) -> Path:
    """A randomly initialised 2-layer XLM-R sequence classifier with one output (bge-reranker-v2-m3's
    architecture), with a character-level XLM-R tokenizer."""
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaForSequenceClassification

    target.mkdir(parents=True, exist_ok=True)
    tokenizer = _xlmr_tokenizer(target)
    config = XLMRobertaConfig(
        vocab_size=len(tokenizer),
        **TINY_SHAPE,
        max_position_embeddings=130,
        num_labels=1,
        pad_token_id=1,
    )
    torch.manual_seed(seed)
    XLMRobertaForSequenceClassification(config).save_pretrained(target)
    return target


LAYERWISE_CODE = '''
"""A tiny layerwise reranker: a decoder whose last `heads` layers each have a one-logit head, scored at the layers
`cutoff_layers` names (the interface of bge-reranker-v2-minicpm-layerwise's own code)."""
import torch
from transformers import LlamaConfig, LlamaModel, PreTrainedModel
from transformers.modeling_outputs import CausalLMOutputWithPast


class LayerwiseConfig(LlamaConfig):
    model_type = "minicpm"


class LayerwiseReranker(PreTrainedModel):
    config_class = LayerwiseConfig

    def __init__(self, config):
        super().__init__(config)
        self.model = LlamaModel(config)
        self.heads = torch.nn.ModuleList(
            [torch.nn.Linear(config.hidden_size, 1, bias=False) for _ in range(config.num_hidden_layers + 1)]
        )
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, cutoff_layers=None, **kwargs):
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
        layers = cutoff_layers or [self.config.num_hidden_layers]
        return CausalLMOutputWithPast(logits=[self.heads[k](out.hidden_states[k]) for k in layers])
'''


def build_tiny_layerwise(target: Path, *, seed: int = 4) -> Path:
    """A folder with remote code of the layerwise reranker interface (`LAYERWISE_CODE`), mapped by auto_map."""
    import importlib.util
    import sys

    import torch

    target.mkdir(parents=True, exist_ok=True)
    tokenizer = _decoder_tokenizer(target, eos=False, bos=True, padding_side="left")
    (target / "modeling_layerwise.py").write_text(LAYERWISE_CODE)
    spec = importlib.util.spec_from_file_location("tiny_layerwise_code", target / "modeling_layerwise.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["tiny_layerwise_code"] = module
    spec.loader.exec_module(module)
    config = module.LayerwiseConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=3,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=512,
        pad_token_id=0,
        bos_token_id=3,
        eos_token_id=2,
    )
    config.auto_map = {
        "AutoConfig": "modeling_layerwise.LayerwiseConfig",
        "AutoModelForCausalLM": "modeling_layerwise.LayerwiseReranker",
    }
    config.architectures = ["LayerwiseReranker"]
    torch.manual_seed(seed)
    module.LayerwiseReranker(config).save_pretrained(target)
    return target
