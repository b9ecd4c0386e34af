"""Reading an mteb DataLoader's texts in one slice gives what iterating it gives."""

from __future__ import annotations

import pytest
from datasets import Dataset
from mteb import get_task
from mteb._create_dataloaders import create_dataloader
from mteb.types import PromptType
from torch.utils.data import DataLoader

from cmteb.models.adapter import loader_texts


def _iterated(loader: DataLoader) -> list[str]:
    return [text for batch in loader for text in batch["text"]]


@pytest.fixture(scope="module")
def retrieval_metadata():
    return get_task("T2Retrieval").metadata


def test_every_mteb_loader_kind(retrieval_metadata) -> None:
    corpus = Dataset.from_dict(
        {
            "id": ["d3", "d1", "d2", "d4"],
            "title": ["标题", "", "Title", "末"],
            "text": [" 正文一 ", "正文二", "body", "四"],
        }
    )
    queries = Dataset.from_dict({"id": ["q1", "q2"], "text": ["问题一", "问题二"], "instruction": ["说明：", ""]})
    loaders = [
        create_dataloader(corpus, task_metadata=retrieval_metadata, prompt_type=PromptType.document, batch_size=3),
        create_dataloader(corpus.select([3, 0, 2]), task_metadata=retrieval_metadata, prompt_type=PromptType.document),
        create_dataloader(queries, task_metadata=retrieval_metadata, prompt_type=PromptType.query, batch_size=1),
        create_dataloader(corpus, task_metadata=retrieval_metadata, input_column="text", batch_size=2),
    ]
    for loader in loaders:
        assert loader_texts(loader) == _iterated(loader)
    assert loader_texts(loaders[1]) == ["末 四", "标题  正文一", "Title body"], "selected rows, in their order"


def test_other_loaders_are_iterated() -> None:
    shuffled = DataLoader(Dataset.from_dict({"text": [f"第{i}句" for i in range(50)]}), batch_size=8, shuffle=True)
    texts = loader_texts(shuffled)
    assert sorted(texts) == sorted(f"第{i}句" for i in range(50)) and len(texts) == 50
    with_none = DataLoader(Dataset.from_dict({"text": ["一", None]}), batch_size=2)
    assert loader_texts(with_none) == _iterated(with_none) == ["一", None], "not all strings: iterated as before"
