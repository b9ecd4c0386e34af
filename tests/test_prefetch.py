"""The pipelined run: each task's texts encoded ahead on another thread, the same results and counts."""

from __future__ import annotations

import json
import threading
import time

import pytest

from cmteb.errors import CmtebError
from cmteb.results.files import read_run_record
from cmteb.runner import prefetch, run
from cmteb.runner.config import resolve_config
from cmteb.runner.prefetch import Ahead, Prefetcher

# Retrieval, pair classification (list cells), classification (not planned; texts shared with a later
# task), reranking (its corpus shared with retrieval).
TASKS = ["T2Retrieval", "Ocnli", "TNews", "T2Reranking"]


def _run(tiny_bert, samples_dir, tmp_path, pipeline: str):
    out = tmp_path / pipeline
    summary = run(
        str(tiny_bert),
        tasks=TASKS,
        data_dir=samples_dir,
        output_dir=out,
        cache_dir=tmp_path / f"cache-{pipeline}",
        show_progress=False,
        pipeline=pipeline,
        # One text per forward pass: embeddings then do not depend on which texts share a batch, so the two
        # runs must agree exactly (with shared batches they differ by float noise, which k-means on a random
        # model's embeddings can turn into another clustering).
        batch_invariant=True,
    )
    return summary.outcomes, read_run_record(summary.outcomes[0].path.parent)


def test_pipelined_run_equals_a_run_in_turn(tiny_bert, samples_dir, tmp_path):
    in_turn, record_off = _run(tiny_bert, samples_dir, tmp_path, "off")
    ahead, record_on = _run(tiny_bert, samples_dir, tmp_path, "on")
    for a, b in zip(in_turn, ahead, strict=True):
        assert a.spec.name == b.spec.name and b.status == "ran"
        assert json.loads(b.path.read_text())["scores"] == json.loads(a.path.read_text())["scores"], a.spec.name
    # Each task is credited with exactly the texts it encodes in turn: the plan misses and wastes none.
    texts_off = {name: task["texts_encoded"] for name, task in record_off["tasks"].items()}
    texts_on = {name: task["texts_encoded"] for name, task in record_on["tasks"].items()}
    assert texts_on == texts_off and sum(texts_on.values()) == record_on["stats"]["encoder"]["texts"]
    assert record_on["stats"]["encoder"]["texts"] == record_off["stats"]["encoder"]["texts"]


def test_pipeline_auto_follows_the_device(tiny_bert, samples_dir):
    assert not resolve_config(str(tiny_bert), tasks=["ATEC"], data_dir=samples_dir).pipeline  # CPU cores alone
    assert resolve_config(str(tiny_bert), tasks=["ATEC"], data_dir=samples_dir, pipeline="on").pipeline
    assert resolve_config(str(tiny_bert), tasks=["ATEC"], data_dir=samples_dir, devices="cpu,cpu").pipeline
    with pytest.raises(CmtebError, match="--pipeline must be one of auto, on, off"):
        resolve_config(str(tiny_bert), tasks=["ATEC"], data_dir=samples_dir, pipeline="sometimes")


