"""Report: its numbers equal the metrics it was built from; significance vs scipy and brute force; bytes stable."""

import csv
import itertools
import math
import shutil

import numpy as np
import pytest
from scipy import stats

from helpers_cli import assert_one_error, run_bin
from helpers_report import random_grid_values, write_grid, write_metrics, write_study
from mergeir.evaluation import significance as sig
from mergeir.errors import MergeirError
from mergeir.report import build_report


def _csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _f(s):
    return None if s == "" else float(s)


def _holm_reference(p):
    """Holm's adjusted p-values written the textbook way (independent of significance.holm_bonferroni)."""
    m = len(p)
    order = np.argsort(p, kind="stable")
    adj = np.empty(m)
    prev = 0.0
    for k, i in enumerate(order):
        prev = max(prev, min(1.0, (m - k) * p[i]))
        adj[i] = prev
    return adj


# ---------------------------------------------------------------- significance

def test_paired_t_test_matches_scipy():
    a = [0.61, 0.42, 0.90, 0.33, 0.75, 0.50, 0.12, 0.88]
    b = [0.55, 0.40, 0.80, 0.35, 0.60, 0.52, 0.10, 0.70]
    ref = stats.ttest_rel(a, b)
    t, p = sig.paired_t_test(a, b)
    assert t == pytest.approx(ref.statistic, rel=1e-12) and p == pytest.approx(ref.pvalue, rel=1e-9)
    # hand check of the statistic: mean(d) / (sd(d) / sqrt(n))
    d = np.subtract(a, b)
    assert t == pytest.approx(d.mean() / (d.std(ddof=1) / math.sqrt(len(d))), rel=1e-12)
    rng = np.random.default_rng(7)
    for n in (2, 5, 300):
        x, y = rng.random(n), rng.random(n)
        ref = stats.ttest_rel(x, y)
        t, p = sig.paired_t_test(x, y)
        assert t == pytest.approx(ref.statistic, rel=1e-10) and p == pytest.approx(ref.pvalue, rel=1e-8)
    assert sig.paired_t_test([0.5, 0.2, 0.1], [0.5, 0.2, 0.1]) == (0.0, 1.0)  # scipy: nan (documented)


def _brute_force_p(d):
    """All 2^n sign patterns of ALL differences, zeros included, by itertools (independent enumeration)."""
    obs = abs(sum(d))
    hits = sum(abs(sum(s * x for s, x in zip(signs, d))) >= obs - 1e-12
               for signs in itertools.product((1, -1), repeat=len(d)))
    return hits / 2 ** len(d)


def test_randomization_exact_equals_brute_force():
    # dyadic values: every partial sum is exact in floating point, so "as extreme" is unambiguous
    a = np.array([40, 33, 52, 17, 60, 21, 45, 30, 38, 50, 12, 27]) / 64
    b = np.array([36, 33, 41, 20, 52, 21, 40, 31, 30, 44, 15, 21]) / 64
    p, used, exact = sig.randomization_test(a, b)
    assert exact and used == 2 ** 10  # two zero differences dropped
    assert p == _brute_force_p(list(a - b))
    rng = np.random.default_rng(1)
    x, y = rng.random(9), rng.random(9)
    assert sig.randomization_test(x, y)[0] == pytest.approx(_brute_force_p(list(x - y)), abs=1e-15)


def test_randomization_sampled_close_to_enumeration_and_seeded():
    rng = np.random.default_rng(2)
    n = 18  # > EXACT_MAX_N: sampled
    a, b = rng.random(n), rng.random(n) * 0.8
    d = a - b
    signs = 1 - 2 * ((np.arange(2 ** n)[:, None] >> np.arange(n)) & 1)
    exact = np.mean(np.abs(signs @ d) >= abs(d.sum()) - 1e-12)
    p, used, is_exact = sig.randomization_test(a, b, n_permutations=20000, seed=3)
    assert not is_exact and used == 20000
    assert abs(p - exact) < 0.01  # ~3.5 binomial standard errors at p ~ 0.1
    assert sig.randomization_test(a, b, n_permutations=20000, seed=3)[0] == p
    assert sig.randomization_test(a, a, n_permutations=10)[0] == 1.0


