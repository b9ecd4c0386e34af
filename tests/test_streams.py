"""Forward passes on several CPU cores at once (`--cpu-streams`): the same outputs, every pass on a core of its
own, errors that stop the run, and the caller's torch thread count left as it was."""

from __future__ import annotations

import threading

import pytest
import torch
from tolerances import assert_same_embeddings

from cmteb.models.encoder import BGEEncoder
from cmteb.models.speed.streams import default_streams

TEXTS = [f"第{k}条评论：{'这家店的菜很好吃，服务也周到' * (1 + k % 5)}" for k in range(40)]


def _recording(encoder: BGEEncoder, passes: list[tuple[str, int]], meet: threading.Barrier | None = None) -> None:
    """Record each pass's thread and that thread's torch thread count. With `meet`, the first passes wait for
    each other there: passes that never run at once break it (after its timeout) instead of passing."""
    compute = encoder.batch_outputs
    started = iter(range(1 << 30))  # next() on an iterator is atomic under the GIL: each pass its own number

    def recorded(batch):
        if meet is not None and next(started) < meet.parties:
            meet.wait()
        out = compute(batch)
        passes.append((threading.current_thread().name, torch.get_num_threads()))
        return out

    encoder.batch_outputs = recorded


def test_streams_share_the_model_one_core_each_and_give_the_same_embeddings(m3e_dir):
    threads_before = torch.get_num_threads()
    one = BGEEncoder.load(str(m3e_dir), batch_size=2, device="cpu", cpu_streams=1)
    three = BGEEncoder.load(str(m3e_dir), batch_size=2, device="cpu", cpu_streams=3)
    assert (one.streams, three.streams) == (1, 3)
    passes: list[tuple[str, int]] = []
    _recording(three, passes, threading.Barrier(3, timeout=60))  # the first three passes run at once, or fail
    expected, embedded = one.encode(TEXTS), three.encode(TEXTS)
    assert_same_embeddings(embedded, expected, one.config)  # one thread a pass sums in another order than two
    assert len(passes) == three.stats.batches == 20
    assert {count for _, count in passes} == {1}  # each pass on one core
    names = {name for name, _ in passes}
    assert len(names) == 3 and all(name.startswith("cmteb-stream") for name in names), names
    assert torch.get_num_threads() == threads_before  # the caller's count, and the one new threads start with
    seen: list[int] = []
    thread = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
    thread.start()
    thread.join()
    assert seen == [threads_before]


def test_a_lone_pass_runs_on_a_stream_too(m3e_dir):
    """Every pass on one torch thread, whatever else the call holds: float results can depend on the thread
    count, and a batch-invariant run promises a text's embedding depends on the text alone."""
    encoder = BGEEncoder.load(str(m3e_dir), batch_size=8, device="cpu", cpu_streams=3)
    passes: list[tuple[str, int]] = []
    _recording(encoder, passes)
    encoder.encode(TEXTS[:5])
    assert [(name.startswith("cmteb-stream"), count) for name, count in passes] == [(True, 1)]


@pytest.mark.parametrize(
    "error",
    [RuntimeError("the third pass failed"), torch.cuda.OutOfMemoryError("CUDA out of memory in the third pass")],
)
def test_a_failing_pass_stops_the_encoding_with_its_own_error(m3e_dir, error):
    """Even an out-of-memory error: it is the failed pass's, never retried as if the batch being queued
    had failed (that would leave the failed pass's rows unwritten)."""
    threads_before = torch.get_num_threads()
    encoder = BGEEncoder.load(str(m3e_dir), batch_size=1, device="cpu", cpu_streams=2)
    compute, calls = encoder.batch_outputs, []

    def failing(batch):
        calls.append(1)
        if len(calls) == 3:
            raise error
        return compute(batch)

    encoder.batch_outputs = failing
    with pytest.raises(type(error), match="third pass"):
        encoder.encode(TEXTS)
    assert len(calls) < len(TEXTS)  # the passes queued behind the failure never ran
    assert torch.get_num_threads() == threads_before


def test_streams_default_to_one_per_core_on_a_cpu_and_one_on_a_gpu():
    assert default_streams("cpu", None) == torch.get_num_threads()
    assert default_streams("cpu", 3) == 3
    assert default_streams("cuda:0", 4) == 1  # a GPU takes its whole batch at once


def test_a_run_records_its_streams(m3e_dir, samples_dir, tmp_path):
    from cmteb.results.files import read_run_record
    from cmteb.runner import run

    result = run(str(m3e_dir), tasks=["ATEC"], data_dir=samples_dir, device="cpu", cpu_streams=2, output_dir=tmp_path)
    assert read_run_record(result.output_dir)["streams"] == {"model": 2}