class _Recorder:
    """An encode_ahead that records the sets it gets (and their tokens), optionally failing on one text."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.sets: list[list[str]] = []
        self.tokens: list[object] = []
        self.fail_on = fail_on

    def __call__(self, texts: list[str], ahead: Ahead, on_batch, tokens=None) -> None:
        self.tokens.append(tokens)
        for text in texts:
            if text == self.fail_on:
                raise CmtebError("model m produced NaN or inf embeddings: try --precision fp32")
            on_batch(1)
        ahead.stats.texts += len(texts)
        self.sets.append(list(texts))


def test_sets_are_fixed_before_anything_runs():
    plan = [
        ("A", ["x", "y", "x"], []),
        ("U", None, ["w", "y", "v"]),  # not known ahead: "w" and "v" stay with it, as in turn
        ("B", ["y", "z", "cached", "w"], []),
        ("C", ["x", "v"], []),
        ("D", [], []),
    ]
    recorder = _Recorder()
    prefetcher = Prefetcher(plan, lambda text: text == "cached", recorder).start()
    prefetcher.planned.wait()
    assert prefetcher.sets == {"A": ["x", "y"], "B": ["z"], "C": [], "D": []}
    assert prefetcher.owner == {"x": "A", "y": "A", "z": "B"}
    assert [prefetcher.take(name).stats.texts for name in ("A", "B", "C", "D", "U")] == [2, 1, 0, 0, 0]
    assert prefetcher.take("A").stats.texts == 0, "counted once"
    assert recorder.sets == [["x", "y"], ["z"]]
    prefetcher.close()


def test_the_first_set_is_encoded_while_later_tasks_are_still_planned():
    """Tasks are planned as their data comes in: the first set does not wait for the last task's data, and the
    later sets are what they would be had every task been planned at once."""
    data_in = threading.Event()

    def plan():
        yield "A", ["a1", "a2"], []
        data_in.wait(10)  # B's data still loading
        yield "B", ["a2", "b1"], []

    recorder = _Recorder()
    prefetcher = Prefetcher(plan(), lambda text: False, recorder).start()
    deadline = time.perf_counter() + 60  # a bound on a wait, never on how fast anything runs
    while "A" not in prefetcher.done and time.perf_counter() < deadline:
        time.sleep(0.01)
    assert prefetcher.done["A"].wait(60)
    assert recorder.sets == [["a1", "a2"]] and not prefetcher.planned.is_set()
    data_in.set()
    assert prefetcher.take("B").stats.texts == 1
    assert recorder.sets == [["a1", "a2"], ["b1"]]
    prefetcher.close()


def test_a_planning_error_is_raised_where_a_task_left_unplanned_is_evaluated():
    def plan():
        yield "A", ["a1"], []
        raise CmtebError("task B: its data broke while loading")

    prefetcher = Prefetcher(plan(), lambda text: False, _Recorder()).start()
    assert prefetcher.take("A").stats.texts == 1
    with pytest.raises(CmtebError, match="its data broke"):
        prefetcher.take("B")
    prefetcher.close()


def test_a_data_error_stops_the_encoding_ahead_that_began_beside_the_loading(
    tiny_bert, samples_dir, tmp_path, monkeypatch
):
    from cmteb.runner import systems

    load = systems.TaskLoader._load

    def failing(self, spec):
        if spec.name == "TNews":
            raise CmtebError("task TNews: its data broke while loading")
        return load(self, spec)

    monkeypatch.setattr(systems.TaskLoader, "_load", failing)
    with pytest.raises(CmtebError, match="its data broke"):
        run(str(tiny_bert), tasks=TASKS, data_dir=samples_dir, output_dir=tmp_path / "out", pipeline="on",
            show_progress=False)  # fmt: skip
    assert not any(t.name in ("cmteb-prefetch", "cmteb-plan") for t in threading.enumerate())
    assert not (tmp_path / "out").exists(), "nothing is written"


def test_evaluation_waits_for_the_set_holding_its_texts():
    recorder = _Recorder()
    prefetcher = Prefetcher([("A", ["a1", "a2"], []), ("B", ["b1", "b2"], [])], lambda text: False, recorder).start()
    prefetcher.wait_for(["unplanned", "b2"])  # B's text: waits for B, which comes after A
    assert prefetcher.done["A"].is_set() and prefetcher.done["B"].is_set()
    prefetcher.close()


def test_an_error_ahead_is_raised_where_the_task_is_evaluated():
    recorder = _Recorder(fail_on="b1")
    plan = [("A", ["a1"], []), ("B", ["b1"], []), ("C", ["c1"], [])]
    prefetcher = Prefetcher(plan, lambda text: False, recorder).start()
    prefetcher.done["C"].wait()  # the thread has stopped: A was encoded before B failed
    assert prefetcher.take("A").stats.texts == 1
    with pytest.raises(CmtebError, match="NaN or inf"):
        prefetcher.take("B")
    with pytest.raises(CmtebError, match="NaN or inf"):
        prefetcher.wait_for(["c1"])
    prefetcher.close()


def test_close_stops_after_the_batch_on_the_device():
    """close() lets the batch being encoded finish, starts no other, and ends both threads."""
    in_batch, release, batches = threading.Event(), threading.Event(), []

    def encode(texts, ahead, on_batch, tokens=None):
        for text in texts:
            batches.append(text)
            in_batch.set()
            assert release.wait(60), "the test never released the batch"
            on_batch(1)

    prefetcher = Prefetcher([("A", [f"t{i}" for i in range(200)], [])], lambda text: False, encode).start()
    assert in_batch.wait(60)
    closing = threading.Thread(target=prefetcher.close)
    closing.start()
    assert prefetcher._stop.wait(60)  # close() has asked the threads to stop: now the batch on the device ends
    release.set()
    closing.join(60)
    assert not closing.is_alive() and batches == ["t0"]
    assert not any(t.name == "cmteb-prefetch" for t in threading.enumerate())
    assert prefetcher.error is None and "A" not in prefetcher.encoded


class _Tokenizer:
    """A `tokenize` that records each set it makes tokens of (by its first text), optionally failing on one set;
    `before` maps a text to an event the tokenizer waits for before it makes that text's set."""

    def __init__(self, fail_on: str | None = None, before: dict[str, threading.Event] | None = None) -> None:
        self.fail_on, self.before = fail_on, before or {}
        self.made: dict[str, threading.Event] = {}  # first text of a set -> set once its tokens are made

    def made_event(self, text: str) -> threading.Event:
        return self.made.setdefault(text, threading.Event())

    def __call__(self, texts: list[str]) -> dict[str, list[list[int]]]:
        for text in texts:
            if text in self.before:
                self.before[text].wait(60)
        if self.fail_on in texts:
            raise CmtebError("tokenizer t failed")
        tokens = {"input_ids": [[ord(c) for c in text] for text in texts]}
        self.made_event(texts[0]).set()
        return tokens


