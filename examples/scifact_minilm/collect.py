#!/usr/bin/env python3
"""Copy the small results of a run.sh OUT_DIR into the committed `study/` folder (models, embeddings and runs
stay behind): every results metrics.json (per_query kept), the α grid (grid.json, and each point's metrics.json
with per_query cut to nDCG@10 — all that α selection and the report read), the alpha.json files, the trials'
query ids, timings.tsv, and the provenance of the domain model, the merged models and the adapters.
metrics.json files are rewritten with one line per query (same JSON content, a third smaller than the
indented original), so the committed example stays small.

    examples/scifact_minilm/collect.py OUT_DIR [--dest examples/scifact_minilm/study]
"""

import json
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "bin"))
import _bootstrap  # noqa: F401,E402
import typer  # noqa: E402

from mergeir.cli import make_app, run  # noqa: E402
from mergeir.errors import MergeirError  # noqa: E402
from mergeir.io import atomic_dir, dumps_json, read_json  # noqa: E402

app = make_app(__doc__)
GRID_METRIC = "ndcg_cut_10"


def _metrics_text(doc: dict) -> str:
    """Canonical JSON (sorted keys, indent 2) except per_query: one compact line per query, in run order."""
    doc = dict(doc)
    per_query = doc.pop("per_query")
    mark = "\u0000per_query\u0000"
    head = dumps_json({**doc, "per_query": mark})
    rows = ",\n".join(f"    {json.dumps(q)}: {json.dumps(v, sort_keys=True, separators=(',', ':'))}"
                      for q, v in per_query.items())
    return head.replace(json.dumps(mark), "{\n" + rows + "\n  }", 1)


def _write_metrics(doc: dict, dst: Path) -> None:
    text = _metrics_text(doc)
    if json.loads(text) != doc:  # the rewrite must not change a value
        raise MergeirError(f"{dst}: compact rewrite changed the content")
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text(text, encoding="utf-8")


def _copy(src: Path, dst: Path) -> None:
    if not src.is_file():
        raise MergeirError(f"missing {src} (did run.sh finish?)")
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)


@app.command()
def main(
    out_dir: Path = typer.Argument(..., help="the folder run.sh wrote"),
    dest: Path = typer.Option(HERE / "study", help="folder to (re)create"),
) -> None:
    if not (out_dir / "report").is_dir():
        raise MergeirError(f"{out_dir}: no report/ — run.sh has not finished")
    with atomic_dir(dest) as tmp:
        _copy(out_dir / "timings.tsv", tmp / "timings.tsv")
        # results: one folder per (arm, setting, trial); "metrics" because .gitignore drops any results/ folder
        results = sorted((out_dir / "results").glob("*/metrics.json"))
        if not results:
            raise MergeirError(f"{out_dir / 'results'}: no metrics.json")
        for m in results:
            _write_metrics(read_json(m, "metrics.json"), tmp / "metrics" / m.parent.name / "metrics.json")
        # the grid: grid.json as written, points reduced to the metric selection and the report use
        grid = out_dir / "grid"
        _copy(grid / "grid.json", tmp / "grid" / "grid.json")
        for p in read_json(grid / "grid.json", "grid.json")["points"]:
            doc = read_json(grid / p["dir"] / "metrics.json", "grid point metrics.json")
            doc["per_query"] = {q: {GRID_METRIC: v[GRID_METRIC]} for q, v in doc["per_query"].items()}
            doc["per_query_kept"] = [GRID_METRIC]
            _write_metrics(doc, tmp / "grid" / p["dir"] / "metrics.json")
        for a in sorted((out_dir / "alpha").glob("*.json")):
            _copy(a, tmp / "alpha" / a.name)
        _copy(out_dir / "train" / "trials" / "trials.json", tmp / "trials.json")
        _copy(out_dir / "train" / "full.jsonl.json", tmp / "train_full.jsonl.json")
        _copy(out_dir / "grid_collection" / "collection.json", tmp / "grid_collection.json")
        _copy(out_dir / "models" / "domain" / "provenance.json", tmp / "provenance" / "domain.json")
        for m in sorted((out_dir / "models").glob("merged_*")):
            _copy(m / "provenance.json", tmp / "provenance" / f"{m.name}.json")
        for a in sorted((out_dir / "adapters").iterdir()):
            _copy(a / "provenance.json", tmp / "lora" / a.name / "provenance.json")
            _copy(a / "train_log.jsonl", tmp / "lora" / a.name / "train_log.jsonl")
    size = sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
    print(f"{dest}: {len(results)} results, grid, alphas, provenance ({size / 1e6:.2f} MB)")


if __name__ == "__main__":
    run(app)
