#!/usr/bin/env python3
"""Copy the α-search measurement on the positive control (search_control.sh OUT_DIR, with the control's grid and
its pick run beside it) into study_search/: the grid and the search (grid.json, points cut to nDCG@10, as
collect.py does), both picks' test metrics (per_query kept), their alpha.json files, the merged models'
provenance and the timings.

    examples/scifact_minilm/collect_search.py OUT_DIR SEARCH_FOLDER_NAME [--dest examples/scifact_minilm/study_search]
"""

import sys
from pathlib import Path
from typing import Optional

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from collect import GRID_METRIC, _copy, _results, _write_metrics, app, run  # noqa: E402
import typer  # noqa: E402

from mergeir.io import atomic_dir, read_json  # noqa: E402

app.registered_commands.clear()  # collect.py's app, re-used for its error handling; this script's command only


def _grid(src: Path, dst: Path) -> None:
    _copy(src / "grid.json", dst / "grid.json")
    for p in read_json(src / "grid.json", "grid.json")["points"]:
        doc = read_json(src / p["dir"] / "metrics.json", "grid point metrics.json")
        doc["per_query"] = {q: {GRID_METRIC: v[GRID_METRIC]} for q, v in doc["per_query"].items()}
        doc["per_query_kept"] = [GRID_METRIC]
        _write_metrics(doc, dst / p["dir"] / "metrics.json")


@app.command()
def main(out_dir: Path = typer.Argument(..., help="the folder search_control.sh wrote"),
         search: str = typer.Argument(..., help="the search's folder under domains/control"),
         dest: Optional[Path] = typer.Option(None, help="[default: study_search/ beside this script]")) -> None:
    dest = dest or HERE / "study_search"
    dom = out_dir / "domains" / "control"
    with atomic_dir(dest) as tmp:
        _grid(dom / "grid", tmp / "grid" / "grid")
        _grid(dom / search / "grid", tmp / "grid" / search)
        n = _results(dom / "results", tmp / "metrics") + _results(dom / search / "results", tmp / "metrics")
        _copy(dom / "alpha" / "full.json", tmp / "alpha" / "grid_full.json")
        _copy(dom / search / "alpha" / "full.json", tmp / "alpha" / "search_full.json")
        _copy(dom / "models" / "merged" / "provenance.json", tmp / "provenance" / "merged_grid.json")
        _copy(dom / search / "model" / "provenance.json", tmp / "provenance" / "merged_search.json")
        _copy(out_dir / "timings.tsv", tmp / "timings.tsv")
        if (out_dir / "grid_time.tsv").is_file():
            _copy(out_dir / "grid_time.tsv", tmp / "grid_timings.tsv")
    print(f"{dest}: {n} results, grid, search, alphas, provenance")


if __name__ == "__main__":
    run(app)
