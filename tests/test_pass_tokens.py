"""The padded-token cap of a forward pass: resolved once per run from --batch-tokens and the device."""

from __future__ import annotations

import pytest

from cmteb.defaults import CPU_BATCH_TOKENS
from cmteb.errors import CmtebError
from cmteb.runner.config import RunOptions, resolve_config


def test_a_cpu_run_caps_its_passes_by_default(tiny_bert, samples_dir):
    config = resolve_config(str(tiny_bert), tasks=["ATEC"], data_dir=samples_dir, device="cpu")
    assert config.load.batch_tokens == CPU_BATCH_TOKENS
    assert config.settings()["batch_tokens"] == CPU_BATCH_TOKENS  # the run record says what ran


@pytest.mark.parametrize(("asked", "device", "resolved"), [(None, "cuda:0", None), (0, "cpu", None), (300, "cpu", 300)])
def test_batch_tokens_as_asked_or_the_devices_default(asked, device, resolved):
    assert RunOptions(batch_tokens=asked).tokens_per_pass(device) == resolved


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
