"""Which results a model card takes, what it says of them, and what it refuses: each rule with its exact message
(tests/test_modelcard.py checks the card's numbers against the result files)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from huggingface_hub import ModelCard
from results_fixtures import edit_run_record, write_model, write_protocol_model

from cmteb.errors import CmtebError
from cmteb.report.modelcard import card_caveats, eval_results, find_model_results, write_model_card
from cmteb.results.files import RUN_RECORD
from cmteb.results.reader import UNVERIFIED, ModelResults, ParsedResult
from cmteb.tasks.protocols import resolve_protocol

MODEL = "org/m"


def _run_folder(root: Path, variant: dict | None = None, protocol: str = "cmteb-31", data: str = "hub") -> Path:
    """A recorded result folder of MODEL, with the run's non-default settings `variant`."""
    folder = write_protocol_model(root, MODEL, protocol, data_source=data)
    return edit_run_record(folder, lambda record: record.update(variant=variant or {}))


def test_default_settings_come_first_then_full_runs_then_a_subsample(tmp_path):
    default = _run_folder(tmp_path / "a")
    short = _run_folder(tmp_path / "b", {"max_length": 64})
    quick = _run_folder(tmp_path / "c", {"subsample": 20})
    assert find_model_results([tmp_path / "c", tmp_path / "b", tmp_path / "a"], MODEL).folder == default
    assert find_model_results([tmp_path / "c", tmp_path / "b"], MODEL).folder == short
    assert find_model_results([tmp_path / "c"], MODEL).folder == quick


def test_two_folders_of_one_choice_are_refused_with_their_settings(tmp_path):
    first = _run_folder(tmp_path / "a", {"max_length": 64})
    second = _run_folder(tmp_path / "b", {"pooling": "mean"})
    with pytest.raises(CmtebError) as err:
        find_model_results([tmp_path / "a", tmp_path / "b"], MODEL)
    assert str(err.value) == (
        f"model {MODEL} has results in several folders ({first} (max length 64), {second} (pooling mean)): "
        "pass the one to use with --results"
    )
    _run_folder(tmp_path / "c")
    _run_folder(tmp_path / "d")
    with pytest.raises(CmtebError, match=r"\(default settings\), .* \(default settings\)\): pass the one"):
        find_model_results([tmp_path / "c", tmp_path / "d"], MODEL)


def test_several_revisions_need_one_picked(tmp_path):
    write_model(tmp_path, MODEL, "r1", {"ATEC": {"cosine_spearman": 0.4}})
    picked = write_model(tmp_path, MODEL, "r2", {"ATEC": {"cosine_spearman": 0.6}})
    with pytest.raises(CmtebError) as err:
        find_model_results([tmp_path], MODEL)
    assert str(err.value) == f"model {MODEL} has results for several revisions (r1, r2): pick one with --revision"
    assert find_model_results([tmp_path], MODEL, revision="r2").folder == picked
    with pytest.raises(CmtebError) as err:
        find_model_results([tmp_path, tmp_path / MODEL.replace("/", "__")], "org/other")
    assert str(err.value) == (
        f"no results for model 'org/other' under {tmp_path}, {tmp_path / 'org__m'}: pass the name "
        "`cmteb leaderboard` shows, or the --model given to `cmteb run`"
    )
    with pytest.raises(CmtebError, match="no results for model 'org/m'"):
        find_model_results([tmp_path], MODEL, revision="r3")


def test_a_card_carries_one_protocol(tmp_path):
    mine = _run_folder(tmp_path / "a", protocol="cmteb-31")
    _run_folder(tmp_path / "b", protocol="flagembedding-2023")
    roots = [tmp_path / "a", tmp_path / "b"]
    with pytest.raises(CmtebError) as err:
        find_model_results(roots, MODEL)
    assert str(err.value) == (
        f"the results of {MODEL} were produced under several protocols (cmteb-31, flagembedding-2023): "
        "a model card carries one, pick it with --protocol"
    )
    with pytest.raises(CmtebError) as err:
        find_model_results(roots, MODEL, protocol="mteb-cmn-v1")
    assert str(err.value) == (
        f"no results of {MODEL} under protocol mteb-cmn-v1: the results hold cmteb-31, flagembedding-2023"
    )
    assert find_model_results(roots, MODEL, protocol="cmteb-31").folder == mine


def test_unverified_results_need_the_flag_and_say_so(tmp_path):
    folder = _run_folder(tmp_path)
    (folder / RUN_RECORD).unlink()
    with pytest.raises(CmtebError, match="without an intact run record"):
        find_model_results([tmp_path], MODEL)
    results = find_model_results([tmp_path], MODEL, allow_unverified=True)
    assert results.verification == UNVERIFIED
    assert card_caveats(results) == ["unverified: their run record is missing or damaged"]


