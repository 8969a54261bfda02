#!/usr/bin/env python3
"""Training sets for the LoRA baseline in Tevatron's jsonl format: mined hard negatives, the authors' zips, trials."""

from pathlib import Path
from typing import Optional

import _bootstrap  # noqa: F401
import typer

from mergeir.cli import (Pooling, allow_eval_split_option, attempt_option, batch_for_attempt, force_option, make_app,
                         run)
from mergeir.collections import load_collection
from mergeir.encoding import FROM_COLLECTION, resolve_device
from mergeir.io import check_output_file
from mergeir.training import (MINE_STAGE, extract_authors, labelled_split, mine_hard_negatives, sample_trials,
                              sidecar_path, write_training_set)

app = make_app(__doc__)


@app.command()
def mine(
    collection: Path = typer.Option(..., help="collection folder (BEIR layout, optional collection.json)"),
    model: Path = typer.Option(..., help="encoder that retrieves the hard negatives (Hugging Face folder)"),
    out: Path = typer.Option(..., help="training file to write (Tevatron jsonl); its sidecar is OUT.json"),
    split: Optional[str] = typer.Option(None, help="labelled split [default: the collection's train_split]"),
    negatives: int = typer.Option(30, help="k: top-k retrieved non-relevant documents kept per query"),
    adapter: Optional[Path] = typer.Option(None, help="peft adapter merged into the miner"),
    pooling: Pooling = typer.Option(Pooling.last, help="miner's pooling: last (EOS) | mean | cls"),
    max_length: Optional[int] = typer.Option(None, help="miner's max tokens per text [default: min(4096, model limit)]"),
    query_instruction: Optional[str] = typer.Option(None, help="miner's query instruction [default: the collection's]; '' for none"),
    batch_size: int = typer.Option(16, help="texts per forward pass"),
    max_batch_tokens: Optional[int] = typer.Option(
        None, help="cut batches by padded tokens (rows x longest text) instead of --batch-size"),
    device: str = typer.Option("auto", help="auto | cpu | cuda | cuda:N"),
    progress: bool = typer.Option(True, help="progress bars on stderr"),
    allow_eval_split: bool = allow_eval_split_option(),
    force: bool = force_option(),
    attempt: int = attempt_option(),
) -> None:
    """Hard negatives mined by an encoder from a collection's labelled split."""
    check_output_file(out, stage=MINE_STAGE, inputs={"--collection": collection, "--model": model, "--adapter": adapter},
                      force=force)
    coll = load_collection(collection)
    labelled_split(coll, split, allow_eval_split)
    resolve_device(device)
    examples, side = mine_hard_negatives(
        coll, model, split=split, k=negatives, pooling=pooling.value, max_length=max_length,
        batch_size=batch_for_attempt(batch_size, attempt),
        query_instruction=FROM_COLLECTION if query_instruction is None else query_instruction, adapter=adapter,
        device=device, progress=progress, allow_eval_split=allow_eval_split, max_batch_tokens=max_batch_tokens,
    )
    write_training_set(out, examples, side)
    print(f"{out}: {len(examples)} queries, {sum(len(e.negatives) for e in examples)} negatives "
          f"(sidecar {sidecar_path(out)})")


@app.command()
def authors(
    name: str = typer.Argument(..., help="scifact | nfcorpus | miracl | jqara"),
    out: Path = typer.Option(..., help="folder to create with the zip's training files (+ sidecars)"),
    source: Optional[str] = typer.Option(None, help="local zip or URL [default: the authors' repository at the pinned commit]"),
    sha1: Optional[str] = typer.Option(None, help="expected git blob SHA-1 [default: the pinned one, docs/paper.md]"),
    force: bool = force_option(),
) -> None:
    """The authors' training zip, verified by its git blob SHA-1 and extracted."""
    files = extract_authors(name, out, source=source, sha1=sha1, force=force)
    print(f"{out}: {len(files)} training file(s): {', '.join(f.name for f in files)}")


@app.command()
def trials(
    train: Path = typer.Option(..., help="training file to sample queries from (Tevatron jsonl)"),
    out: Path = typer.Option(..., help="folder to create: v1.jsonl .. vN.jsonl (+ sidecars) and trials.json"),
    n: int = typer.Option(10, "--trials", help="number of trials (the paper: 10)"),
    m: int = typer.Option(50, "--queries", help="queries per trial (the paper: about 50)"),
    seed: int = typer.Option(0, help="trial i draws with seed + i - 1"),
    force: bool = force_option(),
) -> None:
    """Limited-data trials: N seeded samples of M queries."""
    files = sample_trials(train, out, n=n, m=m, seed=seed, force=force)
    print(f"{out}: {len(files)} trials of {m} queries")


if __name__ == "__main__":
    run(app)
