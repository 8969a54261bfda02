"""Contrastive LoRA fine-tuning of a retriever (Tevatron's recipe on peft), in a plain torch loop.

Per optimizer step: `grad_accum` micro-batches of `per_device_batch` queries; each query brings a group of
1 positive + (group_size - 1) hard negatives (sampling.py); the loss of a micro-batch is InfoNCE over all its
passages (loss.py); the step's loss is the mean of its micro-batches' losses. Queries and passages share the
encoder, pooled and normalised as mergeir.encoding does at evaluation, so the trained adapter is used the same way.
With `deepspeed_config` the same loop runs through a DeepSpeed engine (ZeRO-3 as the authors ran it), the
config's "auto" values filled from the recipe as the HF Trainer would.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..encoding.loading import check_max_length, check_model_dirs, load_encoder, resolve_device
from ..encoding.pooling import pool
from ..encoding.tokenization import format_query, tokenize
from ..errors import MergeirError
from ..io import read_json, sha256_file, write_json
from ..models.identity import base_identity
from ..provenance import tool_versions
from .adapter import LORA_STAGE, adapter_output
from .data import TrainingExample, read_sidecar, read_training_input
from .deepspeed_engine import (
    deepspeed_engine, deepspeed_version, gathered_lora_state, resolve_deepspeed_config, zero_stage,
)
from .loss import info_nce
from .recipe import Recipe, targets_for
from .sampling import sample_group
from .schedule import warmup_decay_lr
from .tevatron import authors_query_prefix, train_tevatron

__all__ = [
    "LOG_NAME", "LORA_STAGE", "TrainResult", "adapter_output", "base_identity", "build_group_batch", "encode",
    "group_loss", "lora_model", "micro_batches", "query_texts", "resolve_deepspeed_config", "train_lora",
    "train_with_backend",
]

LOG_NAME = "train_log.jsonl"


@dataclass
class TrainResult:
    out: Path
    losses: list[float]
    provenance: dict


# ---------------------------------------------------------------- batches


def query_texts(examples: Sequence[TrainingExample], *, instruction: str | None, prefix: str | None) -> list[str]:
    """Query strings as the model sees them: an explicit prefix + query, else `format_query` (instruction)."""
    if prefix is not None:
        return [prefix + e.query for e in examples]
    return [format_query(e.query, instruction) for e in examples]


def micro_batches(n: int, per_device_batch: int, seed: int):
    """Endless (epoch, [item, ...]) micro-batches: a seeded permutation per epoch, last batch possibly short
    (the HF Trainer's RandomSampler without drop_last)."""
    import torch

    epoch = 0
    while True:
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch)).tolist()
        for i in range(0, n, per_device_batch):
            yield epoch, perm[i : i + per_device_batch]
        epoch += 1


def build_group_batch(examples, queries: Sequence[str], items: Sequence[int], *, epoch: int, recipe: Recipe):
    """(query texts, passage texts) of one micro-batch, passages grouped per query, positive first."""
    q_texts, p_texts = [], []
    for item in items:
        pos, negs = sample_group(examples[item], recipe.group_size, item=item, epoch=epoch, seed=recipe.seed)
        q_texts.append(queries[item])
        p_texts.extend(recipe.passage_prefix + p.full_text for p in [pos, *negs])
    return q_texts, p_texts


def encode(forward, tokenizer, texts: Sequence[str], *, pooling: str, max_length: int, normalize: bool, device):
    """Pooled (and normalised) representations of `texts`, with gradients, via `forward` (model or engine)."""
    import torch.nn.functional as F

    batch = {k: v.to(device) for k, v in tokenize(tokenizer, texts, pooling, max_length).items()}
    hidden = forward(**batch).last_hidden_state
    reps = pool(hidden, batch["attention_mask"], pooling)
    return F.normalize(reps, p=2, dim=-1) if normalize else reps


def group_loss(forward, tokenizer, q_texts, p_texts, recipe: Recipe, device="cpu"):
    """InfoNCE of one micro-batch (in-batch negatives): the quantity the trainer minimises."""
    q = encode(forward, tokenizer, q_texts, pooling=recipe.pooling, max_length=recipe.query_max_length,
               normalize=recipe.normalize, device=device)
    p = encode(forward, tokenizer, p_texts, pooling=recipe.pooling, max_length=recipe.passage_max_length,
               normalize=recipe.normalize, device=device)
    return info_nce(q, p, recipe.temperature)


# ---------------------------------------------------------------- model


