"""The encode phase ahead of the evaluate phase: the model encodes the next task's texts while the
CPU evaluates the current task with mteb.

Before the first task, the texts each pending task will encode are listed from its loaded data,
exactly as mteb's own loaders present them to the model (retrieval and reranking: queries with the
instruction and documents; STS and pair classification: both sentence columns). Each task's set
holds only texts no earlier set and no cached embedding covers, so the sets and their batches are
fixed before anything runs: a pipelined run computes the same embeddings whatever the timing. One
thread encodes the sets in task order into the embedding cache; a task's evaluation waits for its
own set, and any of its texts that a later set holds wait for that set, so a text is never encoded
twice. Classification texts are known ahead too: mteb draws each experiment's training examples with
its task's seed before it encodes anything, and the plan draws them the same way, with mteb's own
function (`_undersample_data`); legacy clustering encodes every sentence of each set with more than
one label. So a classification or clustering task's texts are encoded in task order like the others,
and its evaluation (CPU work: fits, k-means) runs while the model encodes the next task's set,
instead of waiting for the model to finish a later task's set before encoding its own.

A set's tokens are made on a second thread while the model encodes the set before it (one set ahead,
so at most two sets' ids are held): tokenising is CPU work, and a GPU would otherwise wait for it at
the start of every set.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from mteb._create_dataloaders import create_dataloader
from mteb.abstasks.clustering_legacy import AbsTaskClusteringLegacy
from mteb.types import PromptType

from cmteb.columns import ColumnsInMemory, column_values, text_rows_in_memory
from cmteb.models.adapter import loader_texts
from cmteb.models.batching import BatchStats
from cmteb.mteb_hooks import union_of_experiments
from cmteb.workers.dispatch import ShardLog

logger = logging.getLogger(__name__)

#: Text columns of the pair tasks, encoded as they are.
PAIR_COLUMNS = ("sentence1", "sentence2")


def _document_texts(task: Any, corpus: Any) -> list[str]:
    """The documents as mteb's document loader presents them (its own `_corpus_to_dict` on each row), read
    from lists as the exact search reads them (`runner/search.py`)."""
    corpus = text_rows_in_memory(corpus, task.metadata, PromptType.document)
    return loader_texts(create_dataloader(corpus, task_metadata=task.metadata, prompt_type=PromptType.document))


def _retrieval_texts(task: Any, instruction: str | None) -> list[str]:
    """Queries (with `instruction` in front) and documents of every evaluated split, as mteb loads them."""
    texts: list[str] = []
    for subset in task.dataset.values():
        for split in (subset[name] for name in task.eval_splits if name in subset):
            queries = loader_texts(
                create_dataloader(split["queries"], task_metadata=task.metadata, prompt_type=PromptType.query)
            )
            texts += [instruction + t for t in queries] if instruction else queries
            texts += _document_texts(task, split["corpus"])
    return texts


def _strings(dataset: Any, column: str) -> list[str]:
    """The strings of a column's cells, a cell that holds a list giving each of its strings."""
    found: list[str] = []
    for cell in column_values(dataset, column):
        if isinstance(cell, str):
            found.append(cell)
        elif isinstance(cell, list):
            found += [item for item in cell if isinstance(item, str)]
    return found


def _pair_texts(task: Any) -> list[str]:
    """Both sentence columns of every evaluated split."""
    texts: list[str] = []
    for name in task.eval_splits:
        split = task.dataset[name]
        texts += [t for column in PAIR_COLUMNS if column in split.column_names for t in _strings(split, column)]
    return texts


def _subsets(task: Any) -> list[Any]:
    """Each evaluated subset's splits, picked as mteb's classification and clustering evaluations pick them."""
    return [
        task.dataset if name not in task.dataset and name == "default" else task.dataset[name]
        for name in task.hf_subsets
    ]


def _classification_texts(task: Any) -> list[str]:
    """The training examples mteb's experiments draw (the union over experiments, as mteb encodes it; the
    whole training split for cross-validation) and every evaluated split's texts."""
    texts: list[str] = []
    for subset in _subsets(task):
        splits = [name for name in task.eval_splits if name in subset]
        if not splits:
            continue
        train = ColumnsInMemory(subset[task.train_split])
        if task.is_cross_validation:  # its one split is the training split, encoded whole
            texts += _column_texts(task, train)
            continue
        # The same draw for every evaluated split (same training split, same seed): made once.
        texts += _column_texts(task, train.select(union_of_experiments(task, train)))
        for split in splits:
            texts += _column_texts(task, subset[split])
    return texts


def _column_texts(task: Any, rows: Any) -> list[str]:
    """The texts of `rows` as mteb's data loader hands them to the model."""
    return loader_texts(create_dataloader(rows, task_metadata=task.metadata, input_column=task.input_column_name))


def _clustering_texts(task: Any) -> list[str]:
    """Every sentence of each cluster set that has more than one label (mteb skips the others)."""
    texts: list[str] = []
    for subset in _subsets(task):
        for split in (subset[name] for name in task.eval_splits if name in subset):
            columns = (column_values(split, c) for c in (task.input_column_name, task.label_column_name))
            sets = zip(*columns, strict=True)
            texts += [text for sentences, labels in sets if len(set(labels)) > 1 for text in sentences]
    return texts


