#!/usr/bin/env python3
"""PLAN: turn an experiment file (data/paper.yaml, data/test.yaml or your own) into the pipeline's task files."""

from pathlib import Path

import _bootstrap  # noqa: F401
import typer

from mergeir.cli import force_option, make_app, run
from mergeir.errors import MergeirError
from mergeir.experiment import load_experiment
from mergeir.io import read_json_object
from mergeir.pipeline import MAX_ENCODE_SHARDS, chosen_rows, plan_tasks, write_chosen, write_tasks

app = make_app(__doc__)


@app.command()
def tasks(
    experiment_file: Path = typer.Option(..., "--experiment", help="experiment YAML (format of data/paper.yaml)"),
    out: Path = typer.Option(..., help="folder to create: <PROCESS>.json per process, deferred.json, plan.json"),
    dataset: str = typer.Option("all", help="collection keys, comma-separated, or all"),
    settings: str = typer.Option("full,limited", help="full, limited or both (comma-separated)"),
    alpha_selection: str = typer.Option("paper", help="paper: the published alpha; grid: grid search on labelled queries"),
    allow_unpinned: str = typer.Option("false", help="true: accept models whose revision is not a commit"),
    device: str = typer.Option("auto", help="torch device of the encode/sweep/mining/training tasks: auto | cpu | cuda"),
    encode_shards: str = typer.Option("1", help="N > 1: every ENCODE as N shard tasks + a GATHER_EMBEDDINGS task "
                                      f"(N <= {MAX_ENCODE_SHARDS})"),
    sweep_shards: str = typer.Option("1", help="N > 1: the alpha sweep as N SWEEP_PART tasks + a GATHER_GRID task "
                                     "(N <= the grid's alpha_lower values)"),
    params_file: Path = typer.Option(None, "--params", help="JSON object of the options above (dataset ... "
                                     "sweep_shards), as text: how PLAN passes the pipeline's params without a shell"),
    check_paths: bool = typer.Option(True, help="check that the experiment's local paths exist (PLAN leaves it to "
                                                "main.nf: a container sees only the experiment file)"),
    force: bool = force_option(),
) -> None:
    """Write one JSON task file per process (the rows main.nf executes)."""
    experiment = load_experiment(experiment_file, check_paths=check_paths)
    params = {"dataset": dataset, "settings": settings, "alpha_selection": alpha_selection,
              "allow_unpinned": allow_unpinned, "device": device, "encode_shards": encode_shards,
              "sweep_shards": sweep_shards}
    if params_file is not None:
        params.update(read_params(params_file, set(params)))
    rows, deferred = plan_tasks(experiment, **params)
    write_tasks(out, rows, deferred, experiment, params, force=force)
    counts = ", ".join(f"{len(v)} {k}" for k, v in rows.items() if v)
    print(f"{experiment.name}: {counts}" + (f"; {len(deferred)} merged arms chosen on the grid" if deferred else ""))


def read_params(path: Path, known: set[str]) -> dict[str, str]:
    given = read_json_object(path, "params file")
    unknown = sorted(set(given) - known)
    if unknown:
        raise MergeirError(f"{path}: unknown params {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    return {k: "" if v is None else str(v) for k, v in given.items()}


@app.command()
def chosen(
    arm: Path = typer.Option(..., help="the SELECT_ALPHA row's `arm` (JSON), written to a file by its template"),
    alpha: Path = typer.Option(..., help="alpha.json written by report.py select-alpha"),
    out: Path = typer.Option(..., help="folder to create: MERGE.json, ENCODE.json, GATHER_EMBEDDINGS.json, EVALUATE.json, alpha.json, chosen.json"),
    force: bool = force_option(),
) -> None:
    """The merged-arm task rows of a grid-chosen alpha (the one edge of the DAG decided at run time)."""
    chosen_alpha = read_json_object(alpha, "alpha file")
    arm_context = read_json_object(arm, "arm file")
    rows = chosen_rows(arm_context, chosen_alpha)
    write_chosen(out, rows, chosen_alpha, inputs={"--arm": arm, "--alpha": alpha}, force=force)


if __name__ == "__main__":
    run(app)
