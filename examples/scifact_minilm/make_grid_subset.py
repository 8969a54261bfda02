#!/usr/bin/env python3
"""Cut the collection the α grid is searched on: the train queries, their judged documents, and a seeded
sample of other documents (SciFact's 5,183 would cost 25 full-corpus encodings on 2 CPU cores).

The documents are chosen without looking at the evaluation split. Its qrels are still written, restricted to
the kept documents, only because a collection must name an evaluation split (collection.json `eval_split`) and
`report.py select-alpha` refuses a grid evaluated on it: the subset keeps `test` as its evaluation split, so
the grid on `train` passes that check honestly. Nothing reads the subset's test split.
"""

import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bin"))
import _bootstrap  # noqa: F401,E402
import typer  # noqa: E402

from mergeir.cli import make_app, run  # noqa: E402
from mergeir.collections import load_collection, write_collection  # noqa: E402
from mergeir.errors import MergeirError  # noqa: E402
from mergeir.io import atomic_dir  # noqa: E402
from mergeir.provenance import tool_versions  # noqa: E402

app = make_app(__doc__)


@app.command()
def main(
    collection: Path = typer.Option(..., help="the prepared collection (bin/download.py collection scifact)"),
    out: Path = typer.Option(..., help="folder to create"),
    n_docs: int = typer.Option(1000, help="corpus size: the judged documents plus sampled others up to this"),
    split: str = typer.Option("train", help="labelled split to keep (never the evaluation split)"),
    seed: int = typer.Option(0, help="seed of the sample of unjudged documents"),
) -> None:
    coll = load_collection(collection)
    if split == coll.eval_split:
        raise MergeirError(f"--split {split} is the collection's evaluation split; α is never chosen on it")
    qrels = coll.qrels(split)
    judged = list(dict.fromkeys(d for q in qrels for d in qrels[q]))
    if n_docs < len(judged):
        raise MergeirError(f"--n-docs {n_docs} is below the {len(judged)} documents judged in split '{split}'")
    judged_set = set(judged)
    others = [d for d in coll.corpus if d not in judged_set]
    keep = judged_set | set(random.Random(seed).sample(others, min(n_docs - len(judged), len(others))))
    corpus = {d: v for d, v in coll.corpus.items() if d in keep}  # corpus file order
    ev = coll.eval_split
    ev_qrels = {q: {d: s for d, s in ds.items() if d in keep} for q, ds in coll.qrels(ev).items()}
    ev_qrels = {q: ds for q, ds in ev_qrels.items() if ds}
    if not ev_qrels:
        raise MergeirError(f"no judgment of split '{ev}' falls in the sample; raise --n-docs or change --seed")
    queries = {q: t for q, t in coll.queries.items() if q in qrels or q in ev_qrels}
    with atomic_dir(out) as tmp:
        write_collection(
            tmp, corpus=corpus, queries=queries, qrels={split: qrels, ev: ev_qrels}, name=coll.name,
            language=coll.language, query_instruction=coll.query_instruction, use_titles=coll.use_titles,
            eval_split=ev, train_split=split,
            source={"derived_from": str(collection), "collection_checksum": coll.checksum, "split": split,
                    "n_judged_docs": len(judged), "n_docs": len(corpus), "seed": seed,
                    "note": f"documents: judged in '{split}' + seeded sample; '{ev}' qrels cut to them, unused",
                    "built_by": "examples/scifact_minilm/make_grid_subset.py", "tools": tool_versions()},
        )
    print(f"{out}: {len(qrels)} {split} queries, {len(corpus)} documents ({len(judged)} judged in {split})")


if __name__ == "__main__":
    run(app)
