"""cmteb's scores equal plain mteb's on the same model and data.

The reference path is `mteb.evaluate` with mteb's own sentence-transformers wrapper around a
SentenceTransformer built from the same weights (same pooling, normalised, same instruction
as a prompt on Retrieval/Reranking queries). cmteb runs all tasks of a test in one run (as a user
would: texts shared between tasks encoded once); each task is then checked against plain mteb in a
test of its own, so a failure names its task and the others are still checked.

The two paths compute the same embeddings in other batches (and, with CLS pooling on a CPU, cmteb's last
layer for the first token alone), which moves them in their last bits: about 1e-7, by CPU. A score that
rests on a classifier fit or a k-means run can turn that into points, so each task is allowed the noise
cmteb's run measured for it (`runner/noise.py`: its score's largest move when the embeddings move by the
drift fp32 arithmetic allows); a task whose measured noise is 0 must agree to 1e-6 in every metric.
"""

from __future__ import annotations

import math
import warnings

import mteb
import pytest
from mteb.models.sentence_transformer_wrapper import SentenceTransformerEncoderWrapper

from cmteb.assets import SAMPLES_DIR, bundled_model_dir
from cmteb.models.defaults import ZH_INSTRUCTION
from cmteb.results.files import read_run_record
from cmteb.runner import run
from cmteb.tasks.build import build_task
from cmteb.tasks.registry import load_registry

ALL_TASKS = load_registry().names()
#: One or two tasks of every type, for m3e-small read to 8 tokens.
TASKS_PER_TYPE = [
    "T2Retrieval",
    "EcomRetrieval",
    "ATEC",
    "QBQTC",
    "Ocnli",
    "TNews",
    "MultilingualSentiment",
    "T2Reranking",
    "T2RerankingZh2En",
    "CLSClusteringP2P",
]
#: The two settings compared: the default (mean pooling, 512 tokens, the retrieval instruction), and
#: CLS pooling on 8 tokens, which gives middling, non-saturated scores, so every rank position
#: matters. (A randomly initialised model is no use here: its embeddings are nearly collinear and
#: float32 cosines tie, so rankings follow float noise.)
SETTINGS = {
    "default": {"pooling": "mean", "max_length": 512, "instruction": ZH_INSTRUCTION, "tasks": ALL_TASKS},
    "cls-8-tokens": {"pooling": "cls", "max_length": 8, "instruction": None, "tasks": TASKS_PER_TYPE},
}
#: Perturbed evaluations per task measuring its noise (two find a task that float noise moves, at a fraction of
#: the four of a quick run's cost).
NOISE_DRAWS = 2
CASES = [(setting, name) for setting, spec in SETTINGS.items() for name in spec["tasks"]]


def plain_mteb_wrapper(model_dir, pooling, instruction, max_length):
    """mteb's sentence-transformers wrapper around the same weights, pooling and instruction."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.models import Normalize, Pooling, Transformer

    transformer = Transformer(str(model_dir), max_seq_length=max_length)
    st = SentenceTransformer(
        modules=[transformer, Pooling(transformer.get_embedding_dimension(), pooling_mode=pooling), Normalize()],
        device="cpu",
    )
    prompts = {"Retrieval-query": instruction, "Reranking-query": instruction} if instruction else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SentenceTransformerEncoderWrapper(st, model_prompts=prompts)


def plain_mteb(wrapper, name, samples_dir):
    """Plain `mteb.evaluate` of one task, read from the mirror by `datasets` as mteb reads it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = mteb.evaluate(
            wrapper,
            build_task(load_registry().get(name), samples_dir, in_memory=False),
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
def cmteb_runs(tmp_path_factory):
    """Per setting, cmteb's results of one run over all its tasks (run on first use)."""
    done = {}

    def results(setting):
        if setting not in done:
            spec = SETTINGS[setting]
            summary = run(
                str(bundled_model_dir()),
                tasks=spec["tasks"],
                data_dir=SAMPLES_DIR,
                output_dir=tmp_path_factory.mktemp(f"cmteb-{setting}"),
                pooling=spec["pooling"],
                max_length=spec["max_length"],
                instruction=spec["instruction"],
                show_progress=False,
                model_name="moka-ai/m3e-small",
                noise_draws=NOISE_DRAWS,
            )
            record = read_run_record(summary.output_dir)["tasks"]
            done[setting] = {o.spec.name: (o.result, record[o.spec.name]["noise"]) for o in summary.outcomes}
        return done[setting]

    return results


@pytest.fixture(scope="module")
def plain_wrappers():
    """Per setting, the plain mteb wrapper (built on first use)."""
    built = {}

    def wrapper(setting):
        if setting not in built:
            spec = SETTINGS[setting]
            built[setting] = plain_mteb_wrapper(
                bundled_model_dir(), spec["pooling"], spec["instruction"], spec["max_length"]
            )
        return built[setting]

    return wrapper


@pytest.mark.parametrize(("setting", "name"), CASES, ids=[f"{s}-{n}" for s, n in CASES])
def test_m3e_small_equals_plain_mteb(setting, name, cmteb_runs, plain_wrappers, samples_dir):
    ours, noise = cmteb_runs(setting)[name]
    theirs = plain_mteb(plain_wrappers(setting), name, samples_dir)
    worst = compare(ours, theirs)
    print(
        f"{setting} {name}: cmteb {ours.get_score():.6f}, mteb {theirs.get_score():.6f}, max |diff| {worst:.2e}, "
        f"measured noise {noise['points']!r} points"
    )
    assert noise["points"] < 10, "a noise this large would make the comparison say nothing"
    # The noise is measured on scores as result files keep them (6 decimals): 1e-6 more for that rounding.
    assert ours.get_score() == pytest.approx(theirs.get_score(), abs=noise["points"] / 100 + 1e-6)
    if noise["points"] == 0:
        assert worst <= 1e-6