@pytest.mark.parametrize(
    ("data", "variant", "caveats"),
    [
        ("hub", {}, []),
        ("local", {"max_length": 64}, []),
        ("samples", {}, ["measured on the bundled sample data, not C-MTEB"]),
        ("hub", {"subsample": 20}, ["measured on a subsample of 20 items per task, not full C-MTEB"]),
        ("samples", {"subsample": 20}, ["measured on the bundled sample data, not C-MTEB"]),
    ],
)
def test_the_caveats_of_results_that_are_not_full_c_mteb(data, variant, caveats, tmp_path):
    _run_folder(tmp_path, variant, data=data)
    assert card_caveats(find_model_results([tmp_path], MODEL)) == caveats


def _card_name(path: Path) -> str:
    return ModelCard.load(path).data.model_name


def test_the_cards_model_name_says_its_settings_and_caveats(tmp_path):
    results = find_model_results([_run_folder(tmp_path / "a").parent.parent.parent], MODEL)
    assert _card_name(write_model_card(results, tmp_path / "plain.md")) == "m"
    assert _card_name(write_model_card(results, tmp_path / "named.md", model_name="My M")) == "My M"
    _run_folder(tmp_path / "b", {"max_length": 64, "subsample": 20})
    results = find_model_results([tmp_path / "b"], MODEL)
    card = write_model_card(results, tmp_path / "quick.md")
    name = "m (max length 64, subsample 20; measured on a subsample of 20 items per task, not full C-MTEB)"
    assert _card_name(card) == name
    body = card.read_text(encoding="utf-8").split("\n---\n", 1)[1]
    assert body == (
        f"\n# {name}\n\nC-MTEB results written by cmteb.\n\n"
        "**Results measured on a subsample of 20 items per task, not full C-MTEB.**\n"
    )


def test_results_with_a_caveat_never_go_into_an_existing_card(tmp_path):
    _run_folder(tmp_path / "r", {"subsample": 20})
    readme = tmp_path / "README.md"
    readme.write_text("---\nlicense: mit\n---\n# Mine\n", encoding="utf-8")
    with pytest.raises(CmtebError) as err:
        write_model_card(find_model_results([tmp_path / "r"], MODEL), readme)
    assert str(err.value) == (
        "results measured on a subsample of 20 items per task, not full C-MTEB are never merged into an existing "
        f"card ({readme}): pass a new file with --out"
    )
    assert readme.read_text(encoding="utf-8") == "---\nlicense: mit\n---\n# Mine\n"


@pytest.mark.parametrize(
    ("front", "tags", "name"),
    [
        ("license: mit\ntags:\n- sentence-transformers", ["sentence-transformers", "mteb"], "m"),
        ("model_name: Kept\ntags:\n- mteb\n- zh", ["mteb", "zh"], "Kept"),
        ("license: mit", ["mteb"], "m"),
    ],
)
def test_an_existing_card_gets_the_mteb_tag_once_and_keeps_its_name(front, tags, name, tmp_path):
    results = find_model_results([_run_folder(tmp_path / "r").parent.parent.parent], MODEL)
    readme = tmp_path / "README.md"
    readme.write_text(f"---\n{front}\n---\n# Mine\n", encoding="utf-8")
    write_model_card(results, readme)
    data = ModelCard.load(readme).data
    assert data.tags == tags and data.model_name == name
    assert readme.read_text(encoding="utf-8").endswith("\n---\n# Mine\n")


def test_a_folder_or_results_without_c_mteb_tasks_write_no_card(tmp_path):
    results = find_model_results([_run_folder(tmp_path / "r").parent.parent.parent], MODEL)
    with pytest.raises(CmtebError) as err:
        write_model_card(results, tmp_path)
    assert str(err.value) == f"--out {tmp_path} is a folder: pass the card's file, e.g. --out {tmp_path / 'README.md'}"
    empty = ModelResults(MODEL, "r1", tmp_path, None, {})
    with pytest.raises(CmtebError) as err:
        write_model_card(empty, tmp_path / "README.md")
    assert str(err.value) == f"the results of {MODEL} hold no registered C-MTEB task: nothing to write"
    assert not (tmp_path / "README.md").exists()


def _one_task(splits: dict, subsets: dict | None = None, revision: str | None = None) -> ModelResults:
    parsed = ParsedResult("ATEC", Path("ATEC.json"), revision, "mteb1", splits=splits, subsets=subsets or {})
    return ModelResults(MODEL, "r1", Path("."), None, {"ATEC": parsed}, protocol="cmteb-31")


def _entries(results: ModelResults) -> dict[tuple[str, str], float]:
    return {(r.dataset_split, r.metric_type): round(r.metric_value, 9) for r in eval_results(results)}


