"""The mteb side of the BGE core: mteb 2's EncoderProtocol and a ModelMeta from the model's config."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np
from datasets import Dataset
from mteb.abstasks.task_metadata import TaskMetadata
from mteb.models.abs_encoder import AbsEncoder
from mteb.models.model_meta import ModelMeta, ScoringFunction
from mteb.types import PromptType
from torch.utils.data import DataLoader, SequentialSampler

from cmteb.columns import ColumnsInMemory, column_values
from cmteb.models.cache import EmbeddingCache, text_key
from cmteb.models.encoder import BGEEncoder
from cmteb.models.instructions import TaskInstructions
from cmteb.models.similarity import CosineScores


def build_model_meta(core: Any, *, uses_instruction: bool) -> ModelMeta:
    """A ModelMeta filled from the loaded model (an encoder or a reranker core): name, revision, width,
    parameters, max tokens."""
    net = core.model
    is_reranker = core.KIND == "reranker"
    return ModelMeta(
        loader=None,
        name=core.source.name,
        revision=core.source.revision,
        release_date=None,
        languages=None,
        n_parameters=sum(p.numel() for p in net.parameters()),
        memory_usage_mb=round(sum(p.numel() * p.element_size() for p in net.parameters()) / 2**20, 1),
        max_tokens=core.max_length,
        embed_dim=None if is_reranker else core.embedding_dim,
        license=None,
        open_weights=True,
        public_training_code=None,
        public_training_data=None,
        framework=["PyTorch"],
        similarity_fn_name=None if is_reranker else ScoringFunction.COSINE,
        use_instructions=uses_instruction,
        training_datasets=None,
        model_type=["cross-encoder"] if is_reranker else ["dense"],
    )


def loader_texts(inputs: DataLoader) -> list[str]:
    """Every text of an mteb DataLoader, in order.

    mteb's loaders read a `datasets.Dataset` (or a `ColumnsInMemory`) in order and collate its
    "text" column into lists of strings; such a column is read here in one slice instead of row by
    row (15,000 short texts: 0.005 s instead of 0.08 s on one CPU core; about a million texts in a
    full C-MTEB run). Any other loader is iterated.
    """
    dataset = getattr(inputs, "dataset", None)
    if (
        isinstance(dataset, Dataset | ColumnsInMemory)
        and isinstance(inputs.sampler, SequentialSampler)
        and "text" in dataset.column_names
    ):
        texts = column_values(dataset, "text")
        if all(isinstance(text, str) for text in texts):
            return texts
    return [text for batch in inputs for text in batch["text"]]


class BGEModel(CosineScores, AbsEncoder):
    """mteb encoder over `BGEEncoder`.

    Each input gets in front what `instructions` (the run's plan, per task: `models/instructions.py`) says for
    its task and kind: a query, a document, or a text of a task without queries. Texts go through `cache`: each distinct
    text is encoded once, across tasks and (with a disk cache) across runs. With a `prefetcher`
    (`runner/prefetch.py`) another thread encodes planned texts into the cache ahead of their task;
    the model runs one call at a time under `lock`.
    """

    def __init__(
        self,
        encoder: BGEEncoder,
        *,
        instructions: dict[str, TaskInstructions],
        cache: EmbeddingCache | None = None,
        on_texts: Callable[[int], None] | None = None,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self.encoder = encoder
        # Without a disk cache, an in-memory one still encodes each distinct text once per run.
        self.cache = cache if cache is not None else EmbeddingCache({"model": encoder.source.name})
        self.model = encoder.model
        self.score_device = encoder.device  # the CPU when workers hold the model: this process keeps a copy there
        self.instructions = instructions
        self.on_texts = on_texts
        self.on_batch = on_batch
        used = any((i.query, i.document, i.text) != (None, None, None) for i in instructions.values())
        self.mteb_model_meta = build_model_meta(encoder, uses_instruction=used)
        self.lock = threading.Lock()
        self.prefetcher: Any = None
        self.probe: Any = None  # a `runner.probe.ProbeChoice` shown every text the model is asked for

    def instruction_for(self, task_metadata: TaskMetadata, prompt_type: PromptType | None) -> str | None:
        """The text put in front of each input for this task and input kind, or None."""
        planned = self.instructions.get(task_metadata.name, TaskInstructions())
        return planned.for_input(prompt_type.value if prompt_type is not None else None)

    def encode(
        self,
        inputs: DataLoader,
        *,
        task_metadata: TaskMetadata,
        hf_split: str,
        hf_subset: str,
        prompt_type: PromptType | None = None,
        **kwargs: Any,
    ) -> np.ndarray:
        """Encode every text of `inputs`, in order."""
        texts = loader_texts(inputs)
        instruction = self.instruction_for(task_metadata, prompt_type)
        if instruction:
            texts = [instruction + t for t in texts]
        if self.probe is not None:
            self.probe.offer_texts(texts)

        if self.prefetcher is not None:  # planned texts come from their set, never from a second encoding
            self.prefetcher.wait_for(texts)

        def encode_new(new_texts: list[str]) -> np.ndarray:
            if self.on_texts is not None:
                self.on_texts(len(new_texts))
            with self.lock:
                return self.encoder.encode(new_texts, on_batch=self.on_batch)

        return self.cache.encode(texts, encode_new, self.encoder.embedding_dim)

    def tokenize_ahead(self, texts: list[str]) -> dict[str, list[list[int]]]:
        """The ids `encode_ahead` needs for `texts`, made on another thread while the model runs."""
        return self.encoder.tokenize(texts)

    def encode_ahead(
        self, texts: list[str], work: Any, on_batch: Callable[[int], None] | None = None, tokens: Any = None
    ) -> None:
        """Embed `texts` (distinct, none cached) into the cache, counting the work in `work` (a prefetch
        `Ahead`: its counters and, with workers, where its shards ran); `tokens`: their `tokenize_ahead`."""
        with self.lock:
            vectors = self.encoder.encode(texts, stats=work.stats, log=work.log, on_batch=on_batch, tokens=tokens)
        self.cache.put([text_key(t) for t in texts], vectors)


class BGERerankerModel:
    """mteb cross-encoder (CrossEncoderProtocol) over a reranker core: scores aligned query/passage rows."""

    def __init__(
        self,
        reranker: Any,
        *,
        on_texts: Callable[[int], None] | None = None,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self.reranker = reranker
        self.model = reranker.model
        self.on_texts = on_texts
        self.on_batch = on_batch
        self.mteb_model_meta = build_model_meta(reranker, uses_instruction=False)
        self.probe: Any = None  # a `runner.probe.ProbeChoice` shown every pair the model scores

    def predict(
        self,
        inputs1: DataLoader,
        inputs2: DataLoader,
        *,
        task_metadata: TaskMetadata,
        hf_split: str,
        hf_subset: str,
        prompt_type: PromptType | None = None,
        **kwargs: Any,
    ) -> np.ndarray:
        """One relevance score per (query, passage) row of the two loaders."""
        pairs = list(zip(loader_texts(inputs1), loader_texts(inputs2), strict=True))
        if self.probe is not None:
            self.probe.offer_pairs(pairs)
        if self.on_texts is not None:
            self.on_texts(len(pairs))
        return self.reranker.score(pairs, batch_size=kwargs.get("batch_size"), on_batch=self.on_batch)
