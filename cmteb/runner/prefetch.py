"""The encode phase ahead of the evaluate phase: the model encodes the next task's texts while the
CPU evaluates the current task with mteb.

As each pending task's data comes in, the texts it will encode are listed from it (on a planning
thread, while later tasks still load), exactly as mteb's own loaders present them to the model
(retrieval and reranking: queries with the instruction and documents; STS and pair classification:
both sentence columns). Each task's set holds only texts no earlier set and no cached embedding
covers, so a set depends on the tasks before it alone, never on timing, and evaluation starts only
once every task is planned: a pipelined run computes the same embeddings whatever the timing. One
thread encodes the sets in task order into the embedding cache; a task's evaluation waits for its
own set, and any of its texts that a later set holds wait for that set, so a text is never encoded
twice. Classification texts are known ahead too: mteb draws each experiment's training examples with
its task's seed before it encodes anything, and the plan draws them the same way, with mteb's own
function (`_undersample_data`); legacy clustering encodes every sentence of each set with more than
one label. So a classification or clustering task's texts are encoded in task order like the others,
and its evaluation (CPU work: fits, k-means) runs while the model encodes the next task's set,
instead of waiting for the model to finish a later task's set before encoding its own.

A set is encoded in parts (`encoding_parts`) whose tokens are made on a second thread while the model
encodes the part before (at most three parts' ids held), so a GPU does not wait for the tokenizer at
the start of every set (about a minute on one H200's host at full size).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mteb._create_dataloaders import create_dataloader
from mteb.abstasks.clustering_legacy import AbsTaskClusteringLegacy
from mteb.types import PromptType

from cmteb.columns import ColumnsInMemory, column_values, text_rows_in_memory
from cmteb.models.adapter import loader_texts
from cmteb.models.batching import BatchStats
from cmteb.mteb_hooks import union_of_experiments
from cmteb.tasks.types import task_type
from cmteb.workers.dispatch import ShardLog

logger = logging.getLogger(__name__)

#: Text columns of the pair tasks, encoded as they are.
PAIR_COLUMNS = ("sentence1", "sentence2")


def _document_texts(task: Any, corpus: Any) -> list[str]:
    """The documents as mteb's document loader presents them (its own `_corpus_to_dict` on each row), read
    from lists as the exact search reads them (`runner/search.py`)."""
    corpus = text_rows_in_memory(corpus, task.metadata, PromptType.document)
    return loader_texts(create_dataloader(corpus, task_metadata=task.metadata, prompt_type=PromptType.document))


#: The text put in front of an input of a kind (`PromptType.query`, `PromptType.document`, or None).
Prefix = Callable[[Any], "str | None"]


def _prefixed(texts: list[str], prefix: str | None) -> list[str]:
    return [prefix + t for t in texts] if prefix else texts


def _retrieval_texts(task: Any, prefix: Prefix) -> list[str]:
    """Queries and documents of every evaluated split, as mteb loads them, with what each kind gets in front."""
    texts: list[str] = []
    for subset in task.dataset.values():
        for split in (subset[name] for name in task.eval_splits if name in subset):
            # Read from lists, as the search reads them: `datasets`' lazy column took 11 s of one core for
            # T2Retrieval's 22,812 queries at full size, added back row by row as mteb's "query" column.
            rows = text_rows_in_memory(split["queries"], task.metadata, PromptType.query)
            queries = loader_texts(create_dataloader(rows, task_metadata=task.metadata, prompt_type=PromptType.query))
            texts += _prefixed(queries, prefix(PromptType.query))
            texts += _prefixed(_document_texts(task, split["corpus"]), prefix(PromptType.document))
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


def _clusters_planned(task: Any, prefix: Prefix) -> list[str] | None:
    if not (isinstance(task, AbsTaskClusteringLegacy) and task.metadata.modalities == ["text"]):
        return None  # the v2 evaluation draws its own samples: its texts are encoded in turn
    return _prefixed(_clustering_texts(task), prefix(None))


def _labelled_planned(task: Any, prefix: Prefix) -> list[str] | None:
    return _prefixed(_classification_texts(task), prefix(None)) if task.metadata.modalities == ["text"] else None


#: How a task type's texts are known before its evaluation runs (`TaskType.texts_ahead`): (task, prefix) ->
#: the texts, each with what its kind of input gets in front, or None where they cannot be known.
PLANNERS: dict[str, Callable[[Any, Prefix], list[str] | None]] = {
    "search": _retrieval_texts,
    "pairs": lambda task, prefix: _prefixed(_pair_texts(task), prefix(None)),
    "labelled": _labelled_planned,
    "clusters": _clusters_planned,
}


def planned_texts(task: Any, prefix: Prefix, type_name: str | None = None) -> list[str] | None:
    """The texts `task`'s evaluation will hand the model, where they are known before it runs, each with what
    `prefix(kind)` says its kind of input gets in front; else None. `type_name`: cmteb's type of the task (by
    default mteb's), whose `texts_ahead` names the planner.

    Data laid out otherwise than these task types' (a task registered with other columns) gives None:
    its evaluation then encodes its texts in turn.
    """
    planner = task_type(type_name or task.metadata.type).texts_ahead
    try:
        return PLANNERS[planner](task, prefix) if planner is not None else None
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


#: Texts of a set encoded in one call (`encoding_parts`): 64 passes of 256 long texts (fewer, fuller passes of
#: short ones); at full size the largest set (T2Retrieval's, 141,261 texts) would otherwise be tokenised
#: whole before its first batch.
PART_TEXTS = 16_384


def encoding_parts(texts: list[str]) -> list[list[str]]:
    """`texts` in the parts encoded one call each: up to PART_TEXTS texts as they are; more sorted by length in
    characters (shortest first, ties in their order) and cut every PART_TEXTS, so a part's texts lie close in
    length and pad little. The cut depends on the texts alone, never on timing."""
    if len(texts) <= PART_TEXTS:  # one part, as planned
        return [texts]
    ordered = sorted(texts, key=len)
    return [ordered[start : start + PART_TEXTS] for start in range(0, len(ordered), PART_TEXTS)]


@dataclass
class _Part:
    """One part of a set, its tokens made (None without a tokenizer); `last`: the set's last part."""

    name: str
    texts: list[str]
    tokens: Any
    last: bool


