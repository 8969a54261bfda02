#!/usr/bin/env python3
"""Turn an experiment file (data/paper.yaml, data/test.yaml or your own) into the pipeline's task lists."""

import platform
from pathlib import Path

import _bootstrap  # noqa: F401
import typer

from mergeir.cli import make_app, run
from mergeir.experiment import load_experiment, plan, write_plan
from mergeir.io import atomic_write_text
from mergeir.provenance import tool_versions

app = make_app(__doc__)


@app.command()
def tasks(
    experiment: Path = typer.Option(..., help="experiment YAML (format of data/paper.yaml)"),
    out: Path = typer.Option(..., help="folder to create: models.csv, collections.csv, trials.csv, tiny.csv, plan.json"),
    dataset: str = typer.Option("all", help="collection keys, comma-separated, or all"),
    settings: str = typer.Option("full,limited", help="full, limited or both (comma-separated)"),
    alpha_selection: str = typer.Option("paper", help="paper: the published alpha; grid: grid search on labelled queries"),
    allow_unpinned: bool = typer.Option(False, "--allow-unpinned", help="accept models whose revision is not a commit"),
) -> None:
    """Write the task lists main.nf reads (one CSV per kind of task)."""
    exp = load_experiment(experiment)
    t = plan(exp, dataset=dataset, settings=settings, alpha_selection=alpha_selection, allow_unpinned=allow_unpinned)
    write_plan(t, exp, out, {"dataset": dataset, "settings": settings, "alpha_selection": alpha_selection,
                             "allow_unpinned": allow_unpinned})
    counts = ", ".join(f"{len(v)} {k}" for k, v in t.items())
    print(f"{exp.name}: {counts}")


@app.command()
def versions(
    process: str = typer.Option(..., help="the Nextflow process name the versions are recorded for"),
    out: Path = typer.Option(Path("versions.yml"), help="YAML file to write"),
) -> None:
    """Record the tool versions of this task's environment (collected into pipeline_info/)."""
    v = tool_versions()
    lines = [f'"{process}":'] + [f"  {k}: {'null' if x is None else repr(str(x))}" for k, x in sorted(v.items())]
    lines.append(f"  platform: {platform.platform()!r}")
    atomic_write_text(out, "\n".join(lines) + "\n")


if __name__ == "__main__":
    run(app)