def planned_texts(task: Any, instruction: str | None) -> list[str] | None:
    """The texts `task`'s evaluation will hand the model, where they are known before it runs; else None.

    Data laid out otherwise than these task types' (a task registered with other columns) gives None:
    its evaluation then encodes its texts in turn.
    """
    kind = task.metadata.type
    try:
        if kind in ("Retrieval", "Reranking"):
            return _retrieval_texts(task, instruction)
        if kind in ("STS", "PairClassification"):
            return _pair_texts(task)
        if kind == "Classification" and task.metadata.modalities == ["text"]:
            return _classification_texts(task)
        if isinstance(task, AbsTaskClusteringLegacy) and task.metadata.modalities == ["text"]:
            return _clustering_texts(task)
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        logger.debug("%s: texts not planned ahead (%s)", task.metadata.name, exc)
    return None


def possible_texts(task: Any) -> list[str]:
    """Every string in `task`'s data, for a task whose texts are not planned: more than its evaluation
    encodes, never less."""
    splits = task.dataset.values() if hasattr(task.dataset, "values") else []
    texts: list[str] = []
    for split in splits:
        for part in split.values() if isinstance(split, dict) else [split]:
            if hasattr(part, "column_names"):
                texts += [t for column in part.column_names for t in _strings(part, column)]
    return texts


@dataclass
class Ahead:
    """The work of one task's set: its counters, and where a worker pool ran its shards."""

    stats: BatchStats = field(default_factory=BatchStats)
    log: ShardLog = field(default_factory=ShardLog)


class _Stopped(Exception):
    """The run ended while a set was being encoded."""


class Prefetcher:
    """Encodes each task's planned texts ahead of its evaluation, on one thread, in task order.

    `plan` holds, per task in run order, its planned texts (None when they are not known ahead) and
    the texts it may encode (used when they are not).

    `encode_ahead(texts, ahead, on_batch, tokens)` must embed texts into the cache, counting the work in
    `ahead` and calling `on_batch` after each batch; it is called on the prefetch thread, one set at a
    time, with the set's `tokenize(texts)` made ahead on another thread (None without `tokenize`).
    """

    def __init__(
        self,
        plan: Sequence[tuple[str, list[str] | None, list[str]]],
        is_cached: Callable[[str], bool],
        encode_ahead: Callable[[list[str], Ahead, Callable[[int], None], Any], None],
        tokenize: Callable[[list[str]], Any] | None = None,
    ) -> None:
        self.sets: dict[str, list[str]] = {}
        self.owner: dict[str, str] = {}
        claimed: set[str] = set()  # texts an earlier task encodes, ahead or in its evaluation
        for name, texts, possible in plan:
            if texts is None:  # its evaluation encodes them: later sets leave them to it, as in turn
                claimed.update(possible)
                continue
            new = [t for t in dict.fromkeys(texts) if t not in claimed and not is_cached(t)]
            self.sets[name] = new
            self.owner.update(dict.fromkeys(new, name))
            claimed.update(new)
        self.work = {name: Ahead() for name in self.sets}
        self.done = {name: threading.Event() for name in self.sets}
        self.encoded: set[str] = set()  # sets encoded in full
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._encode_ahead = encode_ahead
        self._tokenize = tokenize
        self._thread = threading.Thread(target=self._run, name="cmteb-prefetch", daemon=True)

    def start(self) -> Prefetcher:
        """Start encoding; returns self."""
        self._thread.start()
        return self

    def _run(self) -> None:
        tokenizing = ThreadPoolExecutor(1, thread_name_prefix="cmteb-tokenize-ahead") if self._tokenize else None
        names = [name for name, texts in self.sets.items() if texts]
        tokens: dict[str, Future] = {}
        try:
            for name in self.sets:
                if self._stop.is_set():
                    break
                if self.sets[name]:
                    made = self._tokens_ahead(tokenizing, names, name, tokens)
                    self._encode_ahead(self.sets[name], self.work[name], self._unless_stopped, made)
                self.encoded.add(name)
                self.done[name].set()
        except _Stopped:
            pass
        except BaseException as exc:  # handed to the evaluating thread, which raises it
            self.error = exc
        finally:
            if tokenizing is not None:
                tokenizing.shutdown(wait=False, cancel_futures=True)
            for event in self.done.values():
                event.set()

    def _tokens_ahead(
        self, tokenizing: ThreadPoolExecutor | None, names: list[str], name: str, tokens: dict[str, Future]
    ) -> Any:
        """`name`'s tokens (None without a tokenizer), once the next set's are being made."""
        if tokenizing is None:
            return None
        following = names[names.index(name) : names.index(name) + 2]
        for upcoming in following:
            if upcoming not in tokens:
                tokens[upcoming] = tokenizing.submit(self._tokenize, self.sets[upcoming])  # type: ignore[misc]
        return tokens.pop(name).result()

    def _unless_stopped(self, _texts: int) -> None:
        """After each batch: end the set being encoded when the run has stopped."""
        if self._stop.is_set():
            raise _Stopped

    def _wait(self, name: str) -> None:
        """Wait for `name`'s set; raise the error that stopped the thread before it was encoded."""
        self.done[name].wait()
        if name not in self.encoded and self.error is not None:
            raise self.error

    def take(self, name: str) -> Ahead:
        """Wait until `name`'s set is encoded; the work it took (counted once: later calls get nothing)."""
        if name not in self.sets:
            return Ahead()
        self._wait(name)
        return self.work.pop(name, Ahead())

    def wait_for(self, texts: Sequence[str]) -> None:
        """Wait until every planned set holding one of `texts` is encoded."""
        for name in {self.owner[t] for t in texts if t in self.owner}:
            self._wait(name)

    def close(self) -> None:
        """Stop encoding (after the batch on the device) and wait for the thread to end."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
