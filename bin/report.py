#!/usr/bin/env python3
"""α selection and the study's report (tables, significance, figures)."""

from pathlib import Path
from typing import List, Optional

import _bootstrap  # noqa: F401
import typer

from mergeir.cli import force_option, make_app, run
from mergeir.errors import MergeirError
from mergeir.evaluation import DEFAULT_PERMUTATIONS, DEFAULT_SEED
from mergeir.io import check_output_file, write_json
from mergeir.provenance import tool_versions
from mergeir.report import build_report
from mergeir.sweep import SELECT_STAGE, select_from_grid, select_from_paper
from mergeir.training import sidecar_path

app = make_app(__doc__)


@app.command("select-alpha")
def select_alpha(
    out: Path = typer.Option(..., help="alpha.json to write"),
    grid: Optional[Path] = typer.Option(None, help="grid folder (grid.json + points/) on labelled queries"),
    queries: Optional[Path] = typer.Option(
        None, help="Tevatron training file of a limited-data trial: score only its queries (sidecar query_ids)"),
    selection: str = typer.Option("grid", help="grid | paper"),
    paper: bool = typer.Option(False, "--paper", help="same as --selection paper"),
    experiment: Optional[Path] = typer.Option(None, help="experiment YAML with the published alphas (paper)"),
    collection: Optional[str] = typer.Option(None, help="collection name (paper)"),
    setting: Optional[str] = typer.Option(None, help="full | limited (paper)"),
    trial: Optional[str] = typer.Option(None, help="limited-data trial: 1..10 or v1..v10 (paper)"),
    eval_split: Optional[str] = typer.Option(None, help="the collection's evaluation split, refused for a grid"),
    force: bool = force_option(),
) -> None:
    """Choose (alpha_lower, alpha_upper) from a grid (tie rule in alpha.json) or take the paper's values."""
    inputs = {"--grid": grid, "--queries": queries and [queries, sidecar_path(queries)], "--experiment": experiment}
    check_output_file(out, stage=SELECT_STAGE, inputs=inputs, force=force)
    mode = "paper" if paper else selection.strip().lower()
    if mode == "grid":
        if grid is None:
            raise MergeirError("--grid is required for --selection grid")
        for name, val in (("--experiment", experiment), ("--collection", collection), ("--setting", setting),
                          ("--trial", trial)):
            if val is not None:
                raise MergeirError(f"{name} only applies to --selection paper")
        doc = select_from_grid(grid, queries, eval_split)
    elif mode == "paper":
        if grid is not None or queries is not None:
            raise MergeirError("--grid/--queries do not apply to --selection paper")
        missing = [n for n, v in (("--experiment", experiment), ("--collection", collection),
                                  ("--setting", setting)) if v is None]
        if missing:
            raise MergeirError(f"--selection paper needs {', '.join(missing)}")
        doc = select_from_paper(experiment, collection, setting, trial)
    else:
        raise MergeirError(f"--selection {selection!r}: expected grid or paper")
    doc["stage"] = SELECT_STAGE.name
    doc["provenance"] = {"built_by": "bin/report.py select-alpha", "tools": tool_versions()}
    write_json(out, doc)
    chosen = (f"profile={','.join(f'{a:g}' for a in doc['profile'])}" if doc.get("profile") is not None
              else f"alpha_lower={doc['alpha_lower']:g} alpha_upper={doc['alpha_upper']:g}")
    print(f"{chosen} ({doc['selection']}) -> {out}")


@app.command()
def build(
    out: Path = typer.Option(..., help="report folder to create (replaced atomically)"),
    results: List[Path] = typer.Option([], help="folder scanned recursively for metrics.json (repeatable)"),
    grid: List[Path] = typer.Option([], help="folder scanned recursively for grid.json (repeatable)"),
    permutations: int = typer.Option(DEFAULT_PERMUTATIONS, help="randomisation-test sign patterns"),
    seed: int = typer.Option(DEFAULT_SEED, help="randomisation-test seed"),
    force: bool = force_option(),
) -> None:
    """Tables A/B/C (md, csv, tex), paired significance, α heatmaps, limited-data spread, report.md."""
    if not results and not grid:
        raise MergeirError("give at least one --results or --grid folder")
    s = build_report(results, grid, out, permutations, seed, force=force)
    print(f"{s['results']} results, {s['grids']} grids -> {s['out']}/report.md")


if __name__ == "__main__":
    run(app)
