#!/usr/bin/env python3
"""LoRA fine-tuning of a retriever with Tevatron's contrastive recipe (the paper's LoRA baseline)."""

from enum import Enum
from pathlib import Path
from typing import Optional

import _bootstrap  # noqa: F401
import typer

from mergeir.cli import allow_eval_split_option, force_option, make_app, recipe_options, run
from mergeir.errors import MergeirError
from mergeir.training import DEFAULT_DEEPSPEED, Recipe, train_with_backend

app = make_app(__doc__)


class Backend(str, Enum):
    mergeir = "mergeir"
    tevatron = "tevatron"


@app.command()
@recipe_options  # --lora-r, --lr, --group-size, ...: one option per Recipe field (mergeir.training.recipe)
def main(
    model: Path = typer.Option(..., help="base retriever (Hugging Face folder, safetensors)"),
    train: Path = typer.Option(..., help="training file (Tevatron jsonl, from prepare_training.py)"),
    out: Path = typer.Option(..., help="adapter folder to create (peft adapter + provenance.json + train_log.jsonl)"),
    max_steps: int = typer.Option(..., help="optimizer steps (the paper's early-stopped values: docs/paper.md)"),
    backend: Backend = typer.Option(Backend.mergeir, help="mergeir (built-in loop) | tevatron (the authors' command)"),
    recipe_file: Optional[Path] = typer.Option(
        None, "--recipe", help="JSON object of recipe fields (what PLAN writes, or an adapter's provenance.json) "
                               "[default: the paper's recipe]; the recipe options below override it"),
    query_instruction: Optional[str] = typer.Option(
        None, help="query instruction [default: the training file's sidecar, i.e. the collection's]; '' for none"),
    query_prefix: Optional[str] = typer.Option(
        None, help="raw query prefix, replacing the formatted 'Instruct: ...\\nQuery: '"),
    authors_prefix: bool = typer.Option(
        False, help="prefix as the authors' shell passed it: literal backslash-n, no space (docs/paper.md, quirk 2)"),
    max_length: Optional[int] = typer.Option(
        None, help="max tokens of queries and passages (--query-max-length / --passage-max-length override it)"),
    deepspeed: Optional[Path] = typer.Option(
        None, help=f"DeepSpeed config (e.g. {DEFAULT_DEEPSPEED.relative_to(DEFAULT_DEEPSPEED.parents[2])}); "
                   "required by --backend tevatron, which defaults to it"),
    device: str = typer.Option("auto", help="auto | cpu | cuda | cuda:N"),
    threads: Optional[int] = typer.Option(None, help="CPU threads for torch [default: torch's]"),
    progress: bool = typer.Option(True, help="progress bar on stderr"),
    allow_eval_split: bool = allow_eval_split_option(),
    force: bool = force_option(),
    recipe_changes: dict = None,
) -> None:
    """Train a LoRA adapter that `encode.py --adapter` loads."""
    if query_prefix is not None and authors_prefix:
        raise MergeirError("--query-prefix and --authors-prefix are exclusive")
    if threads is not None and threads < 1:
        raise MergeirError(f"--threads must be at least 1, got {threads}")
    if max_length is not None:
        recipe_changes = {"query_max_length": max_length, "passage_max_length": max_length, **recipe_changes}
    recipe = (Recipe.read(recipe_file) if recipe_file is not None else Recipe()).replace(**recipe_changes)
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    res = train_with_backend(
        backend.value, model, train, out, max_steps=max_steps, recipe=recipe, query_instruction=query_instruction,
        query_prefix=query_prefix, authors_prefix=authors_prefix, deepspeed_config=deepspeed, device=device,
        progress=progress, allow_eval_split=allow_eval_split, force=force,
    )
    last = f", final loss {res.losses[-1]:.4f}" if res.losses else ""
    print(f"{out}: LoRA adapter after {max_steps} steps{last}")


if __name__ == "__main__":
    run(app)
