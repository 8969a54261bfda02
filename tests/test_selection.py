"""α selection: best mean nDCG@10 over the chosen queries, the tie rule, refusing test-split grids, paper values."""

import json
import math

import numpy as np
import pytest

from helpers_cli import assert_one_error, run_bin
from helpers_report import GRID, random_grid_values, write_grid, write_training_file
from mergeir.errors import MergeirError
from mergeir.sweep import pick, select_from_grid, select_from_paper
from mergeir.sweep.selection import read_query_ids

QIDS = [f"q{i:02d}" for i in range(20)]


def _independent_best(values: dict, qids) -> tuple:
    means = {a: float(np.mean([pq[q] for q in qids])) for a, pq in values.items()}
    return max(means, key=means.get), means


def test_selects_best_mean_over_all_grid_queries(tmp_path):
    values = random_grid_values(QIDS, seed=3)
    write_grid(tmp_path / "g", "scifact", "train", values)
    doc = select_from_grid(tmp_path / "g")
    best, means = _independent_best(values, QIDS)
    assert (doc["alpha_lower"], doc["alpha_upper"]) == best
    assert doc["ndcg_cut_10"] == pytest.approx(means[best], abs=1e-12)
    assert doc["n_queries"] == 20 and doc["selection"] == "grid" and "1e-12" in doc["tie_rule"]
    assert doc["grid"]["split"] == "train" and doc["grid"]["n_points"] == 25


def test_trial_queries_restrict_the_mean(tmp_path):
    values = random_grid_values(QIDS, seed=5)
    trial = QIDS[:4]
    # make one point best on the trial's queries only, another best overall
    for q in QIDS:
        values[(0.25, 0.25)][q] = 0.99 if q in trial else 0.0
        values[(1.0, 0.0)][q] = 0.0 if q in trial else 0.97
    write_grid(tmp_path / "g", "scifact", "train", values)
    side = write_training_file(tmp_path / "v1.jsonl", trial,
                               {"collection": "scifact", "split": "train", "query_ids": trial, "seed": 1})
    doc = select_from_grid(tmp_path / "g", side)
    assert (doc["alpha_lower"], doc["alpha_upper"]) == _independent_best(values, trial)[0] == (0.25, 0.25)
    assert doc["n_queries"] == 4 and doc["queries"]["source"] == "v1.jsonl.json:query_ids"
    # without a sidecar the jsonl's query_id fields are used
    plain = write_training_file(tmp_path / "plain" / "v1.jsonl", trial + trial[:1])
    assert read_query_ids(plain)[0] == trial
    assert select_from_grid(tmp_path / "g", plain)["alpha_lower"] == 0.25
    full = select_from_grid(tmp_path / "g")
    assert (full["alpha_lower"], full["alpha_upper"]) == _independent_best(values, QIDS)[0]
    assert (full["alpha_lower"], full["alpha_upper"]) != (0.25, 0.25)


def test_tie_rule_prefers_larger_source_weight():
    # equal sums: the larger alpha_upper wins; then the larger alpha_lower
    assert pick({(0.5, 1.0): 0.4, (1.0, 0.5): 0.4, (0.75, 0.75): 0.4, (0.0, 0.0): 0.3}) == (0.5, 1.0)
    assert pick({(0.25, 0.5): 0.4, (0.5, 0.25): 0.4}) == (0.25, 0.5)
    assert pick({(0.0, 0.5): 0.4, (0.5, 0.0): 0.4, (0.25, 0.25): 0.4}) == (0.0, 0.5)
    # larger sum beats larger alpha_upper
    assert pick({(0.0, 1.0): 0.4, (0.75, 0.5): 0.4}) == (0.75, 0.5)
    # within 1e-12 is a tie; 1e-9 is not
    assert pick({(0.0, 0.0): 0.5 + 5e-13, (1.0, 1.0): 0.5}) == (1.0, 1.0)
    assert pick({(0.0, 0.0): 0.5 + 1e-9, (1.0, 1.0): 0.5}) == (0.0, 0.0)


def test_tie_rule_on_a_grid(tmp_path):
    values = {(a, b): {q: 0.1 for q in QIDS} for a in GRID for b in GRID}
    for a in [(0.5, 0.75), (0.75, 0.5), (0.25, 1.0)]:
        values[a] = {q: 0.6 for q in QIDS}
    write_grid(tmp_path / "g", "nfcorpus", "train", values)
    doc = select_from_grid(tmp_path / "g")
    assert (doc["alpha_lower"], doc["alpha_upper"]) == (0.25, 1.0)
    assert doc["ndcg_cut_10"] == pytest.approx(0.6)