def test_holm_bonferroni_known_vector():
    adj = sig.holm_bonferroni([0.01, 0.04, 0.03, 0.005])
    # sorted 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1 -> max(0.06, 0.04)
    assert adj == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert sig.holm_bonferroni([0.6, float("nan"), 0.2]) == pytest.approx([0.6, float("nan"), 0.4], nan_ok=True)
    assert sig.holm_bonferroni([0.5, 0.9]) == [1.0, 1.0]
    p = np.random.default_rng(0).random(7) / 5
    assert sig.holm_bonferroni(p) == pytest.approx(list(_holm_reference(p)))


# ---------------------------------------------------------------- report numbers

@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    truth = write_study(root / "results", seed=4)
    grid_vals = random_grid_values([f"t{i}" for i in range(12)], 9)
    write_grid(root / "grids" / "scifact", "scifact", "train", grid_vals)
    build_report([root / "results"], [root / "grids"], root / "out", n_permutations=2000, seed=0)
    return root, truth, grid_vals


def _pair(truth, ka, kb):
    q = sorted(truth[ka])
    return np.array([truth[ka][k] for k in q]), np.array([truth[kb][k] for k in q])


def test_tables_equal_the_metrics(study):
    root, truth, _ = study
    out = root / "out"
    a_rows = {r["collection"]: r for r in _csv(out / "table_a_source_vs_merged.csv")}
    b_rows = {r["collection"]: r for r in _csv(out / "table_b_full_lora_vs_merged.csv")}
    assert sorted(a_rows) == sorted(b_rows) == ["nfcorpus", "scifact"]
    for c in a_rows:
        m, s = _pair(truth, (c, "merged", "full", None), (c, "source", None, None))
        lo = _pair(truth, (c, "lora", "full", None), (c, "source", None, None))[0]
        ra, rb = a_rows[c], b_rows[c]
        assert _f(ra["source"]) == pytest.approx(s.mean(), abs=5.1e-7)
        assert _f(ra["merged"]) == pytest.approx(m.mean(), abs=5.1e-7)
        assert _f(ra["delta"]) == pytest.approx(m.mean() - s.mean(), abs=5.1e-7)
        assert int(ra["n_queries"]) == len(m)
        assert (_f(ra["alpha_lower"]), _f(ra["alpha_upper"])) == (0.75, 1.0)
        ref = stats.ttest_rel(m, s)
        assert _f(ra["t_stat"]) == pytest.approx(ref.statistic, abs=5.1e-7)
        assert _f(ra["p_ttest"]) == pytest.approx(ref.pvalue, rel=1e-5)
        assert _f(rb["lora"]) == pytest.approx(lo.mean(), abs=5.1e-7)
        assert _f(rb["delta"]) == pytest.approx(m.mean() - lo.mean(), abs=5.1e-7)
        assert _f(rb["p_ttest"]) == pytest.approx(stats.ttest_rel(m, lo).pvalue, rel=1e-5)
    # Holm across the rows of one table
    p = np.array([_f(r["p_ttest"]) for r in a_rows.values()])
    for r, want in zip(a_rows.values(), _holm_reference(p)):
        assert _f(r["p_ttest_holm"]) == pytest.approx(want, rel=1e-5)

    trials = _csv(out / "table_c_limited_trials.csv")
    assert [(r["collection"], int(r["trial"])) for r in trials] == [
        (c, t) for c in ("nfcorpus", "scifact") for t in (1, 2, 3)]  # the paper's collection order
    for r in trials:
        c, t = r["collection"], int(r["trial"])
        m, lo = _pair(truth, (c, "merged", "limited", t), (c, "lora", "limited", t))
        assert _f(r["merged"]) == pytest.approx(m.mean(), abs=5.1e-7)
        assert _f(r["lora"]) == pytest.approx(lo.mean(), abs=5.1e-7)
        assert _f(r["delta"]) == pytest.approx(m.mean() - lo.mean(), abs=5.1e-7)
        assert _f(r["p_ttest"]) == pytest.approx(stats.ttest_rel(m, lo).pvalue, rel=1e-5)
    p = np.array([_f(r["p_randomization"]) for r in trials])
    for r, want in zip(trials, _holm_reference(p)):
        assert _f(r["p_randomization_holm"]) == pytest.approx(want, rel=1e-5)

    for r in _csv(out / "table_c_limited_summary.csv"):
        c = r["collection"]
        lo = np.array([np.mean(list(truth[(c, "lora", "limited", t)].values())) for t in (1, 2, 3)])
        me = np.array([np.mean(list(truth[(c, "merged", "limited", t)].values())) for t in (1, 2, 3)])
        assert _f(r["lora_mean"]) == pytest.approx(lo.mean(), abs=5.1e-7)
        assert _f(r["lora_std"]) == pytest.approx(lo.std(ddof=1), abs=5.1e-7)
        assert _f(r["merged_mean"]) == pytest.approx(me.mean(), abs=5.1e-7)
        assert _f(r["merged_std"]) == pytest.approx(me.std(ddof=1), abs=5.1e-7)
        assert _f(r["delta_mean"]) == pytest.approx((me - lo).mean(), abs=5.1e-7)
        assert int(r["merged_wins"]) == int((me > lo).sum())
        assert int(r["n_trials_lora"]) == int(r["n_trials_merged"]) == 3


