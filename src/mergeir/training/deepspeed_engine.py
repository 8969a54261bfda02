"""The DeepSpeed side of the LoRA trainer: the config's "auto" values filled from the recipe as the HF Trainer
would for Tevatron, a one-process world unless a launcher set one up, the engine, and the ZeRO-3 gathering of
the partitioned LoRA weights before they are saved.
"""

from __future__ import annotations

import json
import os
import socket

from ..errors import MergeirError
from .recipe import Recipe


def resolve_deepspeed_config(config: dict, recipe: Recipe, max_steps: int, precision: str, world_size: int = 1,
                             hidden_size: int | None = None) -> dict:
    """Fill the "auto" values of a DeepSpeed config from the recipe, as the HF Trainer does for Tevatron."""
    cfg = json.loads(json.dumps(config))
    fills = {
        ("optimizer", "params", "lr"): recipe.lr,
        ("optimizer", "params", "betas"): list(recipe.adam_betas),
        ("optimizer", "params", "eps"): recipe.adam_eps,
        ("optimizer", "params", "weight_decay"): recipe.weight_decay,
        ("scheduler", "params", "warmup_min_lr"): 0.0,
        ("scheduler", "params", "warmup_max_lr"): recipe.lr,
        ("scheduler", "params", "warmup_num_steps"): recipe.warmup_steps(max_steps),
        ("scheduler", "params", "total_num_steps"): max_steps,
        ("scheduler", "params", "warmup_type"): recipe.warmup_type,
        ("gradient_accumulation_steps",): recipe.grad_accum,
        ("gradient_clipping",): recipe.max_grad_norm,
        ("train_micro_batch_size_per_gpu",): recipe.per_device_batch,
        ("train_batch_size",): recipe.per_device_batch * recipe.grad_accum * world_size,
        ("fp16", "enabled"): precision == "fp16",
        ("bf16", "enabled"): precision == "bf16",
    }
    if hidden_size:
        fills[("zero_optimization", "reduce_bucket_size")] = hidden_size * hidden_size
        fills[("zero_optimization", "stage3_prefetch_bucket_size")] = int(0.9 * hidden_size * hidden_size)
        fills[("zero_optimization", "stage3_param_persistence_threshold")] = 10 * hidden_size
    for path, value in fills.items():
        node = cfg
        for key in path[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
            if node is None:
                break
        if isinstance(node, dict) and node.get(path[-1], "auto") == "auto":
            node[path[-1]] = value
    left = _find_auto(cfg)
    if left:
        raise MergeirError(f"--deepspeed config: no value for \"auto\" at {left[0]}")
    return cfg


def _find_auto(node, where="") -> list[str]:
    if isinstance(node, dict):
        return [w for k, v in node.items() for w in _find_auto(v, f"{where}.{k}" if where else k)]
    return [where] if node == "auto" else []


def _single_process_env() -> None:
    """A one-process 'world' for torch.distributed unless a launcher already set one up."""
    if "MASTER_PORT" not in os.environ:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            os.environ["MASTER_PORT"] = str(s.getsockname()[1])
    for key, value in (("MASTER_ADDR", "127.0.0.1"), ("RANK", "0"), ("LOCAL_RANK", "0"), ("WORLD_SIZE", "1")):
        os.environ.setdefault(key, value)


def deepspeed_engine(model, config: dict):
    """A DeepSpeed engine over `model`'s trainable parameters; a config DeepSpeed rejects fails in one line."""
    try:
        import deepspeed
    except ImportError:
        raise MergeirError("--deepspeed needs the deepspeed package (pip install 'mergeir[train]')") from None
    _single_process_env()
    import torch.distributed as dist

    if not dist.is_initialized():
        from deepspeed.accelerator import get_accelerator

        deepspeed.init_distributed(dist_backend=get_accelerator().communication_backend_name(),
                                   auto_mpi_discovery=False)
    params = [p for p in model.parameters() if p.requires_grad]
    try:
        engine, _, _, _ = deepspeed.initialize(model=model, model_parameters=params, config=config)
    except (ValueError, TypeError, KeyError, AssertionError) as e:  # pydantic's ValidationError is a ValueError
        raise MergeirError(f"--deepspeed config rejected by DeepSpeed: {' '.join(str(e).split())[:300]}") from None
    return engine


def zero_stage(config: dict | None) -> int:
    return int(((config or {}).get("zero_optimization") or {}).get("stage", 0))


def gathered_lora_state(model) -> dict:
    """The LoRA weights of a ZeRO-3 model, gathered from their partitions onto the host."""
    from deepspeed.runtime.zero import GatheredParameters

    lora = [p for n, p in model.named_parameters() if "lora_" in n]
    with GatheredParameters(lora, modifier_rank=None):
        return {n: p.detach().cpu().clone() for n, p in model.named_parameters() if "lora_" in n}


def deepspeed_version() -> str:
    import deepspeed

    return deepspeed.__version__
