"""The mteb side of the lexical baseline: an mteb encoder over `TfidfProjector` and the ModelMeta
of the `bm25` row."""

from __future__ import annotations

from typing import Any

import numpy as np
from mteb.abstasks.task_metadata import TaskMetadata
from mteb.models.abs_encoder import AbsEncoder
from mteb.models.model_meta import ModelMeta, ScoringFunction
from mteb.types import PromptType
from torch.utils.data import DataLoader

from cmteb.models.adapter import loader_texts
from cmteb.models.lexical.settings import LEXICAL_NAME, LexicalSettings
from cmteb.models.lexical.tfidf import TfidfProjector
from cmteb.models.similarity import CosineScores


def lexical_meta(settings: LexicalSettings) -> ModelMeta:
    """The baseline's ModelMeta: no parameters, its settings hash as revision."""
    return ModelMeta(
        loader=None,
        name=LEXICAL_NAME,
        revision=settings.fingerprint(),
        release_date=None,
        languages=["zho-Hans"],
        n_parameters=0,
        memory_usage_mb=None,
        max_tokens=None,
        embed_dim=settings.width,
        license=None,
        open_weights=True,
        public_training_code=None,
        public_training_data=None,
        framework=[],
        similarity_fn_name=ScoringFunction.COSINE,
        use_instructions=False,
        training_datasets=None,
        model_type=["sparse"],
    )


class LexicalEncoder(CosineScores, AbsEncoder):
    """mteb encoder of TF-IDF vectors; `fit(texts)` with the task's texts before each task."""

    def __init__(self, settings: LexicalSettings) -> None:
        self.projector = TfidfProjector(settings)
        self.mteb_model_meta = lexical_meta(settings)
        self.texts = 0  # texts embedded so far

    def fit(self, texts: list[str]) -> LexicalEncoder:
        """Fit the idf on the texts of the task about to be evaluated."""
        self.projector.fit(texts)
        return self

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
        """The TF-IDF vectors of every text of `inputs`, in order."""
        texts = loader_texts(inputs)
        self.texts += len(texts)
        return self.projector.embed(texts)