@pytest.mark.parametrize("split,extra,collection", [
    ("test", {}, "scifact"),
    ("test", {}, "mycoll"),  # `test` is refused even when nothing else says it is the evaluation split
    ("dev", {"eval_split": "dev"}, "mycoll"),
    ("dev", {}, "miracl-ja"),  # the paper's MIRACL evaluation split
])
def test_refuses_grids_on_the_evaluation_split(tmp_path, split, extra, collection):
    write_grid(tmp_path / "g", collection, split, random_grid_values(QIDS, 1), extra)
    with pytest.raises(MergeirError, match="evaluation split"):
        select_from_grid(tmp_path / "g")


def test_refuses_trial_queries_outside_the_grid(tmp_path):
    write_grid(tmp_path / "g", "scifact", "train", random_grid_values(QIDS, 1))
    f = write_training_file(tmp_path / "t.jsonl", ["q01", "zz9"])
    with pytest.raises(MergeirError, match="zz9"):
        select_from_grid(tmp_path / "g", f)
    f = write_training_file(tmp_path / "u.jsonl", ["q01"], {"split": "dev", "query_ids": ["q01"]})
    with pytest.raises(MergeirError, match="split 'dev'"):
        select_from_grid(tmp_path / "g", f)


def test_grid_points_must_share_queries(tmp_path):
    values = random_grid_values(QIDS, 2)
    del values[(0.5, 0.5)]["q03"]
    write_grid(tmp_path / "g", "scifact", "train", values)
    with pytest.raises(MergeirError, match="queries differ"):
        select_from_grid(tmp_path / "g")


@pytest.mark.parametrize("collection,setting,trial,want", [
    # docs/paper.md's table of the authors' choices
    ("scifact", "full", None, (0.75, 1.0)),
    ("scifact", "limited", "v6", (0.75, 0.5)),
    ("nfcorpus", "limited", 10, (1.0, 0.75)),
    ("miracl-ja", "limited", "3", (1.0, 0.5)),  # the download name maps to the experiment's key
    ("jqara", "full", "full", (0.5, 1.0)),
])
def test_paper_selection_reads_published_values(repo_root, collection, setting, trial, want):
    d = select_from_paper(repo_root / "data" / "paper.yaml", collection, setting, trial)
    assert (d["alpha_lower"], d["alpha_upper"], d["selection"]) == (*want, "paper")
    assert d["paper"]["setting"] == setting


def test_paper_selection_errors(repo_root):
    y = repo_root / "data" / "paper.yaml"
    with pytest.raises(MergeirError, match="trial"):
        select_from_paper(y, "scifact", "limited")
    with pytest.raises(MergeirError, match="v11"):
        select_from_paper(y, "scifact", "limited", 11)
    with pytest.raises(MergeirError, match="trec-covid"):
        select_from_paper(y, "trec-covid", "full")


def test_cli_select_alpha_writes_alpha_json(tmp_path):
    values = random_grid_values(QIDS, 11)
    write_grid(tmp_path / "g", "scifact", "train", values)
    p = run_bin("report.py", "select-alpha", "--grid", tmp_path / "g", "--out", tmp_path / "sel" / "alpha.json",
                check=True)
    doc = json.loads((tmp_path / "sel" / "alpha.json").read_text())
    best, means = _independent_best(values, QIDS)
    assert (doc["alpha_lower"], doc["alpha_upper"]) == best
    assert math.isclose(doc["ndcg_cut_10"], means[best], abs_tol=1e-12)
    assert {"selection", "n_queries", "tie_rule", "grid", "provenance"} <= set(doc)
    assert "alpha_lower=" in p.stdout


def test_cli_refuses_test_grid_with_one_error_line(tmp_path):
    write_grid(tmp_path / "g", "scifact", "test", random_grid_values(QIDS, 1))
    out = tmp_path / "sel" / "alpha.json"
    p = run_bin("report.py", "select-alpha", "--grid", tmp_path / "g", "--out", out)
    assert_one_error(p, "split 'test'")
    assert not out.exists() and (not out.parent.exists() or not any(out.parent.iterdir()))
    p = run_bin("report.py", "select-alpha", "--selection", "paper", "--out", out, "--collection", "scifact")
    assert_one_error(p, "--experiment")
    assert not out.exists()


def test_cli_paper_selection(tmp_path, repo_root):
    out = tmp_path / "alpha.json"
    run_bin("report.py", "select-alpha", "--selection", "paper", "--experiment", repo_root / "data" / "paper.yaml",
            "--collection", "scifact", "--setting", "limited", "--trial", "v3", "--out", out, check=True)
    doc = json.loads(out.read_text())
    assert (doc["alpha_lower"], doc["alpha_upper"], doc["selection"]) == (0.5, 0.75, "paper")
    out2 = tmp_path / "alpha2.json"
    run_bin("report.py", "select-alpha", "--paper", "--experiment", repo_root / "data" / "paper.yaml",
            "--collection", "scifact", "--setting", "full", "--out", out2, check=True)
    assert json.loads(out2.read_text())["alpha_upper"] == 1.0
