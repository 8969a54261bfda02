#!/usr/bin/env python3
"""Split a training file into two disjoint halves: `fit.jsonl` (trains the positive control's domain model)
and `heldout.jsonl` (chooses its α). A domain model fine-tuned on some train queries looks best on exactly
those queries, so α must be chosen on train queries it has not seen, as weight-space ensembling (WiSE-FT)
chooses its mixing weight on held-out data. Neither half contains a test query.

    split_train.py --train OUT/train/full.jsonl --out OUT/train/split --fit 405 --seed 0
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bin"))
import _bootstrap  # noqa: F401,E402
import typer  # noqa: E402

from mergeir.cli import make_app, run  # noqa: E402
from mergeir.errors import MergeirError  # noqa: E402
from mergeir.io import atomic_dir, sha256_file  # noqa: E402
from mergeir.provenance import tool_versions  # noqa: E402
from mergeir.training.data import read_sidecar, read_training_set, write_training_set  # noqa: E402
from mergeir.training.trials import draw_trial  # noqa: E402

app = make_app(__doc__)


@app.command()
def main(
    train: Path = typer.Option(..., help="training file to split (Tevatron jsonl + sidecar)"),
    out: Path = typer.Option(..., help="folder to create: fit.jsonl, heldout.jsonl (+ sidecars)"),
    fit: int = typer.Option(..., help="queries in fit.jsonl (drawn with --seed); the rest go to heldout.jsonl"),
    seed: int = typer.Option(0),
) -> None:
    examples = read_training_set(train)
    if not 1 <= fit < len(examples):
        raise MergeirError(f"--fit must be between 1 and {len(examples) - 1} ({train} has {len(examples)} queries)")
    side = read_sidecar(train) or {}
    chosen = set(draw_trial([e.query_id for e in examples], fit, seed))
    source = {"path": str(train), "sha256": sha256_file(train), "collection": side.get("collection"),
              "split": side.get("split")}
    keep = ("collection", "collection_checksum", "split", "query_instruction", "miner", "k", "use_titles")
    with atomic_dir(out) as tmp:
        for name, part in (("fit", [e for e in examples if e.query_id in chosen]),
                           ("heldout", [e for e in examples if e.query_id not in chosen])):
            write_training_set(tmp / f"{name}.jsonl", part, {
                **{k: side.get(k) for k in keep}, "kind": f"split:{name}", "seed": seed, "n_fit": fit,
                "source": source, "tool_versions": tool_versions()})
    print(f"{out}: fit {fit} queries, heldout {len(examples) - fit} queries")


if __name__ == "__main__":
    run(app)