_END = object()  # every planned set's parts were handed over


class Prefetcher:
    """Encodes each task's planned texts ahead of its evaluation, on one thread, in task order.

    `plan` yields, per task in run order, its planned texts (None when they are not known ahead) and the
    texts it may encode (used when they are not). It is read on a planning thread of its own and may yield
    each task as its data comes in: the first set is encoded while later tasks still load and are planned.
    Each set holds only what no earlier task claimed, so the sets do not depend on when they were planned;
    evaluation waits until every task is planned (`take`, `wait_for`), so nothing it encodes can change a set.

    `encode_ahead(texts, ahead, on_batch, tokens)` must embed texts into the cache, counting the work in
    `ahead` and calling `on_batch` after each batch; it is called on the prefetch thread, one set at a
    time, with the set's `tokenize(texts)` made ahead on another thread (None without `tokenize`).
    """

    def __init__(
        self,
        plan: Iterable[tuple[str, list[str] | None, list[str]]],
        is_cached: Callable[[str], bool],
        encode_ahead: Callable[[list[str], Ahead, Callable[[int], None], Any], None],
        tokenize: Callable[[list[str]], Any] | None = None,
    ) -> None:
        self.sets: dict[str, list[str]] = {}
        self.owner: dict[str, str] = {}
        self.work: dict[str, Ahead] = {}
        self.done: dict[str, threading.Event] = {}
        self.encoded: set[str] = set()  # sets encoded in full
        self.error: BaseException | None = None  # what stopped the encoding
        self.plan_error: BaseException | None = None  # what stopped the planning
        self.planned = threading.Event()  # every task planned (or planning failed)
        self._plan, self._is_cached = plan, is_cached
        self._order: list[str] = []  # the sets planned so far, in run order
        self._new_set = threading.Condition()
        self._stop = threading.Event()
        self._encode_ahead = encode_ahead
        self._tokenize = tokenize
        self._planner = threading.Thread(target=self._plan_sets, name="cmteb-plan", daemon=True)
        self._thread = threading.Thread(target=self._run, name="cmteb-prefetch", daemon=True)

    def start(self) -> Prefetcher:
        """Start planning and encoding; returns self."""
        self._planner.start()
        self._thread.start()
        return self

    def _plan_sets(self) -> None:
        claimed: set[str] = set()  # texts an earlier task encodes, ahead or in its evaluation
        try:
            for name, texts, possible in self._plan:
                if self._stop.is_set():
                    break
                if texts is None:  # its evaluation encodes them: later sets leave them to it, as in turn
                    claimed.update(possible)
                    continue
                new = [t for t in dict.fromkeys(texts) if t not in claimed and not self._is_cached(t)]
                claimed.update(new)
                with self._new_set:
                    self.sets[name], self.work[name], self.done[name] = new, Ahead(), threading.Event()
                    self.owner.update(dict.fromkeys(new, name))
                    self._order.append(name)
                    self._new_set.notify_all()
        except BaseException as exc:  # handed to the evaluating thread, which raises it
            self.plan_error = exc
        finally:
            with self._new_set:
                self.planned.set()
                self._new_set.notify_all()

    def _next_set(self, k: int) -> str | None:
        """The `k`-th set once planned; None when planning ended with fewer."""
        with self._new_set:
            self._new_set.wait_for(lambda: len(self._order) > k or self.planned.is_set() or self._stop.is_set())
            return self._order[k] if len(self._order) > k and not self._stop.is_set() else None

    def _run(self) -> None:
        ready: queue.Queue[Any] = queue.Queue(maxsize=1)  # the part after the one on the device, its tokens made
        maker = threading.Thread(target=self._make_parts, args=(ready,), name="cmteb-tokenize-ahead", daemon=True)
        maker.start()
        try:
            while (part := self._take_part(ready)) is not _END:
                if isinstance(part, BaseException):
                    raise part
                if part.texts:
                    self._encode_ahead(part.texts, self.work[part.name], self._unless_stopped, part.tokens)
                if part.last:
                    self.encoded.add(part.name)
                    self.done[part.name].set()
        except _Stopped:
            pass
        except BaseException as exc:  # handed to the evaluating thread, which raises it
            self.error = exc
        finally:
            self._halt()  # planning and tokenising end too: nothing more is encoded
            maker.join()
            self.planned.wait()
            for event in self.done.values():
                event.set()

    def _make_parts(self, ready: queue.Queue[Any]) -> None:
        """Cut each set, once planned, into its parts and make their tokens, in order, into `ready`: a set's
        first part is encoded while its later parts are tokenised, so the device waits for one part, not a set."""
        try:
            k = 0
            while (name := self._next_set(k)) is not None:
                parts = encoding_parts(self.sets[name])
                for i, texts in enumerate(parts):
                    tokens = self._tokenize(texts) if self._tokenize is not None and texts else None
                    self._put(ready, _Part(name, texts, tokens, last=i == len(parts) - 1))
                k += 1
            self._put(ready, _END)
        except _Stopped:
            pass
        except BaseException as exc:  # raised on the encoding thread, then handed to the evaluating one
            with contextlib.suppress(_Stopped):
                self._put(ready, exc)

    def _take_part(self, ready: queue.Queue[Any]) -> Any:
        """The next item of `ready`; raise _Stopped if the run stops first."""
        while not self._stop.is_set():
            with contextlib.suppress(queue.Empty):
                return ready.get(timeout=0.05)
        raise _Stopped

    def _put(self, ready: queue.Queue[Any], item: Any) -> None:
        """Hand `item` to the encoding thread once it has room; raise _Stopped if the run stops first."""
        while not self._stop.is_set():
            with contextlib.suppress(queue.Full):
                ready.put(item, timeout=0.05)
                return
        raise _Stopped

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
        self.planned.wait()
        if name not in self.sets:
            if self.plan_error is not None:  # perhaps never planned: the run stops here
                raise self.plan_error
            return Ahead()
        self._wait(name)
        return self.work.pop(name, Ahead())

    def wait_for(self, texts: Sequence[str]) -> None:
        """Wait until every planned set holding one of `texts` is encoded."""
        self.planned.wait()
        for name in {self.owner[t] for t in texts if t in self.owner}:
            self._wait(name)

    def _halt(self) -> None:
        """Tell every thread to stop, one waiting for the next set to be planned too."""
        self._stop.set()
        with self._new_set:
            self._new_set.notify_all()

    def close(self) -> None:
        """Stop planning and encoding (after the batch on the device) and wait for both threads to end."""
        self._halt()
        for thread in (self._thread, self._planner):
            if thread.is_alive():
                thread.join()