def test_a_split_without_subsets_averages_its_entries_metric_by_metric():
    """mteb 1's files name no subsets: a split of two entries gives each metric's mean over the entries that
    hold it."""
    results = _one_task({"test": [{"cosine_spearman": 0.2, "manhattan_pearson": 0.5}, {"cosine_spearman": 0.4}]})
    assert _entries(results) == {("test", "cos_sim_spearman"): 30.0, ("test", "manhattan_pearson"): 50.0}


def test_a_split_with_subsets_gives_the_asked_subsets_entries():
    spec = resolve_protocol("flagembedding-2023").get("STS22")
    scores = {"test": [{"cosine_spearman": 0.1}, {"cosine_spearman": 0.7}]}
    parsed = ParsedResult("STS22", Path("STS22.json"), None, "mteb2", splits=scores, subsets={"test": ["en", "zh"]})
    results = ModelResults(MODEL, "r1", Path("."), None, {"STS22": parsed}, protocol="flagembedding-2023")
    [entry] = eval_results(results)
    assert (entry.dataset_name, entry.dataset_config, entry.metric_value) == ("MTEB STS22 (zh)", "zh", 70.0)
    assert entry.dataset_revision == spec.revision


def test_splits_the_protocol_does_not_name_are_carried_in_name_order_with_the_files_revision():
    results = _one_task({"train": [{"cosine_spearman": 0.1}], "dev": [{"cosine_spearman": 0.2}]}, revision="abc")
    assert [r.dataset_split for r in eval_results(results)] == ["dev", "train"]
    assert {r.dataset_revision for r in eval_results(results)} == {"abc"}
    both = _one_task({"test": [{"cosine_spearman": 0.3}], "dev": [{"cosine_spearman": 0.2}]})
    assert _entries(both) == {("test", "cos_sim_spearman"): 30.0}  # the protocol's split only


def test_a_name_without_an_organisation_and_each_kind_of_note_alone(tmp_path):
    write_model(tmp_path / "solo", "solo", "r1", {"ATEC": {"cosine_spearman": 0.4}})
    card = write_model_card(find_model_results([tmp_path / "solo"], "solo"), tmp_path / "solo.md")
    assert _card_name(card) == "solo" and ModelCard.load(card).data.tags == ["mteb"]
    _run_folder(tmp_path / "short", {"max_length": 64})
    card = write_model_card(find_model_results([tmp_path / "short"], MODEL), tmp_path / "short.md")
    assert _card_name(card) == "m (max length 64)"
    assert "**Results" not in card.read_text(encoding="utf-8")  # other settings are no caveat
    _run_folder(tmp_path / "samples", data="samples")
    # Both caveats at once: ModelResults as a caller may hand it (a folder loses its data origin with its record).
    results = replace(find_model_results([tmp_path / "samples"], MODEL), verification=UNVERIFIED)
    card = write_model_card(results, tmp_path / "samples.md")
    assert _card_name(card) == (
        "m (measured on the bundled sample data, not C-MTEB; unverified: their run record is missing or damaged)"
    )
    assert card.read_text(encoding="utf-8").endswith(
        "C-MTEB results written by cmteb.\n\n**Results measured on the bundled sample data, not C-MTEB.**\n\n"
        "**Results unverified: their run record is missing or damaged.**\n"
    )


def test_a_card_whose_body_would_change_is_left_as_it_was(tmp_path, monkeypatch):
    """The card's body is checked, not trusted: a huggingface_hub that rewrote it (here, one that strips
    trailing spaces) stops the update."""
    results = find_model_results([_run_folder(tmp_path / "r").parent.parent.parent], MODEL)
    readme = tmp_path / "README.md"
    original = "---\nlicense: mit\n---\n# Mine  \n"
    readme.write_text(original, encoding="utf-8")
    load = ModelCard.load

    def rewriting_load(path):
        card = load(path)
        card.text = card.text.rstrip() + "\n"
        return card

    monkeypatch.setattr("cmteb.report.modelcard.ModelCard.load", rewriting_load)
    with pytest.raises(CmtebError) as err:
        write_model_card(results, readme)
    assert str(err.value) == f"could not keep the body of {readme} unchanged: edit its metadata by hand"
    assert readme.read_text(encoding="utf-8") == original


def test_a_multilingual_task_in_mteb1_shape_averages_its_entries():
    """A file of mteb 1's shape names no subsets: the card's zh entry is the mean of what it holds."""
    scores = {"test": [{"cosine_spearman": 0.5}, {"cosine_spearman": 0.7}]}
    parsed = ParsedResult("STS22", Path("STS22.json"), None, "mteb1", splits=scores)
    results = ModelResults(MODEL, "r1", Path("."), None, {"STS22": parsed}, protocol="flagembedding-2023")
    [entry] = eval_results(results)
    assert (entry.dataset_name, entry.metric_value) == ("MTEB STS22 (zh)", pytest.approx(60.0))
