"""The report folder: tables, figures, report.md and provenance.json written atomically into `--out`."""

from __future__ import annotations

import re
from pathlib import Path

from ..evaluation import significance as sig
from ..io import Stage, atomic_dir, dumps_json
from ..provenance import tool_versions
from .figures import heatmap, spread_plot
from .inputs import Inputs, collection_sort_key, load_inputs
from .render import MISSING_MD, table_csv, table_md, table_tex
from .search_table import search_tables
from .tables import build_tables

SIG_LEVEL = 0.05
# the report folder's marker (provenance.json has named its builder since the first release)
REPORT_STAGE = Stage("report", "provenance.json", key="built_by", value="bin/report.py build")


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def _selected_alpha(inp: Inputs, collection: str):
    m = inp.results.get((collection, "merged", "full", None))
    return (m.alpha_lower, m.alpha_upper) if m else None


def build_report(results_dirs, grid_dirs, out, n_permutations: int = sig.DEFAULT_PERMUTATIONS,
                 seed: int = sig.DEFAULT_SEED, force: bool = False) -> dict:
    """Write tables (md/csv/tex), figures and report.md into `out` (atomically). Returns a short summary."""
    sig.check_permutations(n_permutations)
    inp = load_inputs(results_dirs, grid_dirs)
    tables = build_tables(inp, n_permutations, seed) + search_tables(inp, n_permutations, seed)
    out = Path(out)
    inputs = {"--results": results_dirs, "--grid": grid_dirs, "--results/--grid file": inp.paths}
    with atomic_dir(out, stage=REPORT_STAGE, inputs=inputs, force=force) as tmp:
        for t in tables:
            (tmp / f"{t.name}.md").write_text(f"**{t.title}**\n\n" + table_md(t), encoding="utf-8")
            (tmp / f"{t.name}.csv").write_text(table_csv(t), encoding="utf-8")
            (tmp / f"{t.name}.tex").write_text(table_tex(t), encoding="utf-8")
        figures = []
        for (c, split), g in sorted(inp.grids.items(), key=lambda kv: (collection_sort_key(kv[0][0]), kv[0][1])):
            name = f"alpha_heatmap_{_safe(c)}_{_safe(split)}.png"
            heatmap(g, tmp / name, _selected_alpha(inp, c))
            figures.append((f"α grid, {c} ({split} queries); red box: the full-data α of the merged result", name))
        if spread_plot(inp, tmp / "limited_spread.png"):
            figures.append(("Limited data: nDCG@10 of each trial (grey lines pair a trial's LoRA and merged "
                            "models; bars are means; dashed: source)", "limited_spread.png"))
        (tmp / "report.md").write_text(_report_md(inp, tables, figures, n_permutations, seed), encoding="utf-8")
        (tmp / "provenance.json").write_text(dumps_json({
            "built_by": "bin/report.py build",
            "inputs": inp.files,
            "parameters": {"permutations": n_permutations, "seed": seed, "exact_max_n": sig.EXACT_MAX_N,
                           "holm_family": "the comparisons of one table", "std_ddof": 1},
            "tools": tool_versions(),
        }), encoding="utf-8")
    return {"out": str(out), "results": len(inp.results), "grids": len(inp.grids),
            "tables": [t.name for t in tables], "figures": [f for _, f in figures]}


def _report_md(inp: Inputs, tables, figures, n_permutations: int, seed: int) -> str:
    n_res, n_grid = len(inp.results), len(inp.grids)
    lines = [
        "# Model merging vs LoRA fine-tuning: results",
        "",
        f"Built by `bin/report.py build` from {n_res} result(s) and {n_grid} α grid(s)"
        f"{f' and {len(inp.searches)} α search(es)' if inp.searches else ''} "
        "(`provenance.json` lists them with their sha256).",
        "",
        "Metric: nDCG@10 (pytrec_eval `ndcg_cut_10`; JQaRA: `jqara_ndcg@10`), the mean of each result's "
        "per-query values. α is the weight of the SOURCE model (1.0 = pure source) in the lower / upper half "
        "of the layers. Δ = merged − baseline, over the same queries.",
        "",
        "Significance: two-sided paired tests over per-query nDCG@10 — the paired t-test "
        "(`scipy.stats.ttest_rel`) and a sign-flip randomisation test (exact over all 2^k sign patterns when "
        f"k ≤ {sig.EXACT_MAX_N} queries differ, otherwise {n_permutations} random patterns, seed {seed} combined "
        "with a per-comparison key, p = (1 + hits) / (1 + patterns)). Multiple comparisons: Holm–Bonferroni "
        "across the comparisons of each table (columns 'Holm'); a difference is significant at "
        f"{SIG_LEVEL} when its Holm-adjusted p is below {SIG_LEVEL}. Std over trials uses n − 1. "
        f"Missing results are shown as {MISSING_MD}; in the CSV files as empty fields.",
        "",
    ]
    if inp.notes:
        lines += [f"- {n}" for n in inp.notes] + [""]
    sections = {
        "table_a_source_vs_merged": "## Table A — source vs merged",
        "table_b_full_lora_vs_merged": "## Table B — LoRA vs merged, full data",
        "table_c_limited_summary": "## Table C — limited data (mean ± std over trials)",
        "table_c_limited_trials": "### Table C, per trial",
        "table_d_search_vs_grid": "## Table D — α-profile search vs the grid",
    }
    for t in tables:
        lines += [sections[t.name], "", f"{t.title}. Files: `{t.name}.md`, `{t.name}.csv`, `{t.name}.tex`.", "",
                  table_md(t).rstrip("\n"), ""]
    if figures:
        lines += ["## Figures", ""]
        for caption, name in figures:
            lines += [f"![{caption}]({name})", "", f"*{caption}.*", ""]
    return "\n".join(lines).rstrip("\n") + "\n"