def test_a_sets_tokens_are_made_while_the_set_before_it_encodes():
    """While A encodes, B's tokens are made (A's encoding waits for them: made only after it, it would wait in
    vain); while B encodes, D's (C has no texts)."""
    tokenizer = _Tokenizer()
    seen_while_encoding: dict[str, bool] = {}
    waits = {"a1": "b1", "b1": "d1"}  # while this set encodes, that set's tokens must come

    def encode(texts, ahead, on_batch, tokens=None):
        if texts[0] in waits:
            seen_while_encoding[texts[0]] = tokenizer.made_event(waits[texts[0]]).wait(30)
        recorder(texts, ahead, on_batch, tokens)

    recorder = _Recorder()
    plan = [("A", ["a1", "a2"], []), ("B", ["b1"], []), ("C", [], []), ("D", ["d1", "d2"], [])]
    prefetcher = Prefetcher(plan, lambda text: False, encode, tokenizer).start()
    prefetcher.done["D"].wait()
    assert prefetcher.error is None and recorder.sets == [["a1", "a2"], ["b1"], ["d1", "d2"]]
    assert seen_while_encoding == {"a1": True, "b1": True}
    assert recorder.tokens == [_Tokenizer()(texts) for texts in recorder.sets]  # each set got its own tokens


def test_a_large_set_is_encoded_in_parts_shortest_first(monkeypatch):
    monkeypatch.setattr(prefetch, "PART_TEXTS", 3)
    texts = ["aaaa", "b", "cc", "ddddd", "e", "ff", "ggg"]
    encoder = _Recorder()
    prefetcher = Prefetcher([("A", texts, []), ("B", ["h", "ii"], [])], lambda text: False, encoder, _Tokenizer())
    assert prefetcher.start().take("A").stats.texts == 7 and prefetcher.take("B").stats.texts == 2
    assert encoder.sets == [["b", "e", "cc"], ["ff", "ggg", "aaaa"], ["ddddd"], ["h", "ii"]]
    assert encoder.tokens == [_Tokenizer()(part) for part in encoder.sets]
    prefetcher.close()


