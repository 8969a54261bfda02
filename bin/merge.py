#!/usr/bin/env python3
"""Merge a domain model into a source retriever layer-wise (mergekit, verified) and write a transformers model in
the source's layout with its tokenizer, mergekit_config.yml and provenance.json.

alpha is the weight of the SOURCE model: layers [0, K) use --alpha-lower, [K, n) --alpha-upper (K = n // 2 unless
--split-layer); input embeddings take the first slice's weights (then, by default, the source's own are restored),
the final norm / lm_head / pooler the last slice's.
"""

from pathlib import Path
from typing import Optional

import _bootstrap  # noqa: F401
import typer

from mergeir.cli import force_option, make_app, run
from mergeir.merging import METHOD_HELP, merge

app = make_app(__doc__)


@app.command(help=__doc__ + "\nMethods:\n\n" + METHOD_HELP.replace("\n", "\n\n"))
def main(
    source: Path = typer.Option(..., help="source retriever folder (e.g. e5-mistral, a MistralModel)"),
    domain: Path = typer.Option(..., help="domain model folder (e.g. BioMistral, a MistralForCausalLM)"),
    alpha_lower: Optional[float] = typer.Option(None, help="source weight in layers [0, K), within [0, 1]"),
    alpha_upper: Optional[float] = typer.Option(None, help="source weight in layers [K, n), within [0, 1]"),
    profile: Optional[str] = typer.Option(
        None, help="instead of the two alphas: one source weight per group of layers, e.g. 0.25,0.5,0.75,1 (the "
                   "groups split the layers evenly; bin/sweep.py --search's profiles)"),
    out: Path = typer.Option(..., help="output model folder (written atomically)"),
    method: str = typer.Option("linear", help="linear | slerp | ties | task_arithmetic | dare_ties (see below)"),
    dtype: str = typer.Option(
        "float16", help="float16 | bfloat16 | float32: merge and output dtype (paper: float16, mergekit's; "
                        "bin/sweep.py forms and encodes each point in its own --dtype, default float32)"),
    split_layer: Optional[int] = typer.Option(None, help="K, first layer of the upper slice [default: half]"),
    restore_source_embeddings: bool = typer.Option(
        True, "--restore-source-embeddings/--no-restore-source-embeddings",
        help="overwrite the merged input embeddings with the source's (the paper's choice)"),
    base: Optional[Path] = typer.Option(None, help="common ancestor of both models; ties, task_arithmetic, dare_ties"),
    density: float = typer.Option(0.5, help="fraction of each task vector kept; ties and dare_ties"),
    seed: int = typer.Option(0, help="random seed (dare_ties' random drop)"),
    device: str = typer.Option("cpu", help="device for mergekit's arithmetic (cpu, cuda)"),
    pooling: Optional[str] = typer.Option(
        None, help="last | mean | cls, as encode.py's, for Sentence Transformers (docs/sentence_transformers.md) "
                   "[default: the source's sentence-transformers pooling, else last]"),
    max_length: Optional[int] = typer.Option(
        None, help="max tokens per text for Sentence Transformers, as encode.py's [default: min(4096, model limit)]"),
    query_instruction: Optional[str] = typer.Option(
        None, help="the collection's query instruction (its collection.json): Sentence Transformers' prompt "
                   "'query' [default: none]"),
    force: bool = force_option(),
) -> None:
    prov = merge(source, domain, out, alpha_lower=alpha_lower, alpha_upper=alpha_upper, profile=profile,
                 method=method, dtype=dtype,
                 split_layer=split_layer, restore_source_embeddings=restore_source_embeddings, base=base,
                 density=density, seed=seed, device=device, force=force,
                 sentence_transformers={"pooling": pooling, "max_length": max_length,
                                        "query_instruction": query_instruction})
    v = prov["verification"]
    checked = (f"{v['tensors_compared']} tensors equal their weighted sums" if v["tensors_compared"]
               else f"no closed form for {method}")
    alphas = (f"profile {','.join(map(str, prov['profile']))}" if prov["profile"] is not None
              else f"alpha=({prov['alpha_lower']}, {prov['alpha_upper']}) K={prov['split_layer']}")
    print(f"merged {method} {alphas} -> {out}; "
          f"{checked}; {v['tensors_checked_finite']} tensors finite")


if __name__ == "__main__":
    run(app)
