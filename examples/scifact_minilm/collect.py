#!/usr/bin/env python3
"""Copy the small results of a run.sh OUT_DIR into a committed study folder (models, embeddings and runs
stay behind). Per PART:

- mlm140 -> study/: the arms every study shares (source, LoRA full and trials: metrics, adapter provenance
  and train logs, trial query ids, the mined training file's sidecar) and the first domain model's study;
- control, mlm -> study_<PART>/: that domain model's study only (it reuses study/'s source and LoRA arms).

A study is: every results metrics.json (per_query kept), the α grid (grid.json, and each point's
metrics.json with per_query cut to nDCG@10 — all that α selection and the report read), the alpha.json
files, the part's rows of timings.tsv, and the provenance of its domain model and merged models. metrics.json
files are rewritten with one line per query (same JSON content, a third smaller than the indented
original), so the committed example stays small.

    examples/scifact_minilm/collect.py OUT_DIR PART [--dest examples/scifact_minilm/study_PART]
"""

import json
import shutil
import sys
from pathlib import Path
from typing import Optional

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "bin"))
import _bootstrap  # noqa: F401,E402
import typer  # noqa: E402

from mergeir.cli import make_app, run  # noqa: E402
from mergeir.errors import MergeirError  # noqa: E402
from mergeir.io import atomic_dir, dumps_json, read_json  # noqa: E402

app = make_app(__doc__)
GRID_METRIC = "ndcg_cut_10"
PARTS = ("mlm140", "control", "mlm")
SHARED_STAGES = ("collection", "source", "grid_collection", "mine", "trials")


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


def _results(src: Path, dst: Path, names=("*",)) -> int:
    found = sorted(m for n in names for m in src.glob(f"{n}/metrics.json"))
    if not found:
        raise MergeirError(f"{src}: no metrics.json")
    for m in found:
        _write_metrics(read_json(m, "metrics.json"), dst / m.parent.name / "metrics.json")
    return len(found)


def _timings(src: Path, dst: Path, keep) -> None:
    lines = src.read_text(encoding="utf-8").splitlines()
    dst.write_text("\n".join([lines[0]] + [ln for ln in lines[1:] if keep(ln.split("\t")[0])]) + "\n",
                   encoding="utf-8")


@app.command()
def main(
    out_dir: Path = typer.Argument(..., help="the folder run.sh wrote"),
    part: str = typer.Argument(..., help="mlm140 | control | mlm"),
    dest: Optional[Path] = typer.Option(None, help="folder to (re)create [default: study/ for mlm140, "
                                                   "else study_<PART>/ beside this script]"),
) -> None:
    if part not in PARTS:
        raise MergeirError(f"PART must be one of {', '.join(PARTS)}, got {part!r}")
    dest = dest or HERE / ("study" if part == "mlm140" else f"study_{part}")
    dom = out_dir / "domains" / part
    if not (dom / "results").is_dir():
        raise MergeirError(f"{dom}: no results/ — run.sh {out_dir} {part} has not finished")
    with atomic_dir(dest) as tmp:
        n = _results(dom / "results", tmp / "metrics")
        # the grid: grid.json as written, points reduced to the metric selection and the report use
        grid = dom / "grid"
        _copy(grid / "grid.json", tmp / "grid" / "grid.json")
        for p in read_json(grid / "grid.json", "grid.json")["points"]:
            doc = read_json(grid / p["dir"] / "metrics.json", "grid point metrics.json")
            doc["per_query"] = {q: {GRID_METRIC: v[GRID_METRIC]} for q, v in doc["per_query"].items()}
            doc["per_query_kept"] = [GRID_METRIC]
            _write_metrics(doc, tmp / "grid" / p["dir"] / "metrics.json")
        for a in sorted((dom / "alpha").glob("*.json")):
            _copy(a, tmp / "alpha" / a.name)
        _copy(dom / "model" / "provenance.json", tmp / "provenance" / "domain.json")
        for m in sorted((dom / "models").glob("merged_*")):
            _copy(m / "provenance.json", tmp / "provenance" / f"{m.name}.json")
        adapters = []
        if part == "mlm140":  # the shared arms live with the first study
            n += _results(out_dir / "results", tmp / "metrics")
            _copy(out_dir / "train" / "trials" / "trials.json", tmp / "trials.json")
            _copy(out_dir / "train" / "full.jsonl.json", tmp / "train_full.jsonl.json")
            _copy(out_dir / "grid_collection" / "collection.json", tmp / "grid_collection.json")
            adapters = ["full"] + [a.name for a in sorted((out_dir / "adapters").glob("v*"))]
            _timings(out_dir / "timings.tsv", tmp / "timings.tsv",
                     lambda s: not s.startswith(("control_", "mlm_")))
        else:
            _timings(out_dir / "timings.tsv", tmp / "timings.tsv", lambda s: s.startswith(f"{part}_"))
        if part == "control":
            adapters = ["control"]
            for half in ("fit", "heldout"):
                _copy(out_dir / "train" / "split" / f"{half}.jsonl.json", tmp / "split" / f"{half}.jsonl.json")
        for a in adapters:
            _copy(out_dir / "adapters" / a / "provenance.json", tmp / "lora" / a / "provenance.json")
            _copy(out_dir / "adapters" / a / "train_log.jsonl", tmp / "lora" / a / "train_log.jsonl")
    size = sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
    print(f"{dest}: {n} results, grid, alphas, provenance ({size / 1e6:.2f} MB)")


if __name__ == "__main__":
    run(app)