def test_a_sets_first_part_is_encoded_before_its_last_part_is_tokenised(monkeypatch):
    """The last part's tokens wait until the first part is encoded: were every part tokenised before any is
    encoded, that wait would end in vain."""
    monkeypatch.setattr(prefetch, "PART_TEXTS", 2)
    first_part_encoded = threading.Event()
    tokenizer = _Tokenizer(before={"a5": first_part_encoded})

    def encode(texts, ahead, on_batch, tokens=None):
        recorder(texts, ahead, on_batch, tokens)
        first_part_encoded.set()

    recorder = _Recorder()
    prefetcher = Prefetcher([("A", ["a1", "a2", "a3", "a4", "a5", "a6"], [])], lambda t: False, encode, tokenizer)
    prefetcher.start().take("A")
    assert recorder.sets == [["a1", "a2"], ["a3", "a4"], ["a5", "a6"]]
    assert tokenizer.made_event("a5").is_set() and first_part_encoded.is_set()
    prefetcher.close()


def test_a_tokenizing_error_is_raised_where_its_task_is_evaluated():
    encoder = _Recorder()
    prefetcher = Prefetcher(
        [("A", ["a1"], []), ("B", ["b1"], []), ("C", ["c1"], [])], lambda text: False, encoder, _Tokenizer(fail_on="b1")
    ).start()
    assert prefetcher.take("A").stats.texts == 1
    with pytest.raises(CmtebError, match="tokenizer t failed"):
        prefetcher.take("B")
    with pytest.raises(CmtebError, match="tokenizer t failed"):
        prefetcher.take("C")
    assert encoder.sets == [["a1"]]
    prefetcher.close()


@pytest.mark.parametrize("name", ["TNews", "MultilingualSentiment", "CLSClusteringS2S"])
def test_classification_and_clustering_plans_hold_what_their_evaluation_encodes(name, samples_dir, monkeypatch):
    """The plan draws each experiment's training examples as mteb does: the texts mteb's own evaluation hands
    the model are exactly the planned ones (none missed, none extra)."""
    import warnings

    import mteb

    from cmteb.models.adapter import loader_texts
    from cmteb.runner.prefetch import planned_texts
    from cmteb.tasks.build import build_task
    from cmteb.tasks.registry import load_registry

    task = build_task(load_registry().get(name), samples_dir)
    task.load_data()
    task.samples_per_label = 1  # each experiment then draws a few of the sample's rows: which ones matters
    planned = planned_texts(task, lambda kind: None)
    model = mteb.get_model("mteb/baseline-random-encoder")
    handed: list[str] = []
    encode = type(model).encode

    def recorded(self, inputs, **kwargs):
        handed.extend(loader_texts(inputs))
        return encode(self, inputs, **kwargs)

    monkeypatch.setattr(type(model), "encode", recorded)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mteb.evaluate(model, task, cache=None, overwrite_strategy="always", show_progress_bar=False)
    assert planned is not None and handed and set(planned) == set(handed)


def test_the_benchmarks_tokenize_ahead_lever_tokenises_in_turn(monkeypatch):
    from levers import LEVERS

    from cmteb.runner.systems import cores

    monkeypatch.setattr(cores, "Prefetcher", cores.Prefetcher)  # put back after the test
    tokenizer = _Tokenizer()
    assert cores.Prefetcher([], lambda text: False, _Recorder(), tokenizer)._tokenize is tokenizer
    LEVERS["tokenize-ahead"]()
    assert cores.Prefetcher([], lambda text: False, _Recorder(), tokenizer)._tokenize is None


def test_the_benchmarks_parts_lever_encodes_each_set_in_one_call(monkeypatch):
    from levers import LEVERS

    monkeypatch.setattr(prefetch, "PART_TEXTS", prefetch.PART_TEXTS)  # put back after the test
    texts = [f"t{i}" for i in range(prefetch.PART_TEXTS + 1)]
    assert len(prefetch.encoding_parts(texts)) == 2
    LEVERS["parts"]()
    assert prefetch.encoding_parts(texts) == [texts]