def lora_model(model, recipe: Recipe):
    """Wrap `model` with a trainable LoRA adapter (peft FEATURE_EXTRACTION, as Tevatron builds it).
    adapter_config.json's base_model_name_or_path is the model folder trained on (provenance.json adds its
    repo id and revision)."""
    import torch
    from peft import LoraConfig, TaskType, get_peft_model

    targets = targets_for(getattr(model.config, "model_type", ""), recipe.target_modules)
    names = [n for n, _ in model.named_modules()]
    for t in targets:
        if not any(n == t or n.endswith("." + t) for n in names):
            raise MergeirError(f"--lora-target-modules: no module named {t!r} in the model")
    config = LoraConfig(
        task_type=TaskType.FEATURE_EXTRACTION, r=recipe.lora_r, lora_alpha=recipe.lora_alpha,
        lora_dropout=recipe.lora_dropout, target_modules=targets, inference_mode=False,
    )
    if getattr(model.config, "use_cache", None):
        model.config.use_cache = False  # no KV cache while training (and none with gradient checkpointing)
    if recipe.gradient_checkpointing:
        # non-reentrant: works with frozen inputs (LoRA) without enable_input_require_grads
        if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.x name
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    torch.manual_seed(recipe.seed)  # LoRA A matrices are random: seed them
    return get_peft_model(model, config)


def _precision(recipe: Recipe, device) -> str:
    if recipe.precision == "auto":
        return "fp16" if device.type == "cuda" else "fp32"  # the paper's --fp16, only where it helps
    if recipe.precision != "fp32" and device.type != "cuda":
        raise MergeirError(f"--precision {recipe.precision} needs a GPU; use fp32 (or auto) on {device.type}")
    return recipe.precision


# ---------------------------------------------------------------- the loop


def train_lora(
    model_dir: str | Path,
    train_file: str | Path,
    out: str | Path,
    *,
    max_steps: int,
    recipe: Recipe = Recipe(),
    query_instruction: str | None = None,
    query_prefix: str | None = None,
    deepspeed_config: str | Path | None = None,
    device: str | None = None,
    progress: bool = True,
    allow_eval_split: bool = False,
    force: bool = False,
) -> TrainResult:
    """Train a LoRA adapter and write it to `out` (peft folder + provenance.json + train_log.jsonl).

    query_instruction None: the instruction recorded in the training file's sidecar (the collection's);
    "" : none. query_prefix, when given, replaces the formatted instruction (raw prefix + query).
    """
    data = read_training_input(train_file, max_steps=max_steps, query_instruction=query_instruction,
                               allow_eval_split=allow_eval_split)
    train_file, examples, sidecar, query_instruction = data.file, data.examples, data.sidecar, data.query_instruction
    for i, e in enumerate(examples):  # fail before loading any model
        sample_group(e, recipe.group_size, item=i, epoch=0, seed=recipe.seed)
    queries = query_texts(examples, instruction=query_instruction, prefix=query_prefix)

    check_model_dirs(model_dir)
    dev = resolve_device(device)
    precision = _precision(recipe, dev)
    ds_path = Path(deepspeed_config) if deepspeed_config is not None else None
    ds_raw = read_json(ds_path, "--deepspeed config") if ds_path is not None else None
    with adapter_output(out, model_dir, train_file, ds_path, force) as tmp:  # fails before the model is loaded
        losses, prov = _train(model_dir, tmp, examples, queries, recipe, max_steps, dev, precision, ds_path, ds_raw,
                              progress)
        prov.update({
            "train_file": {"path": str(train_file), "sha256": sha256_file(train_file), "sidecar": sidecar},
            "query_instruction": query_instruction,
            "query_prefix": query_prefix,
            "allow_eval_split": allow_eval_split,
            **base_identity(model_dir),
        })
        write_json(tmp / "provenance.json", dict(sorted(prov.items())))
    return TrainResult(Path(out), losses, prov)


