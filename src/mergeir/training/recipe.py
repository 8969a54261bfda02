"""The LoRA baseline's recipe: Tevatron's defaults as the authors ran them (docs/paper.md, "The LoRA baseline").

One dataclass so the trainer, the Tevatron command builder and provenance.json all read the same numbers.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

from ..errors import MergeirError

# Tevatron's `--lora_target_modules` default, in the order the authors' README passes it.
MISTRAL_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "down_proj", "up_proj", "gate_proj")
# BERT's attention and feed-forward linears. peft matches a name or a dotted suffix, so "output.dense"
# catches both attention.output.dense and the FFN's output.dense, and the unused pooler stays untouched.
BERT_TARGETS = ("query", "key", "value", "output.dense", "intermediate.dense")

_TARGETS_BY_MODEL_TYPE = {
    **{t: MISTRAL_TARGETS for t in ("mistral", "llama", "qwen2", "qwen3", "gemma", "gemma2", "mixtral")},
    **{t: BERT_TARGETS for t in ("bert", "roberta", "xlm-roberta", "camembert", "electra")},
}

# Tevatron's ZeRO-3 config as shipped with mergeir (conf/deepspeed/ds_zero3.json in the repository)
DEFAULT_DEEPSPEED = Path(__file__).resolve().parents[3] / "conf" / "deepspeed" / "ds_zero3.json"

POOLINGS = ("last", "mean", "cls")
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
WARMUP_TYPES = ("log", "linear")


@dataclass(frozen=True)
class Recipe:
    """Tevatron LoRA recipe. Defaults = the paper's (per_device_batch 4 x grad_accum 4 = 16 queries/step)."""

    lora_r: int = 16
    lora_alpha: int = 64
    lora_dropout: float = 0.1
    target_modules: tuple[str, ...] | None = None  # None: chosen from the model's config (see targets_for)
    temperature: float = 0.01
    group_size: int = 16  # 1 positive + 15 hard negatives per query
    per_device_batch: int = 4
    grad_accum: int = 4
    lr: float = 1e-4
    warmup_ratio: float = 0.1
    warmup_type: str = "log"  # DeepSpeed WarmupDecayLR's default, as in Tevatron's ZeRO-3 config
    weight_decay: float = 0.0  # HF TrainingArguments defaults, which fill DeepSpeed's "auto" values
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-8
    max_grad_norm: float = 1.0
    query_max_length: int = 512
    passage_max_length: int = 512
    pooling: str = "last"  # EOS pooling: BOS + text + EOS, last real token
    normalize: bool = True
    gradient_checkpointing: bool = True
    precision: str = "auto"  # fp16 on a GPU (the paper's --fp16), fp32 on CPU
    seed: int = 42  # HF TrainingArguments' default seed, which Tevatron's driver passes to set_seed
    query_prefix: str = ""
    passage_prefix: str = ""

    def __post_init__(self):
        checks = [
            (self.lora_r > 0, "--lora-r must be positive"),
            (self.lora_alpha > 0, "--lora-alpha must be positive"),
            (0.0 <= self.lora_dropout < 1.0, "--lora-dropout must be in [0, 1)"),
            (self.temperature > 0, "--temperature must be positive"),
            (self.group_size >= 1, "--group-size must be at least 1"),
            (self.per_device_batch >= 1, "--per-device-batch must be at least 1"),
            (self.grad_accum >= 1, "--grad-accum must be at least 1"),
            (self.lr > 0, "--lr must be positive"),
            (0.0 <= self.warmup_ratio <= 1.0, "--warmup-ratio must be in [0, 1]"),
            (self.warmup_type in WARMUP_TYPES, f"--warmup-type must be one of {', '.join(WARMUP_TYPES)}"),
            (self.query_max_length >= 2, "--max-length / --query-max-length must be at least 2"),
            (self.passage_max_length >= 2, "--max-length / --passage-max-length must be at least 2"),
            (self.pooling in POOLINGS, f"--pooling must be one of {', '.join(POOLINGS)}"),
            (self.precision in PRECISIONS, f"--precision must be one of {', '.join(PRECISIONS)}"),
        ]
        for ok, msg in checks:
            if not ok:
                raise MergeirError(msg)

    @property
    def queries_per_step(self) -> int:
        return self.per_device_batch * self.grad_accum

    def warmup_steps(self, max_steps: int) -> int:
        """HF TrainingArguments.get_warmup_steps: ceil(ratio x max_steps), which fills DeepSpeed's "auto"."""
        return math.ceil(self.warmup_ratio * max_steps)

    def replace(self, **changes) -> "Recipe":
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d["target_modules"] = list(self.target_modules) if self.target_modules else None
        d["adam_betas"] = list(self.adam_betas)
        return d


def targets_for(model_type: str, override: tuple[str, ...] | None = None) -> list[str]:
    """LoRA target modules: the override, else the paper's 7 projections (decoders) or BERT's linears."""
    if override:
        return list(override)
    try:
        return list(_TARGETS_BY_MODEL_TYPE[model_type])
    except KeyError:
        raise MergeirError(
            f"no default LoRA target modules for model_type {model_type!r}; pass --lora-target-modules"
        ) from None
