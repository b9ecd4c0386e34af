"""Scale-out: worker processes (one per device) and Ray actors give a single process's scores, say
where each shard ran, and survive a worker killed mid-run."""

from __future__ import annotations

import os
import signal

import numpy as np
import pandas as pd
import pytest

from cmteb.errors import CmtebError
from cmteb.models.plan import plan_batches
from cmteb.results.files import read_run_record
from cmteb.runner import run
from cmteb.workers.options import resolve_workers
from cmteb.workers.shards import plan_shards

TASKS = ["T2Retrieval", "ATEC"]
# Small batches, so the sample tasks make several shards per worker.
COMMON = {"tasks": TASKS, "batch_size": 4, "max_length": 64, "use_cache": False, "show_progress": False}


def _item_values(summary) -> dict[str, np.ndarray]:
    """Every per-item value of every task (per-query nDCG, cosine of each STS pair, ...), by task."""
    return {
        o.spec.name: pd.read_parquet(o.path.with_suffix("").with_suffix(".items.parquet"))["value"].to_numpy()
        for o in summary.outcomes
    }


def _largest_difference(a, b) -> float:
    """The largest difference between two runs' scores and item values; the task sets must agree."""
    assert [o.spec.name for o in a.outcomes] == [o.spec.name for o in b.outcomes]
    assert all(o.status == "ran" for o in (*a.outcomes, *b.outcomes))
    scores = max(abs(x.score - y.score) for x, y in zip(a.outcomes, b.outcomes, strict=True))
    items_a, items_b = _item_values(a), _item_values(b)
    return max(scores, *(float(np.abs(items_a[t] - items_b[t]).max()) for t in items_a))


@pytest.fixture(scope="module")
def single(tmp_path_factory, m3e_dir):
    """The single-process run the worker runs are compared with."""
    from cmteb.assets import SAMPLES_DIR

    return run(str(m3e_dir), data_dir=SAMPLES_DIR, output_dir=tmp_path_factory.mktemp("single"), **COMMON)


def test_shards_are_whole_batches_of_the_single_process_plan():
    rng = np.random.default_rng(0)
    ids = [[1] * int(n) for n in rng.integers(1, 60, size=203)]
    for batch_size, max_tokens, workers in [(8, None, 2), (16, 200, 3), (1, None, 2)]:
        batches = plan_batches(np.array([len(i) for i in ids]), batch_size, max_tokens)
        shards = plan_shards({"input_ids": ids}, batch_size, max_tokens, workers)
        assert np.array_equal(np.concatenate([s.indices for s in shards]), np.concatenate(batches))
        bounds = np.cumsum([len(b) for b in batches])
        for shard in shards:  # a worker batching its shard forms the very batches of one process
            lengths = np.array([len(i) for i in shard.encoded["input_ids"]])
            inner = [shard.indices[b] for b in plan_batches(lengths, batch_size, max_tokens)]
            start = int(np.searchsorted(bounds, sum(len(s.indices) for s in shards[: shard.number]), side="right"))
            assert [b.tolist() for b in inner] == [b.tolist() for b in batches[start : start + len(inner)]]
        assert len(shards) >= min(len(batches), 2 * workers), "every worker gets shards"


def test_worker_options_refuse_contradictions_in_one_line(monkeypatch):
    assert resolve_workers("cuda:0,cuda:1", None, None, None).devices == ("cuda:0", "cuda:1")
    assert resolve_workers("cpu,cpu", None, None, None).pooled
    assert resolve_workers("cuda:1", None, None, None).pooled, "one listed device is one worker on that device"
    assert not resolve_workers(None, None, None, "cpu").pooled
    cases = {
        ("cuda:0,cpu", None, None, None): "mixes GPUs and CPUs",
        ("cuda:0,cuda:0", None, None, None): "names a GPU twice",
        ("gpu0", None, None, None): "unknown device 'gpu0'",
        ("cpu,cpu", None, None, "cpu"): "either --device",
        ("cpu,cpu", "local", None, None): "with --ray",
        (None, None, 2, None): "add --ray",
        (None, "local", 0, None): "--workers must be positive",
    }
    for args, expected in cases.items():
        with pytest.raises(CmtebError, match=expected):
            resolve_workers(*args)
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(
        CmtebError, match=r"--ray needs Ray, which is not installed: pip install -e '\.\[ray\]' in cmteb's checkout"
    ):
        resolve_workers(None, "local", None, None)