def _train(model_dir, tmp: Path, examples, queries, recipe: Recipe, max_steps: int, dev, precision: str,
           ds_path: Path | None, ds_raw: dict | None, progress: bool) -> tuple[list[float], dict]:
    """The loop proper: load, wrap with LoRA, train, save the adapter and the log into `tmp`."""
    import torch

    torch.manual_seed(recipe.seed)
    base, tokenizer = load_encoder(model_dir, None, "float32", str(dev))
    for n in {recipe.query_max_length, recipe.passage_max_length}:
        check_max_length(base, n)
    model = lora_model(base, recipe)
    model.train()

    ds_config = None
    if ds_raw is not None:
        ds_config = resolve_deepspeed_config(ds_raw, recipe, max_steps, precision,
                                             hidden_size=getattr(base.config, "hidden_size", None))
        engine = deepspeed_engine(model, ds_config)
        forward, optimizer, scheduler, scaler = engine, None, None, None
    else:
        engine = None
        forward = model
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=recipe.lr, betas=recipe.adam_betas, eps=recipe.adam_eps,
                                      weight_decay=recipe.weight_decay)
        scheduler = warmup_decay_lr(optimizer, recipe.warmup_steps(max_steps), max_steps, recipe.warmup_type)
        scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None
    autocast_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision)

    from tqdm.auto import tqdm

    losses: list[float] = []
    stream = micro_batches(len(examples), recipe.per_device_batch, recipe.seed)
    start = time.monotonic()
    log = open(tmp / LOG_NAME, "w", encoding="utf-8")
    bar = tqdm(total=max_steps, desc="lora", unit="step", file=sys.stderr, disable=not progress)
    try:
        for step in range(1, max_steps + 1):
            lr = engine.get_lr()[0] if engine is not None else optimizer.param_groups[0]["lr"]
            micro, epoch, n_queries = [], 0, 0
            for _ in range(recipe.grad_accum):
                epoch, items = next(stream)
                q_texts, p_texts = build_group_batch(examples, queries, items, epoch=epoch, recipe=recipe)
                with torch.autocast(dev.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
                    loss = group_loss(forward, tokenizer, q_texts, p_texts, recipe, dev)
                if engine is not None:
                    engine.backward(loss)  # DeepSpeed scales by 1/grad_accum itself
                    engine.step()  # steps the optimizer and scheduler at the accumulation boundary
                elif scaler is not None:
                    scaler.scale(loss / recipe.grad_accum).backward()
                else:
                    (loss / recipe.grad_accum).backward()
                micro.append(float(loss.detach()))
                n_queries += len(items)
            grad_norm = None
            if engine is None:
                if scaler is not None:
                    scaler.unscale_(optimizer)
                grad_norm = float(torch.nn.utils.clip_grad_norm_(
                    [p for g in optimizer.param_groups for p in g["params"]], recipe.max_grad_norm))
                if scaler is not None:
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                scheduler.step()
            step_loss = sum(micro) / len(micro)
            if step_loss != step_loss:  # NaN: stop rather than save a broken adapter
                raise MergeirError(f"loss became NaN at step {step}; try a lower --lr")
            losses.append(step_loss)
            row = {"step": step, "loss": step_loss, "lr": lr, "epoch": epoch, "queries": n_queries,
                   "grad_norm": grad_norm, "elapsed_s": round(time.monotonic() - start, 3)}
            log.write(json.dumps(row) + "\n")
            log.flush()
            bar.update(1)
            bar.set_postfix(loss=f"{step_loss:.4f}")
    finally:
        bar.close()
        log.close()
    _save_adapter(model, tmp, zero3=engine is not None and zero_stage(ds_config) == 3)
    prov = {
        "kind": "lora-adapter",
        "backend": "mergeir",
        "max_steps": max_steps,
        "recipe": recipe.to_json(),
        "target_modules": sorted(model.peft_config["default"].target_modules),
        "query_example": queries[0],
        "precision": precision,
        "device": dev.type,
        "deepspeed": None if ds_path is None else {
            "config": str(ds_path), "sha256": sha256_file(ds_path), "resolved": ds_config},
        "final_loss": losses[-1],
        "tool_versions": _tool_versions(engine is not None),
    }
    return losses, prov


def _save_adapter(model, folder: Path, zero3: bool) -> None:
    """peft's adapter_config.json + adapter_model.safetensors; under ZeRO-3 the LoRA weights are partitioned,
    so they are gathered first."""
    if zero3:
        model.save_pretrained(str(folder), safe_serialization=True, state_dict=gathered_lora_state(model))
    else:
        model.save_pretrained(str(folder), safe_serialization=True)
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        if not (folder / name).is_file():  # pragma: no cover - peft changed its file names
            raise MergeirError(f"peft did not write {name}")
    readme = folder / "README.md"  # peft's model-card template: nothing of ours, and it names no inputs
    if readme.is_file():
        readme.unlink()


def _tool_versions(with_deepspeed: bool) -> dict:
    v = tool_versions()
    if with_deepspeed:
        v["deepspeed"] = deepspeed_version()
    return v


def train_with_backend(backend: str, model_dir, train_file, out, *, max_steps: int, recipe: Recipe,
                       query_instruction: str | None = None, query_prefix: str | None = None,
                       authors_prefix: bool = False, deepspeed_config=None, device: str | None = None,
                       progress: bool = True, allow_eval_split: bool = False, force: bool = False) -> TrainResult:
    """`lora_train.py`'s one call: the built-in loop, or the authors' Tevatron command."""
    if backend == "tevatron":
        data = read_training_input(train_file, max_steps=max_steps, query_instruction=query_instruction,
                                   allow_eval_split=allow_eval_split)
        losses = train_tevatron(model_dir, data, out, max_steps=max_steps, recipe=recipe, query_prefix=query_prefix,
                                deepspeed_config=deepspeed_config, force=force)
        return TrainResult(Path(out), losses, read_json(Path(out) / "provenance.json"))
    if backend != "mergeir":
        raise MergeirError(f"unknown --backend {backend!r} (mergeir | tevatron)")
    if authors_prefix:
        if query_instruction is None:
            query_instruction = (read_sidecar(train_file) or {}).get("query_instruction")
        query_prefix = authors_query_prefix(query_instruction or None)
    return train_lora(model_dir, train_file, out, max_steps=max_steps, recipe=recipe,
                      query_instruction=query_instruction, query_prefix=query_prefix,
                      deepspeed_config=deepspeed_config, device=device, progress=progress,
                      allow_eval_split=allow_eval_split, force=force)
