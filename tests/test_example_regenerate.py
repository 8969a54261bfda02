"""examples/scifact_minilm: the committed tables and figures are rebuilt byte for byte from the committed metrics.

regenerate.sh runs `bin/report.py build` on each committed study (study/, study_control/, study_mlm/: the small
results of run.sh runs); report*/ hold what it wrote when the runs were committed. Any difference means the
report code, the metrics or a tool version changed the output. The positive control's α is also re-derived here
from the committed grid, independently of bin/report.py, to show it was chosen on held-out train queries only.
"""

import json
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "scifact_minilm"
STUDIES = {"report": "study", "report_control": "study_control", "report_mlm": "study_mlm",
           "report_search": "study_search"}
COMMITTED = [r for r, s in STUDIES.items() if (EXAMPLE / s).is_dir()]
METRIC = "ndcg_cut_10"


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _json(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


def _per_query(path: Path) -> dict[str, float]:
    return {q: v[METRIC] for q, v in _json(path)["per_query"].items()}


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory):
    out = tmp_path_factory.mktemp("regenerated")
    proc = subprocess.run(["bash", str(EXAMPLE / "regenerate.sh"), str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out


def test_regenerate_rebuilds_exactly_the_committed_reports(rebuilt):
    assert sorted(p.name for p in rebuilt.iterdir()) == sorted(COMMITTED)
    for report in COMMITTED:
        committed, again = _files(EXAMPLE / report), _files(rebuilt / report)
        assert sorted(again) == sorted(committed), report
        # each report has every kind of output the study promises
        names = set(committed)
        for table in ("table_a_source_vs_merged", "table_b_full_lora_vs_merged"):
            assert {f"{table}.md", f"{table}.csv", f"{table}.tex"} <= names, report
        assert "report.md" in names and any(n.startswith("alpha_heatmap_") and n.endswith(".png") for n in names)
        different = [n for n in committed if n != "provenance.json" and committed[n] != again[n]]
        assert not different, f"{report}: regenerated files differ from the committed ones: {different}"
        # provenance names its inputs and parameters exactly; the tool versions are those of whoever rebuilt it
        # (a CPU or CUDA torch wheel), so only which tools it records must match
        was, now = (json.loads(f["provenance.json"]) for f in (committed, again))
        assert set(now.pop("tools")) == set(was.pop("tools")), report
        assert now == was, report


@pytest.mark.parametrize("report", COMMITTED)
def test_committed_table_a_matches_committed_metrics(report):
    """Table A's source / merged numbers are the means of the committed per-query nDCG@10 (5 decimals)."""
    rows = (EXAMPLE / report / "table_a_source_vs_merged.csv").read_text(encoding="utf-8").splitlines()
    table = dict(zip(rows[0].split(","), rows[1].split(",")))
    for arm, path in (("source", EXAMPLE / "study" / "metrics" / "source" / "metrics.json"),
                      ("merged", EXAMPLE / STUDIES[report] / "metrics" / "merged_full" / "metrics.json")):
        values = list(_per_query(path).values())
        assert len(values) == 300  # SciFact test
        assert abs(float(table[arm]) - sum(values) / len(values)) < 5e-6


@pytest.mark.skipif(not (EXAMPLE / "study_control").is_dir(), reason="positive control not committed")
def test_control_alpha_is_the_grid_best_on_the_heldout_half_only():
    study = EXAMPLE / "study_control"
    fit = set(_json(study / "split" / "fit.jsonl.json")["query_ids"])
    heldout = _json(study / "split" / "heldout.jsonl.json")["query_ids"]
    test = set(_per_query(EXAMPLE / "study" / "metrics" / "source" / "metrics.json"))
    assert heldout and fit and not fit & set(heldout) and not test & (fit | set(heldout))
    grid = _json(study / "grid" / "grid.json")
    assert grid["split"] == "train"
    scores = {}
    for p in grid["points"]:
        pq = _per_query(study / "grid" / p["dir"] / "metrics.json")
        scores[(p["alpha_lower"], p["alpha_upper"])] = sum(pq[q] for q in heldout) / len(heldout)
    best = max(scores.values())
    # ties within 1e-12 go to the larger source weight (sum, then alpha_upper, then alpha_lower)
    chosen = max((a for a, s in scores.items() if s >= best - 1e-12), key=lambda a: (a[0] + a[1], a[1], a[0]))
    alpha = _json(study / "alpha" / "full.json")
    assert (alpha["alpha_lower"], alpha["alpha_upper"]) == chosen
    assert alpha["queries"]["n"] == len(heldout)
    merged = _json(study / "metrics" / "merged_full" / "metrics.json")["tags"]
    assert (float(merged["alpha_lower"]), float(merged["alpha_upper"])) == chosen


# README's example table: one row per committed report, in this order (first words of its first cell)
README_ROWS = {"report_control": "positive control", "report": "masked LM on the SciFact corpus, 140 steps",
               "report_mlm": "masked LM, 2,200 steps"}


def _csv_row(path: Path) -> dict[str, str]:
    rows = path.read_text(encoding="utf-8").splitlines()
    return dict(zip(rows[0].split(","), rows[1].split(",")))


@pytest.mark.parametrize("report", [r for r in COMMITTED if r in README_ROWS])  # report_search: notes.md
def test_readme_table_follows_the_committed_tables(report):
    """README's row for each study carries Table A/B/C's numbers (4 decimals), so the two cannot drift."""
    lines = [ln for ln in (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
             if ln.startswith(f"| {README_ROWS[report]}")]
    assert len(lines) == 1, f"README.md: expected one example-table row for {report}"
    cells = [c.strip().strip("*") for c in lines[0].strip("|").split("|")]
    table_a = _csv_row(EXAMPLE / report / "table_a_source_vs_merged.csv")
    table_b = _csv_row(EXAMPLE / report / "table_b_full_lora_vs_merged.csv")
    merged_full, lora_full = cells[2].split(" ")[0].strip("*"), cells[3]
    assert merged_full == f"{float(table_a['merged']):.4f}"
    assert lora_full == f"{float(table_b['lora']):.4f}"
    alpha = f"({float(table_a['alpha_lower']):g}, {float(table_a['alpha_upper']):g})"
    assert cells[1].startswith(alpha), (cells[1], alpha)
    summary = EXAMPLE / report / "table_c_limited_summary.csv"
    limited = _csv_row(summary) if summary.read_text(encoding="utf-8").count("\n") > 1 else None
    if limited and limited.get("merged_mean"):
        assert cells[4] == f"{float(limited['merged_mean']):.4f} ± {float(limited['merged_std']):.4f}"
        assert cells[5] == f"{float(limited['lora_mean']):.4f} ± {float(limited['lora_std']):.4f}"
    else:
        assert cells[4] == cells[5] == "—"


@pytest.mark.skipif(not (EXAMPLE / "study_search").is_dir(), reason="α search not committed")
def test_search_and_grid_picks_are_their_best_on_the_heldout_half_and_table_d_states_them():
    """The α search had the grid's budget (25 profiles) and the grid's selection rule (held-out train queries);
    each pick is re-derived here from its committed points, and Table D carries both, with the test results'
    mean difference."""
    study = EXAMPLE / "study_search"
    heldout = _json(EXAMPLE / "study_control" / "split" / "heldout.jsonl.json")["query_ids"]
    picks = {}
    for g in sorted((study / "grid").glob("*/grid.json")):
        doc = _json(g)
        scores = {}
        for p in doc["points"]:
            pq = _per_query(g.parent / p["dir"] / "metrics.json")
            alphas = tuple(p["profile"]) if "profile" in p else (p["alpha_lower"], p["alpha_upper"])
            scores[alphas] = sum(pq[q] for q in heldout) / len(heldout)
        best = max(scores.values())
        chosen = max((a for a, s in scores.items() if s >= best - 1e-12), key=lambda a: (sum(a), a[::-1]))
        picks["search" if "search" in doc else "grid"] = (chosen, scores[chosen], len(scores), doc)
    assert set(picks) == {"grid", "search"}
    search_doc = picks["search"][3]
    assert search_doc["search"]["budget"] == picks["search"][2] == picks["grid"][2] == 25
    assert search_doc["search"]["objective"]["query_ids"] == sorted(heldout)
    import csv

    with (EXAMPLE / "report_search" / "table_d_search_vs_grid.csv").open(encoding="utf-8") as f:
        (row,) = list(csv.DictReader(f))  # its α columns hold commas, quoted
    assert abs(float(row["grid_train"]) - picks["grid"][1]) < 5e-6
    assert abs(float(row["search_train"]) - picks["search"][1]) < 5e-6
    assert row["profile"] == ", ".join(f"{a:g}" for a in picks["search"][0])
    alpha = _json(study / "alpha" / "search_full.json")
    assert tuple(alpha["profile"]) == picks["search"][0]
    tags = _json(study / "metrics" / "search_full" / "metrics.json")["tags"]
    assert tuple(float(a) for a in tags["profile"].split(",")) == picks["search"][0]
    s, m = (_per_query(study / "metrics" / r / "metrics.json") for r in ("search_full", "merged_full"))
    assert len(s) == len(m) == 300
    assert abs(float(row["delta"]) - sum(s[q] - m[q] for q in m) / len(m)) < 5e-6
