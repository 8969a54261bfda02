"""The α search in the experiment file (merge.search) and the planner: with --alpha-selection grid it adds a SWEEP
`search-<c>` beside the grid and a full-data SELECT_ALPHA whose pick becomes the `search` arm; a profile's arm
merges with --profile (no --split-layer); bad settings name their key."""

import json
from pathlib import Path

import pytest

from helpers_experiment import write_variant
from mergeir.errors import MergeirError
from mergeir.experiment import load_experiment
from mergeir.pipeline.tasks import chosen_rows, plan_tasks

ROOT = Path(__file__).resolve().parents[1]
TEST = ROOT / "data" / "test.yaml"


def test_the_test_experiment_searches_four_groups_beside_the_grid():
    exp = load_experiment(TEST)
    sp = exp.merge.search
    assert (sp.sampler, sp.groups, sp.budget, sp.seed, sp.step) == ("tpe", 4, 6, 0, 0.25)
    rows, deferred = plan_tasks(exp, alpha_selection="grid", library="x")
    search = next(r for r in rows["SWEEP"] if r["id"] == "search-tiny")
    opts = search["options"]
    for flag in ("--search tpe", "--groups 4", "--budget 6", "--seed 0", "--step 0.25", "--split train",
                 "--restore-source-embeddings"):
        assert flag in opts, flag
    assert "--split-layer" not in opts and "--grid" not in opts
    sel = {r["id"]: r for r in rows["SELECT_ALPHA"]}
    assert sel["alpha-search-tiny-full-full"]["inputs"]["grid"] == "search-tiny"
    assert not [i for i in sel if i.startswith("alpha-search-") and "limited" in i]  # full data only
    arm = deferred["alpha-search-tiny-full-full"]
    assert arm["arm_tag"] == "search"
    # the paper's α: no search at all
    rows, _ = plan_tasks(exp, alpha_selection="paper", library="x")
    assert [r["id"] for r in rows["SWEEP"]] == [] and not [r for r in rows["SELECT_ALPHA"]]

    chosen = chosen_rows(arm, {"profile": [0.5, 0.75, 0.25, 1.0], "alpha_lower": None, "alpha_upper": None})
    (merge,) = chosen["MERGE"]
    assert merge["id"] == "merged-tiny-source-tiny-domain-p0.5_0.75_0.25_1"
    assert "--profile 0.5,0.75,0.25,1" in merge["options"] and "--split-layer" not in merge["options"]
    (ev,) = chosen["EVALUATE"]
    assert ev["id"] == "eval-tiny-search-full-full"
    assert "--tag arm=search" in ev["options"] and "--tag profile=0.5,0.75,0.25,1" in ev["options"]
    # a 2-group search's pick is a pair, merged at the experiment's split layer
    (pair,) = chosen_rows(arm, {"alpha_lower": 0.5, "alpha_upper": 1.0})["MERGE"]
    assert "--alpha-lower 0.5 --alpha-upper 1" in pair["options"] and "--split-layer 2" in pair["options"]


def test_a_grid_sampler_search_passes_the_grid_and_two_groups_the_split_layer(tmp_path):
    p = write_variant(tmp_path, lambda d: d["merge"].update(search={"sampler": "grid", "groups": 2, "budget": 9}))
    rows, _ = plan_tasks(load_experiment(p), alpha_selection="grid", library="x")
    opts = next(r for r in rows["SWEEP"] if r["id"] == "search-tiny")["options"]
    assert "--grid 0,0.5,1" in opts and "--split-layer 2" in opts and "--step" not in opts


@pytest.mark.parametrize("search, message", [
    ({"groups": 5}, r"merge\.search\.groups: 5 layer groups, but tiny\.layers is 4"),
    ({"groups": 0}, r"merge\.search\.groups: must be >= 1"),
    ({"budget": 0}, r"merge\.search\.budget: must be >= 1"),
    ({"sampler": "bayes"}, r"merge\.search\.sampler: 'bayes' is not one of tpe, cmaes, random, grid"),
    ({"step": 0}, r"merge\.search\.step: must be within \(0, 1\]"),
    ({"seed": -1}, r"merge\.search\.seed: a seed must be within"),
    ({"budjet": 3}, r"merge\.search: unknown keys \['budjet'\]"),
])
def test_bad_search_settings_name_the_key(tmp_path, search, message):
    p = write_variant(tmp_path, lambda d: d["merge"].update(search=search))
    with pytest.raises(MergeirError, match=message):
        load_experiment(p)


def test_an_alpha_file_without_alphas_is_refused():
    arm = json.loads(json.dumps({"collection": "c"}))
    with pytest.raises(MergeirError, match="no numeric alpha_lower/alpha_upper"):
        chosen_rows(arm, {"profile": ["x"]})
