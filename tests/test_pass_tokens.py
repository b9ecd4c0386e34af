"""The padded-token budget of a forward pass: resolved once per run from --batch-tokens and the device, and
filled by the batch plan."""

from __future__ import annotations

import numpy as np
import pytest

from cmteb.defaults import CPU_BATCH_TOKENS
from cmteb.errors import CmtebError
from cmteb.models.plan import FILL_ROWS, plan_batches
from cmteb.runner.config import RunOptions, resolve_config


def test_a_cpu_run_caps_its_passes_by_default(tiny_bert, samples_dir):
    config = resolve_config(str(tiny_bert), tasks=["ATEC"], data_dir=samples_dir, device="cpu")
    assert config.load.batch_tokens == CPU_BATCH_TOKENS
    assert config.settings()["batch_tokens"] == CPU_BATCH_TOKENS  # the run record says what ran


@pytest.mark.parametrize(
    ("asked", "device", "resolved"),
    [
        (None, "cuda:0", 256 * 128),
        (None, "cpu", CPU_BATCH_TOKENS),
        (0, "cpu", None),
        (0, "cuda", None),
        (300, "cpu", 300),
    ],
)
def test_batch_tokens_as_asked_or_the_devices_default(asked, device, resolved):
    # A GPU's default is the batch's longest case: --batch-size texts of --max-length tokens.
    assert RunOptions(batch_tokens=asked, batch_size=256).tokens_per_pass(device, 128) == resolved


def test_a_gpu_budget_counts_the_length_the_model_allows(tiny_bert, samples_dir, monkeypatch):
    from cmteb.models import devices

    monkeypatch.setattr(devices, "_refuse_gpu_where_none_can_be", lambda device: None)  # resolved, never loaded
    # The tiny BERT has 128 positions: texts are cut there, so a pass of the longest texts is 32 x 128 tokens.
    config = resolve_config(str(tiny_bert), tasks=["ATEC"], data_dir=samples_dir, device="cuda", max_length=4096)
    assert (config.load.max_length, config.load.batch_size, config.load.batch_tokens) == (128, 32, 32 * 128)


def test_short_inputs_fill_the_token_budget_of_a_pass():
    rng = np.random.default_rng(0)
    lengths = np.concatenate([np.full(40, 128), rng.integers(2, 128, size=3_000), np.full(300, 3)])
    batches = plan_batches(lengths, 8, 8 * 128)
    assert len(batches[0]) == 8, "inputs of the longest length travel --batch-size at a time"
    padded = [len(b) * int(lengths[b].max()) for b in batches]
    assert max(padded) <= 8 * 128, "no pass holds more padded tokens than the longest case"
    assert max(len(b) for b in batches) == 8 * FILL_ROWS, "the shortest inputs fill passes up to the row bound"
    for batch in batches[:-1]:  # as full as its inputs allow: one more would break the budget or the row bound
        assert len(batch) == 8 * FILL_ROWS or (len(batch) + 1) * int(lengths[batch].max()) > 8 * 128
    assert sorted(np.concatenate(batches).tolist()) == list(range(len(lengths)))
    assert [len(b) for b in plan_batches(lengths, 8, None)][:-1] == [8] * (len(lengths) // 8), "no budget: fixed"


def test_batch_invariant_runs_one_text_per_pass_uncapped(tiny_bert, samples_dir):
    config = resolve_config(str(tiny_bert), tasks=["ATEC"], data_dir=samples_dir, device="cpu", batch_invariant=True)
    assert (config.load.batch_size, config.load.batch_tokens) == (1, None)


def test_a_negative_cap_is_refused_with_the_fix(tiny_bert, samples_dir):
    with pytest.raises(CmtebError, match="--batch-tokens must be a number of tokens, or 0 for no cap"):
        resolve_config(str(tiny_bert), tasks=["ATEC"], data_dir=samples_dir, batch_tokens=-1)


def test_the_capped_run_scores_as_the_uncapped_one(tiny_bert, samples_dir, tmp_path):
    from cmteb.results.files import read_run_record
    from cmteb.runner import run

    common = {"tasks": ["ATEC"], "data_dir": samples_dir, "device": "cpu", "use_cache": False}
    capped = run(str(tiny_bert), output_dir=tmp_path / "a", batch_tokens=64, **common)
    whole = run(str(tiny_bert), output_dir=tmp_path / "b", batch_tokens=0, **common)
    records = [read_run_record(r.output_dir) for r in (capped, whole)]
    assert [r["batch_tokens"] for r in records] == [64, None]
    assert records[0]["stats"]["encoder"]["batches"] > records[1]["stats"]["encoder"]["batches"]
    assert capped.outcomes[0].score == pytest.approx(whole.outcomes[0].score, abs=1e-6)


def test_the_benchmarks_fill_lever_keeps_every_pass_at_the_batch_size(monkeypatch):
    from levers import LEVERS

    from cmteb.models import plan

    monkeypatch.setattr(plan, "FILL_ROWS", plan.FILL_ROWS)  # put back after the test
    lengths = np.full(100, 4)
    assert [len(b) for b in plan_batches(lengths, 8, 8 * 128)] == [100]
    LEVERS["fill"]()
    assert {len(b) for b in plan_batches(lengths, 8, 8 * 128)} == {8, 4}