def test_report_md_embeds_tables_and_figures(study):
    root, truth, grid_vals = study
    out = root / "out"
    md = (out / "report.md").read_text()
    for name in ("alpha_heatmap_scifact_train.png", "limited_spread.png"):
        assert f"]({name})" in md
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Holm–Bonferroni" in md and "ttest_rel" in md
    a = {r["collection"]: r for r in _csv(out / "table_a_source_vs_merged.csv")}
    assert f"| scifact | 24 | {float(a['scifact']['source']):.4f} |" in md
    for ext in ("md", "csv", "tex"):
        assert (out / f"table_b_full_lora_vs_merged.{ext}").is_file()
    assert "\\toprule" in (out / "table_c_limited_trials.tex").read_text()


def test_same_metrics_give_identical_bytes(study, tmp_path):
    root, _, _ = study
    # the inputs staged elsewhere as symlinked folders (as Nextflow stages them) and built again:
    # everything is found and every output file has the same bytes
    for src, dst in ((root / "results", tmp_path / "r"), (root / "grids", tmp_path / "g")):
        dst.mkdir()
        for sub in src.iterdir():
            (dst / sub.name).symlink_to(sub, target_is_directory=True)
    build_report([tmp_path / "r"], [tmp_path / "g"], tmp_path / "out", n_permutations=2000, seed=0)
    first = {p.name: p.read_bytes() for p in (root / "out").iterdir()}
    second = {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()}
    assert sorted(first) == sorted(second) and len(first) >= 15
    for name in sorted(first):
        assert first[name] == second[name], name


def test_missing_arms_degrade_to_dashes(tmp_path):
    write_study(tmp_path / "r", arms=("source", "merged"), collections=("scifact",), trials=(1,))
    build_report([tmp_path / "r"], [], tmp_path / "out", n_permutations=100)
    b = _csv(tmp_path / "out" / "table_b_full_lora_vs_merged.csv")
    assert b[0]["lora"] == "" and b[0]["merged"] != ""
    for col in ("t_stat", "p_ttest", "p_ttest_holm", "p_randomization", "p_randomization_holm"):
        assert b[0][col] == "", col  # no test: no p, and no adjusted p either
    md = (tmp_path / "out" / "table_b_full_lora_vs_merged.md").read_text()
    assert "| — |" in md and "LoRA (full data) result missing for: scifact" in md
    trials = _csv(tmp_path / "out" / "table_c_limited_trials.csv")
    assert trials[0]["lora"] == "" and trials[0]["merged"] != ""
    assert not (tmp_path / "out" / "alpha_heatmap_scifact_train.png").exists()


