"""Start-up: the weights load beside the data where nothing can be missing; otherwise data first."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest

from cmteb.models.encoder import BGEEncoder
from cmteb.runner import run, systems
from cmteb.runner.systems import loader
from cmteb.workers.options import WorkerOptions


def test_a_local_model_loads_beside_a_local_mirrors_data(tiny_bert, samples_dir, tmp_path, monkeypatch):
    threads = {}
    preload, load_encoder = systems.TaskLoader.preload, BGEEncoder.load

    def seen_preload(self, *args, **kwargs):
        threads["data"] = threading.current_thread().name
        return preload(self, *args, **kwargs)

    def seen_load(*args, **kwargs):
        threads["model"] = threading.current_thread().name
        return load_encoder(*args, **kwargs)

    monkeypatch.setattr(systems.TaskLoader, "preload", seen_preload)
    monkeypatch.setattr(BGEEncoder, "load", seen_load)
    summary = run(str(tiny_bert), tasks=["ATEC", "T2Retrieval"], data_dir=samples_dir, output_dir=tmp_path,
                  cache_dir=tmp_path / "cache", show_progress=False)  # fmt: skip
    assert {o.status for o in summary.outcomes} == {"ran"}
    assert threads["data"] == threading.main_thread().name and threads["model"].startswith("cmteb-load-models")


def _config(data_dir, local=True, workers=None):
    workers = workers or WorkerOptions()
    source = SimpleNamespace(local_dir="/m" if local else None)
    return SimpleNamespace(
        data_dir=data_dir,
        workers=workers,
        load=SimpleNamespace(device="cpu"),
        embedder=SimpleNamespace(source=source),
        reranker=None,
    )


@pytest.mark.parametrize(
    "config",
    [_config(None), _config("/mirror", local=False), _config("/mirror", workers=WorkerOptions(ray=True))],
    ids=["hub-data", "hub-model", "worker-pool"],
)
def test_otherwise_the_data_is_found_before_any_weights_are_read(config):
    order = []
    tasks = SimpleNamespace(preload=lambda pending, progress: order.append(("data", threading.current_thread())))
    models = loader.while_loading_data(
        config, tasks, [], None, lambda: order.append(("model", threading.current_thread()))
    )
    assert models is None and order == [("data", threading.current_thread()), ("model", threading.current_thread())]


def test_a_data_error_beside_the_model_is_the_one_raised(tmp_path):
    loaded = []

    def broken(pending, progress):
        raise ValueError("a damaged parquet file")

    with pytest.raises(ValueError, match="damaged parquet"):
        loader.while_loading_data(_config("/mirror"), SimpleNamespace(preload=broken), [], None,
                                    lambda: loaded.append(True))  # fmt: skip
    assert loaded == [True], "the model thread finished before the error came out: nothing is left running"
