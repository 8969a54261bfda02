"""The LoRA baseline's recipe: Tevatron's defaults as the authors ran them (docs/paper.md, "The LoRA baseline").

`Recipe` is the one definition of the recipe, as Tevatron's argument dataclasses are its command line: each
field's default, help and check live here, and from them come `lora_train.py`'s options (mergeir.cli.
recipe_options), the reader of an experiment file's `lora:` section and of `--recipe FILE` (`from_mapping`),
the Tevatron command line and provenance.json's record.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import MergeirError
from ..io import read_json

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


def _at_least(n):
    return lambda v: v >= n, f"must be >= {n}"


_POSITIVE = (lambda v: v > 0, "must be > 0")
_NON_NEGATIVE = (lambda v: v >= 0, "must be >= 0")
_DROPOUT = (lambda v: 0 <= v < 1, "must be in [0, 1)")
_RATIO = (lambda v: 0 <= v <= 1, "must be in [0, 1]")
_BETAS = (lambda v: all(0 <= b < 1 for b in v), "must each be in [0, 1)")


def _param(default, help: str, *, check=None, choices=None, flag: str | None = None):
    """A recipe field: its default, its option's help, and the check every reader applies (one place)."""
    return field(default=default, metadata={"help": help, "check": check, "choices": choices, "flag": flag})


