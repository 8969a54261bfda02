#!/usr/bin/env python3
"""Build tiny random Mistral models and a tokenizer (tests and the pipeline's `test` profile)."""

from pathlib import Path

import _bootstrap  # noqa: F401
import typer

from mergeir.cli import force_option, make_app, run
from mergeir.collections import load_collection
from mergeir.errors import MergeirError
from mergeir.io import atomic_dir, write_json
from mergeir.models import MAX_TINY_SIZE, TINY_STAGE, build_mistral, build_tokenizer
from mergeir.provenance import tool_versions

app = make_app(__doc__)


@app.command()
def models(
    out: Path = typer.Option(..., help="folder to create; gets source/ (MistralModel) and domain/ (MistralForCausalLM)"),
    collection: Path = typer.Option(..., help="collection whose texts define the tokenizer's vocabulary"),
    seed: int = typer.Option(0, help="source uses seed, domain seed+1"),
    layers: int = typer.Option(4, help=f"number of decoder layers (1 to {MAX_TINY_SIZE})"),
    force: bool = force_option(),
) -> None:
    """Write a tiny source retriever and a tiny domain LLM sharing one tokenizer."""
    if layers < 1:
        raise MergeirError(f"--layers must be at least 1, got {layers}")
    if layers > MAX_TINY_SIZE:  # a tiny model: 10**30 layers never finished building
        raise MergeirError(f"--layers must be at most {MAX_TINY_SIZE}, got {layers}")
    coll = load_collection(collection)
    texts = [q for q in coll.queries.values()] + [d["title"] + " " + d["text"] for d in coll.corpus.values()]
    texts.append("Instruct: Given a question, retrieve relevant documents that best answer the question\nQuery:")
    with atomic_dir(out, stage=TINY_STAGE, inputs={"--collection": collection}, force=force) as tmp:
        tok = build_tokenizer(texts)
        vocab = max(64, 1 << (len(tok) - 1).bit_length())
        for role, layout, s in (("source", "model", seed), ("domain", "causal", seed + 1)):
            build_mistral(tmp / role, seed=s, layout=layout, vocab_size=vocab, num_hidden_layers=layers, tokenizer=tok)
            write_json(tmp / role / "provenance.json", {
                "repo_id": f"mergeir/tiny-{role}", "revision": f"seed-{s}", "layout": layout,
                "built_by": TINY_STAGE.value, "tools": tool_versions(),
            })


@app.command()
def version() -> None:
    """Print the mergeir version."""
    print(tool_versions()["mergeir"])


if __name__ == "__main__":
    run(app)
