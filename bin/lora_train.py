#!/usr/bin/env python3
"""LoRA fine-tuning of a retriever with Tevatron's contrastive recipe (the paper's LoRA baseline)."""

from enum import Enum
from pathlib import Path
from typing import Optional

import _bootstrap  # noqa: F401
import typer

from mergeir.cli import Pooling, allow_eval_split_option, force_option, make_app, run
from mergeir.errors import MergeirError
from mergeir.training.recipe import Recipe
from mergeir.training.recipe import DEFAULT_DEEPSPEED
from mergeir.training.trainer import train_with_backend

app = make_app(__doc__)
R = Recipe()


class Backend(str, Enum):
    mergeir = "mergeir"
    tevatron = "tevatron"


class Precision(str, Enum):
    auto = "auto"
    fp32 = "fp32"
    fp16 = "fp16"
    bf16 = "bf16"


class WarmupType(str, Enum):
    log = "log"
    linear = "linear"


@app.command()
def main(
    model: Path = typer.Option(..., help="base retriever (Hugging Face folder, safetensors)"),
    train: Path = typer.Option(..., help="training file (Tevatron jsonl, from prepare_training.py)"),
    out: Path = typer.Option(..., help="adapter folder to create (peft adapter + provenance.json + train_log.jsonl)"),
    max_steps: int = typer.Option(..., help="optimizer steps (the paper's early-stopped values: docs/paper.md)"),
    backend: Backend = typer.Option(Backend.mergeir, help="mergeir (built-in loop) | tevatron (the authors' command)"),
    pooling: Pooling = typer.Option(Pooling.last, help="last (EOS appended) | mean | cls"),
    query_instruction: Optional[str] = typer.Option(
        None, help="query instruction [default: the training file's sidecar, i.e. the collection's]; '' for none"),
    query_prefix: Optional[str] = typer.Option(
        None, help="raw query prefix, replacing the formatted 'Instruct: ...\\nQuery: '"),
    authors_prefix: bool = typer.Option(
        False, help="prefix as the authors' shell passed it: literal backslash-n, no space (docs/paper.md, quirk 2)"),
    max_length: Optional[int] = typer.Option(None, help=f"max tokens of queries and passages [default: {R.query_max_length}]"),
    query_max_length: Optional[int] = typer.Option(None, help="max query tokens (overrides --max-length)"),
    passage_max_length: Optional[int] = typer.Option(None, help="max passage tokens (overrides --max-length)"),
    group_size: int = typer.Option(R.group_size, help="passages per query: 1 positive + hard negatives"),
    per_device_batch: int = typer.Option(R.per_device_batch, help="queries per micro-batch (in-batch negatives)"),
    grad_accum: int = typer.Option(R.grad_accum, help="micro-batches per optimizer step"),
    lr: float = typer.Option(R.lr, help="peak learning rate"),
    warmup_ratio: float = typer.Option(R.warmup_ratio, help="warm-up steps as a fraction of --max-steps"),
    warmup_type: WarmupType = typer.Option(WarmupType.log, help="WarmupDecayLR warm-up: log (DeepSpeed default) | linear"),
    temperature: float = typer.Option(R.temperature, help="InfoNCE temperature"),
    lora_r: int = typer.Option(R.lora_r, help="LoRA rank"),
    lora_alpha: int = typer.Option(R.lora_alpha, help="LoRA alpha"),
    lora_dropout: float = typer.Option(R.lora_dropout, help="LoRA dropout"),
    lora_target_modules: Optional[str] = typer.Option(
        None, help="comma-separated [default: q,k,v,o,gate,up,down projections; BERT: its attention/FFN linears]"),
    gradient_checkpointing: bool = typer.Option(R.gradient_checkpointing, help="recompute activations in backward"),
    precision: Precision = typer.Option(Precision.auto, help="auto: fp16 on a GPU, fp32 on CPU"),
    seed: int = typer.Option(R.seed, help="seeds LoRA init, query order and group sampling"),
    deepspeed: Optional[Path] = typer.Option(
        None, help=f"DeepSpeed config (e.g. {DEFAULT_DEEPSPEED.relative_to(DEFAULT_DEEPSPEED.parents[2])}); "
                   "required by --backend tevatron, which defaults to it"),
    device: str = typer.Option("auto", help="auto | cpu | cuda | cuda:N"),
    threads: Optional[int] = typer.Option(None, help="CPU threads for torch [default: torch's]"),
    progress: bool = typer.Option(True, help="progress bar on stderr"),
    allow_eval_split: bool = allow_eval_split_option(),
    force: bool = force_option(),
) -> None:
    """Train a LoRA adapter that `encode.py --adapter` loads."""
    if query_prefix is not None and authors_prefix:
        raise MergeirError("--query-prefix and --authors-prefix are exclusive")
    if threads is not None and threads < 1:
        raise MergeirError(f"--threads must be at least 1, got {threads}")
    length = max_length if max_length is not None else R.query_max_length
    recipe = Recipe(
        lora_r=lora_r, lora_alpha=lora_alpha, lora_dropout=lora_dropout,
        target_modules=tuple(t.strip() for t in lora_target_modules.split(",") if t.strip())
        if lora_target_modules else None,
        temperature=temperature, group_size=group_size, per_device_batch=per_device_batch, grad_accum=grad_accum,
        lr=lr, warmup_ratio=warmup_ratio, warmup_type=warmup_type.value,
        query_max_length=query_max_length or length, passage_max_length=passage_max_length or length,
        pooling=pooling.value, gradient_checkpointing=gradient_checkpointing, precision=precision.value, seed=seed,
    )
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