@dataclass(frozen=True)
class Recipe:
    """Tevatron LoRA recipe. Defaults = the paper's (per_device_batch 4 x grad_accum 4 = 16 queries/step)."""

    lora_r: int = _param(16, "LoRA rank", check=_at_least(1))
    lora_alpha: int = _param(64, "LoRA alpha", check=_at_least(1))
    lora_dropout: float = _param(0.1, "LoRA dropout", check=_DROPOUT)
    target_modules: tuple[str, ...] | None = _param(
        None, "comma-separated module names [default: q,k,v,o,gate,up,down projections; BERT: its attention/FFN "
              "linears]", flag="--lora-target-modules")
    temperature: float = _param(0.01, "InfoNCE temperature", check=_POSITIVE)
    group_size: int = _param(16, "passages per query: 1 positive + hard negatives", check=_at_least(1))
    per_device_batch: int = _param(4, "queries per micro-batch (in-batch negatives)", check=_at_least(1))
    grad_accum: int = _param(4, "micro-batches per optimizer step", check=_at_least(1))
    lr: float = _param(1e-4, "peak learning rate", check=_POSITIVE)
    warmup_ratio: float = _param(0.1, "warm-up steps as a fraction of --max-steps", check=_RATIO)
    # DeepSpeed WarmupDecayLR's default, as in Tevatron's ZeRO-3 config
    warmup_type: str = _param("log", "WarmupDecayLR warm-up", choices=WARMUP_TYPES)
    # HF TrainingArguments' defaults, which fill DeepSpeed's "auto" values
    weight_decay: float = _param(0.0, "AdamW weight decay", check=_NON_NEGATIVE)
    adam_betas: tuple[float, float] = _param((0.9, 0.999), "AdamW betas, comma-separated", check=_BETAS)
    adam_eps: float = _param(1e-8, "AdamW epsilon", check=_POSITIVE)
    max_grad_norm: float = _param(1.0, "gradient clipping norm", check=_POSITIVE)
    query_max_length: int = _param(512, "max query tokens", check=_at_least(2))
    passage_max_length: int = _param(512, "max passage tokens", check=_at_least(2))
    pooling: str = _param("last", "one vector per text: the last real token (EOS appended), the mean, or [CLS]",
                          choices=POOLINGS)
    normalize: bool = _param(True, "L2-normalise the representations")
    gradient_checkpointing: bool = _param(True, "recompute activations in backward")
    precision: str = _param("auto", "auto: fp16 on a GPU (the paper's --fp16), fp32 on CPU", choices=PRECISIONS)
    # HF TrainingArguments' default seed, which Tevatron's driver passes to set_seed
    seed: int = _param(42, "seeds LoRA init, query order and group sampling")
    passage_prefix: str = _param("", "text put before every passage")

    def __post_init__(self):
        for f in dataclasses.fields(self):
            problem = field_problem(f.name, getattr(self, f.name))
            if problem:
                raise MergeirError(f"{option_flag(f.name)} {problem}")

    @property
    def queries_per_step(self) -> int:
        return self.per_device_batch * self.grad_accum

    def warmup_steps(self, max_steps: int) -> int:
        """HF TrainingArguments.get_warmup_steps: ceil(ratio x max_steps), which fills DeepSpeed's "auto"."""
        return math.ceil(self.warmup_ratio * max_steps)

    def replace(self, **changes) -> "Recipe":
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict:
        """The recipe as JSON values (tuples as lists): provenance.json's `recipe`, what `--recipe` reads."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_mapping(cls, values: dict, fail: Callable[[str, str], Any], base: "Recipe | None" = None,
                     extra: tuple[str, ...] = ()) -> "Recipe":
        """A recipe from JSON/YAML values over `base` (default: the paper's); `fail(key, message)` reports the
        first wrong key (unknown, wrong type, out of range). Keys in `extra` belong to the caller: skipped."""
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(values) - set(known) - set(extra), key=str)
        if unknown:
            fail("", f"unknown keys {unknown} (known: {', '.join(known + list(extra))})")
        changes = {}
        for name in known:
            if name in values:
                value = _from_json(name, values[name], fail)
                problem = field_problem(name, value)
                if problem:
                    fail(name, problem)
                changes[name] = value
        return (base or cls()).replace(**changes)

    @classmethod
    def read(cls, path: str | Path, base: "Recipe | None" = None) -> "Recipe":
        """`--recipe FILE`: a JSON object of recipe fields, or an adapter's provenance.json (its `recipe`)."""
        data = read_json(Path(path), "--recipe file")
        if not isinstance(data, dict):
            raise MergeirError(f"{path}: a recipe file holds a JSON object of recipe fields")
        if data.get("kind") == "lora-adapter" and isinstance(data.get("recipe"), dict):
            data = {k: v for k, v in data["recipe"].items() if RETIRED.get(k, object()) != v}

        def fail(key, message):
            raise MergeirError(f"{path}: {key + ': ' if key else ''}{message}")

        return cls.from_mapping(data, fail, base)


# Fields that adapters made by older mergeir recorded, with the one value they could hold: `query_prefix` was
# always "" and never read (the prefix is lora_train.py's --query-instruction / --query-prefix). Any other value
# was not written by mergeir and is refused as an unknown key.
RETIRED = {"query_prefix": ""}


def option_flag(name: str) -> str:
    """A recipe field's command-line option: --lora-r, --group-size, ... (--lora-target-modules)."""
    return RECIPE_FIELDS[name].metadata["flag"] or "--" + name.replace("_", "-")


def field_problem(name: str, value) -> str | None:
    """What is wrong with a (typed) value of a recipe field, or None."""
    meta = RECIPE_FIELDS[name].metadata
    if meta["choices"] is not None and value not in meta["choices"]:
        return f"{value!r} is not one of {', '.join(meta['choices'])}"
    if meta["check"] is not None and value is not None and not meta["check"][0](value):
        return f"{meta['check'][1]}, got {value!r}"
    return None


def field_type(name: str):
    """A field's value type: int, float, str, bool, or the element type of a tuple field (as tuple[t])."""
    hint = RECIPE_TYPES[name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) is tuple:
        return tuple, args[0]
    if args and typing.get_origin(args[0]) is tuple:  # tuple[...] | None
        return tuple, typing.get_args(args[0])[0]
    return hint, None


def _from_json(name: str, value, fail):
    """A JSON/YAML value as the field's type; booleans are never numbers, lists become tuples."""
    kind, element = field_type(name)
    default = RECIPE_FIELDS[name].default
    if kind is tuple:
        if value is None and default is None:
            return None
        size = len(default) if isinstance(default, tuple) else None
        if (not isinstance(value, list) or not value or (size and len(value) != size)
                or not all(_is(x, element) for x in value) or (element is str and not all(value))):
            what = f"a list of {size} numbers" if size else "a non-empty list of module names"
            fail(name, f"expected {what}, got {value!r}")
        return tuple(element(x) for x in value)
    if not _is(value, kind):
        fail(name, f"expected {kind.__name__}, got {value!r}")
    return kind(value)


def _is(value, kind) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    accepted = (int, float) if kind is float else (kind,)
    return isinstance(value, accepted) and not isinstance(value, bool)


RECIPE_FIELDS = {f.name: f for f in dataclasses.fields(Recipe)}
RECIPE_TYPES = typing.get_type_hints(Recipe)


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