def test_holm_family_is_the_comparisons_made(tmp_path):
    """A collection without its source result is no comparison: Holm adjusts the others' p over the two tests
    made, not three (a missing test counted as p = 1 would raise every adjusted p of the table)."""
    truth = write_study(tmp_path / "r", collections=("scifact", "nfcorpus", "fiqa"), trials=())
    shutil.rmtree(tmp_path / "r" / "fiqa" / "source")
    build_report([tmp_path / "r"], [], tmp_path / "out", n_permutations=200, seed=0)
    rows = {r["collection"]: r for r in _csv(tmp_path / "out" / "table_a_source_vs_merged.csv")}
    assert sorted(rows) == ["fiqa", "nfcorpus", "scifact"]
    made = ["nfcorpus", "scifact"]
    p_t = [stats.ttest_rel(*_pair(truth, (c, "merged", "full", None), (c, "source", None, None))).pvalue
           for c in made]
    assert [_f(rows[c]["p_ttest"]) for c in made] == pytest.approx(p_t, rel=1e-5)
    p_r = np.array([_f(rows[c]["p_randomization"]) for c in made])
    for col, p in (("p_ttest_holm", np.array(p_t)), ("p_randomization_holm", p_r)):
        want = _holm_reference(p)
        assert min(want) < 1  # not clipped: the family size shows
        assert [_f(rows[c][col]) for c in made] == pytest.approx(list(want), rel=1e-5), col
    assert all(rows["fiqa"][c] == "" for c in ("p_ttest", "p_ttest_holm", "p_randomization_holm"))


def test_inconsistent_inputs_are_one_error(tmp_path):
    write_study(tmp_path / "r", collections=("scifact",), trials=())
    # the same tags twice
    dup = tmp_path / "r" / "scifact" / "again"
    shutil.copytree(tmp_path / "r" / "scifact" / "lora_full", dup)
    with pytest.raises(MergeirError, match="two results for the same tags"):
        build_report([tmp_path / "r"], [], tmp_path / "out")
    shutil.rmtree(dup)
    # a result whose per_query misses queries of its pair
    vals = {f"sc{i:03d}": 0.5 for i in range(23)}
    write_metrics(tmp_path / "r" / "scifact" / "source", vals, {"collection": "scifact", "arm": "source"})
    with pytest.raises(MergeirError, match="lacks 1 queries of its pair.*sc023"):
        build_report([tmp_path / "r"], [], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_cli_bad_input_one_error_line_nothing_written(tmp_path):
    write_study(tmp_path / "r", collections=("scifact",), trials=())
    shutil.copytree(tmp_path / "r" / "scifact" / "source", tmp_path / "r" / "scifact" / "source2")
    out = tmp_path / "out"
    p = run_bin("report.py", "build", "--results", tmp_path / "r", "--out", out)
    assert_one_error(p, "two results for the same tags", "source2")
    assert not out.exists() and sorted(x.name for x in tmp_path.iterdir()) == ["r"]
    p = run_bin("report.py", "build", "--results", tmp_path / "nope", "--out", out)
    assert_one_error(p, "--results", "nope")
    assert not out.exists()
    (tmp_path / "empty").mkdir()
    p = run_bin("report.py", "build", "--results", tmp_path / "empty", "--out", out)
    assert_one_error(p, "no metrics.json")
    assert not out.exists()


def test_cli_build_writes_the_report(tmp_path):
    write_study(tmp_path / "r", collections=("scifact",), trials=(1, 2))
    p = run_bin("report.py", "build", "--results", tmp_path / "r", "--out", tmp_path / "out",
                "--permutations", "500", check=True)
    assert "report.md" in p.stdout
    rows = _csv(tmp_path / "out" / "table_c_limited_summary.csv")
    assert rows[0]["collection"] == "scifact" and rows[0]["n_trials_lora"] == "2"