def test_two_worker_processes_equal_one_process_even_when_one_is_killed(
    single, m3e_dir, samples_dir, tmp_path, monkeypatch, capsys
):
    from cmteb.workers.processes import ProcessBackend

    start, handed = ProcessBackend.start, []

    def start_then_kill_the_third(self, worker, shard):
        start(self, worker, shard)
        handed.append(worker)
        if len(handed) == 3:  # killed while it holds a shard, as the OOM killer would
            os.kill(self.processes[self.names.index(worker)].pid, signal.SIGKILL)

    monkeypatch.setattr(ProcessBackend, "start", start_then_kill_the_third)
    pooled = run(str(m3e_dir), data_dir=samples_dir, output_dir=tmp_path, devices="cpu,cpu", **COMMON)
    difference = _largest_difference(single, pooled)
    print(f"largest difference, 2 worker processes (one killed) vs 1 process: {difference:.3g}")
    assert difference < 1e-6
    assert "was lost (its process ended with exit code -9)" in capsys.readouterr().err
    record = read_run_record(pooled.outcomes[0].path.parent)
    assert len(record["workers"]["model"]) == 2 and all("/cpu" in w for w in record["workers"]["model"])
    first = record["tasks"][TASKS[0]]
    shards = first["workers"]["model"]["shards"]
    assert len({s.rsplit(": ", 1)[0] for s in shards}) == 2, "both workers ran shards before one was killed"
    assert sum(int(s.rsplit(": ", 1)[1]) for s in shards) == first["texts_encoded"], "each text once"
    retried = [r for entry in record["tasks"].values() for r in entry["workers"]["model"]["retried"]]
    assert len(retried) == 1 and handed[2] in retried[0]


def test_a_reranker_scores_the_same_through_a_worker_process(tiny_cross_encoder):
    from cmteb.models.reranker import BGEReranker
    from cmteb.workers.options import WorkerOptions
    from cmteb.workers.pool import start_pool
    from cmteb.workers.replica import ReplicaSpec

    core = BGEReranker.load(str(tiny_cross_encoder), batch_size=4)
    pairs = [(f"问题{k}", "答案" * (k % 7 + 1)) for k in range(40)]
    alone = core.score(pairs)
    core.pool = start_pool(
        WorkerOptions(devices=("cpu",)), ReplicaSpec("reranker", core.source, core.options, core.recipe, core.normalize)
    )
    try:
        pooled = core.score(pairs)
        shards = core.pool.log.take()["shards"]
    finally:
        core.pool.close()
    assert np.abs(alone - pooled).max() < 1e-6
    assert len(shards) >= 2 and sum(int(s.rsplit(": ", 1)[1]) for s in shards) == len(pairs)
    assert core.stats.texts == 2 * len(pairs)


def test_ray_workers_equal_one_process_even_when_an_actor_is_killed(single, m3e_dir, samples_dir, tmp_path, capsys):
    from cmteb.workers.ray_backend import RayBackend

    start, handed = RayBackend.start, []

    def start_then_kill_the_third(self, worker, shard):
        start(self, worker, shard)
        handed.append(worker)
        if len(handed) == 3:
            self.kill(worker)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(RayBackend, "start", start_then_kill_the_third)
        on_ray = run(str(m3e_dir), data_dir=samples_dir, output_dir=tmp_path, ray="local", workers=2, **COMMON)
    difference = _largest_difference(single, on_ray)
    print(f"largest difference, 2 Ray actors (one killed) vs 1 process: {difference:.3g}")
    assert difference < 1e-6
    record = read_run_record(on_ray.outcomes[0].path.parent)
    assert len(record["workers"]["model"]) == 2 and all(w.startswith("ray ") for w in record["workers"]["model"])
    retried = [r for entry in record["tasks"].values() for r in entry["workers"]["model"]["retried"]]
    assert len(retried) == 1 and handed[2] in retried[0] and "ActorDiedError" in retried[0]
    err = capsys.readouterr().err
    assert "is redone on another worker" in err and "niceness" not in err


