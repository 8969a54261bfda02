"""The sampled randomisation test exactly, and the report's p_randomization columns against
`randomization_test` called on the same per-query pairs.

With n sampled sign patterns the p-value is (1 + #{|S*| >= |S|}) / (1 + n) (Phipson & Smyth 2010): never 0, and
exactly 1 / (1 + n) when no sampled pattern is as extreme as the observed one."""

import csv

import numpy as np
import pytest

from helpers_report import write_study
from mergeir.evaluation import significance as sig
from mergeir.report import build_report


@pytest.mark.parametrize("n", [1, 999, 10_000])
def test_sampled_p_is_one_over_n_plus_one_when_nothing_is_as_extreme(n):
    """40 positive differences: only the all-plus and all-minus patterns (2 of 2^40) reach |S|, so no sample does."""
    d = 0.01 + np.arange(40) / 1000
    p, used, exact = sig.randomization_test(d, np.zeros(40), n_permutations=n, seed=5)
    assert (exact, used) == (False, n)
    assert p == 1.0 / (1.0 + n)


def test_sampled_p_is_one_when_every_pattern_is_as_extreme():
    d = np.repeat([0.25, -0.25], 20)  # S = 0: every pattern's |S*| >= 0
    assert sig.randomization_test(d, np.zeros(40), n_permutations=500, seed=1) == (1.0, 500, False)


def test_sampled_p_counts_hits_plus_one():
    """A middling case: p * (1 + n) is a whole number of hits plus one, and the seed fixes it."""
    rng = np.random.default_rng(9)
    a, b = rng.random(30), rng.random(30) * 0.9
    p, _, _ = sig.randomization_test(a, b, n_permutations=4000, seed=2)
    hits = p * 4001 - 1
    assert hits == pytest.approx(round(hits), abs=1e-9) and 0 < round(hits) < 4000
    assert sig.randomization_test(a, b, n_permutations=4000, seed=2)[0] == p


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _values(truth, key):
    return [truth[key][q] for q in sorted(truth[key])]


@pytest.mark.parametrize("n_queries", [12, 24])  # 12: exact enumeration; 24 > EXACT_MAX_N: sampled
def test_report_p_randomization_equals_the_test_on_the_same_pairs(tmp_path, n_queries):
    truth = write_study(tmp_path / "results", seed=6, n_queries=n_queries, trials=(1, 2, 3, 4))
    n_perm, seed = 1500, 11
    build_report([tmp_path / "results"], [], tmp_path / "out", n_permutations=n_perm, seed=seed)
    out = tmp_path / "out"
    checks = []
    for table, baseline in (("table_a_source_vs_merged", ("source", None, None)),
                            ("table_b_full_lora_vs_merged", ("lora", "full", None))):
        for r in _rows(out / f"{table}.csv"):
            c = r["collection"]
            key = f"{table[6].upper()}|{c}|"
            checks.append((r, (c, "merged", "full", None), (c, *baseline), key))
    for r in _rows(out / "table_c_limited_trials.csv"):
        c, t = r["collection"], int(r["trial"])
        checks.append((r, (c, "merged", "limited", t), (c, "lora", "limited", t), f"C|{c}|{t}"))
    assert len(checks) == 2 * 2 + 2 * 4
    for row, merged, baseline, key in checks:
        p, used, exact = sig.randomization_test(_values(truth, merged), _values(truth, baseline), n_perm,
                                                sig.comparison_seed(seed, key))
        assert exact == (n_queries <= sig.EXACT_MAX_N)
        assert float(row["p_randomization"]) == pytest.approx(p, rel=1e-5), key
    assert min(float(r["p_randomization"]) for r, *_ in checks) < 0.5  # far from 1, where a missing +1 shows
