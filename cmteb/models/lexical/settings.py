"""The baseline's settings (its results' revision is their hash) and its BM25 search model."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

from cmteb.models.lexical.tokens import TOKENIZERS, chinese_bigrams

#: The name the baseline's results are filed under, and the reserved `--model` value that asks for it.
LEXICAL_NAME = "cmteb/bm25"
LEXICAL_ARGUMENT = "bm25"


@dataclass(frozen=True)
class LexicalSettings:
    """Everything that determines the baseline's scores; its hash is the results' revision."""

    tokenizer: str = "char-bigram"  # or "jieba"
    k1: float = 1.5  # bm25s' defaults (method lucene)
    b: float = 0.75
    method: str = "lucene"
    ngram_range: tuple[int, int] = (1, 2)  # characters, for the TF-IDF vectors
    hashed_features: int = 2**18
    width: int = 768
    features_per_dimension: int = 16  # dimensions each hashed feature reaches, about
    seed: int = 0

    def fingerprint(self) -> str:
        """A 16-hex-digit hash of the settings."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]


def lexical_search(settings: LexicalSettings) -> Any:
    """BM25 with the settings' tokenizer, as an mteb search model (`bm25.ChineseBM25`)."""
    from cmteb.models.lexical.bm25 import ChineseBM25, bigram_counts, token_counts  # bm25s: only when it runs

    tokenize = TOKENIZERS[settings.tokenizer]
    count = bigram_counts if tokenize is chinese_bigrams else partial(token_counts, tokenize=tokenize)
    return ChineseBM25(tokenize, count, k1=settings.k1, b=settings.b, method=settings.method)