def test_a_local_ray_runs_its_workers_beside_this_process_not_below_it():
    """Ray's default niceness of 15 would give the CPU to anything else on the machine before the actors."""
    from cmteb.workers.ray_backend import connect

    def niceness() -> int:  # nested, so Ray ships it by value (workers cannot import this test module)
        return os.nice(0)

    ray = connect(None)
    assert ray.get(ray.remote(num_cpus=0)(niceness).remote()) == os.nice(0)


def test_actors_below_ordinary_processes_are_named_with_the_fix():
    from cmteb.workers.ray_backend import niceness_warning

    assert niceness_warning([0, 0]) is None
    message = niceness_warning([0, 15])
    assert message is not None and "niceness 15" in message and "RAY_worker_niceness=0 ray start" in message


def test_the_niceness_lever_starts_ray_with_its_defaults(monkeypatch):
    import ray
    from levers import LEVERS

    calls = []
    monkeypatch.setattr(ray, "init", lambda *args, **kwargs: calls.append(kwargs))
    LEVERS["ray-niceness"]()  # wraps the ray.init above; monkeypatch restores the real one
    ray.init(address=None, include_dashboard=False, _system_config={"worker_niceness": 0})
    assert calls == [{"address": None, "include_dashboard": False}]


def test_ray_actors_take_the_cores_and_gpus_the_cluster_has():
    from cmteb.workers.ray_backend import ActorPlan, plan_actors

    assert plan_actors(4, [8, 8], None, on_gpu=True) == ActorPlan(count=4, gpus=1, cpus=0)
    assert plan_actors(0, [16, 16], None, on_gpu=False) == ActorPlan(count=2, gpus=0, cpus=16), "one per node"
    assert plan_actors(0, [16, 32], 3, on_gpu=False).cpus == 16  # one on the small node, two on the large
    assert plan_actors(0, [16, 32], 4, on_gpu=False).cpus == 10  # 1 + 3 actors of 10 cores
    assert plan_actors(0, [2], 2, on_gpu=False).cpus == 1
    for args, expected in [
        ((2, [8], 3, True), "--workers 3 asks for more GPU workers than the Ray cluster's 2 GPUs"),
        ((0, [2], 3, False), "--workers 3 asks for more CPU workers than the Ray cluster's 2 CPUs"),
        ((0, [8], None, True), "the Ray cluster has no GPU"),
        ((0, [0], None, False), "the Ray cluster has no CPU"),
    ]:
        with pytest.raises(CmtebError, match=expected):
            plan_actors(*args)


def test_a_cpu_actor_runs_on_its_nodes_cores():
    from cmteb.workers.ray_backend import connect, plan_actors

    def cores_and_threads() -> tuple[float, int]:  # nested, so Ray ships it by value
        import ray as ray_in_actor
        import torch

        return ray_in_actor.get_runtime_context().get_assigned_resources()["CPU"], torch.get_num_threads()

    ray = connect(None)
    cores = int(ray.cluster_resources()["CPU"])
    plan = plan_actors(0, [cores], None, on_gpu=False)
    # Ray sets the thread count to the cores it gave, unless the user set one (the suite's workers do).
    expected = int(os.environ.get("OMP_NUM_THREADS", cores))
    assert ray.get(ray.remote(**plan.options())(cores_and_threads).remote()) == (cores, expected)
