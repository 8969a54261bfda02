"""The authors' Tevatron command (`deepspeed ... --module tevatron.retriever.driver.train`), built and run.

Flags and their order follow the authors' README (tyamamot/modelmerge-for-ir @ 6a1da1d); flags whose value
equals Tevatron's own default (LoRA r/alpha/dropout, seed) are only added when the recipe changes them, so the
paper's settings give the paper's command line exactly. Modern Tevatron is not on PyPI: it installs from
github.com/texttron/tevatron; without it `run_tevatron` raises one clear error.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

from ..errors import MergeirError
from ..io import read_json, sha256_file, write_json
from ..models.identity import base_identity
from ..provenance import tool_versions
from .adapter import adapter_output
from .data import TrainingInput
from .recipe import DEFAULT_DEEPSPEED, MISTRAL_TARGETS, Recipe

# The recipe fields the authors left at Tevatron's ModelArguments / HF TrainingArguments defaults, which are the
# Recipe's defaults: the flag is only passed when a recipe changes the value.
_LEFT_AT_TEVATRON_DEFAULT = ("lora_r", "lora_alpha", "lora_dropout", "seed")
_POOLING = {"last": "eos", "mean": "mean", "cls": "cls"}


def authors_query_prefix(instruction: str | None) -> str:
    """The prefix exactly as the authors' shell passed it (docs/paper.md, quirk 2): a literal backslash-n and no
    space after `Query:` — not the real newline used at evaluation."""
    if not instruction:
        return ""
    return f"Instruct: {instruction}\\nQuery:"


def tevatron_available() -> bool:
    try:
        return importlib.util.find_spec("tevatron.retriever") is not None
    except ModuleNotFoundError:  # no `tevatron` package at all
        return False


def deepspeed_launcher() -> str:
    """The `deepspeed` launcher script: the one beside this Python, else the one on PATH."""
    here = Path(sys.executable).with_name("deepspeed")
    return str(here) if here.exists() else (shutil.which("deepspeed") or "deepspeed")


def tevatron_command(
    *,
    model: str,
    train_file: str,
    out: str,
    max_steps: int,
    deepspeed_config: str,
    query_prefix: str,
    recipe: Recipe = Recipe(),
    fp16: bool = True,
    bf16: bool = False,
    num_train_epochs: int = 1,
    save_steps: int = 1000,
    include: str = "localhost:0",
    launcher: str = "deepspeed",
) -> list[str]:
    """argv of the authors' training command for this recipe (README "LoRA Fine-tuning on NFCorpus")."""
    targets = ",".join(recipe.target_modules or MISTRAL_TARGETS)
    argv = [
        launcher, "--include", include, "--module", "tevatron.retriever.driver.train",
        "--deepspeed", deepspeed_config,
        "--output_dir", out,
        "--model_name_or_path", model,
        "--lora",
        "--lora_target_modules", targets,
        "--save_steps", str(save_steps),
        "--dataset_path", train_file,
        "--query_prefix", query_prefix,
    ]
    if recipe.passage_prefix:
        argv += ["--passage_prefix", recipe.passage_prefix]
    if fp16:
        argv.append("--fp16")
    if bf16:
        argv.append("--bf16")
    argv += ["--pooling", _POOLING[recipe.pooling]]
    if recipe.pooling == "last":
        argv.append("--append_eos_token")
    if recipe.normalize:
        argv.append("--normalize")
    argv += [
        "--temperature", _num(recipe.temperature),
        "--per_device_train_batch_size", str(recipe.per_device_batch),
    ]
    if recipe.gradient_checkpointing:
        argv.append("--gradient_checkpointing")
    argv += [
        "--train_group_size", str(recipe.group_size),
        "--learning_rate", _num(recipe.lr),
        "--query_max_len", str(recipe.query_max_length),
        "--passage_max_len", str(recipe.passage_max_length),
        "--max_steps", str(max_steps),
        "--num_train_epochs", str(num_train_epochs),
        "--logging_steps", "1",
        "--overwrite_output_dir",
        "--warmup_ratio", _num(recipe.warmup_ratio),
        "--gradient_accumulation_steps", str(recipe.grad_accum),
    ]
    paper = Recipe()
    for key in _LEFT_AT_TEVATRON_DEFAULT:
        value = getattr(recipe, key)
        if value != getattr(paper, key):
            argv += [f"--{key}", _num(value)]
    return argv


def _num(x) -> str:
    """Numbers as the authors typed them: 0.01, 1e-4, 0.1."""
    if isinstance(x, int):
        return str(x)
    if x != 0 and abs(x) < 1e-3:
        return f"{x:.0e}".replace("e-0", "e-")
    return repr(x)


def require_tevatron() -> None:
    if not tevatron_available():
        raise MergeirError(
            "--backend tevatron needs tevatron.retriever, which is not importable here (PyPI's `tevatron` is a "
            "2022 release without it); install it from github.com/texttron/tevatron or use --backend mergeir"
        )


def run_tevatron(argv: list[str], *, log_path: Path | None = None) -> None:
    """Run the command; Tevatron's own output goes to the terminal, or to log_path when given."""
    require_tevatron()
    env = dict(os.environ)
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        if log_path is None:
            proc = subprocess.run(argv, env=env)
        else:
            with open(log_path, "w") as log:
                proc = subprocess.run(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    except FileNotFoundError:
        raise MergeirError(f"cannot run {argv[0]!r}: the deepspeed launcher is not installed") from None
    if proc.returncode != 0:
        where = f"; see {log_path}" if log_path else ""
        raise MergeirError(f"tevatron.retriever.driver.train exited with status {proc.returncode}{where}")


def _precision_flags(recipe: Recipe) -> tuple[bool, bool]:
    """(fp16, bf16): the paper's --fp16 where a GPU is present, nothing on CPU."""
    if recipe.precision == "auto":
        import torch

        return torch.cuda.is_available(), False
    return recipe.precision == "fp16", recipe.precision == "bf16"


def train_tevatron(
    model_dir: str | Path,
    data: TrainingInput,
    out: str | Path,
    *,
    max_steps: int,
    recipe: Recipe = Recipe(),
    query_prefix: str | None = None,
    deepspeed_config: str | Path | None = None,
    force: bool = False,
) -> list[float]:
    """Run the authors' Tevatron command into `out` (atomically) and add provenance.json + train_log.jsonl.

    data: read_training_input's checked file. The query prefix defaults to the authors' literal form of the
    instruction (quirk 2). Returns the per-step losses Tevatron logged."""
    require_tevatron()
    train_file, sidecar = data.file, data.sidecar
    prefix = query_prefix if query_prefix is not None else authors_query_prefix(data.query_instruction)
    ds = Path(deepspeed_config) if deepspeed_config is not None else DEFAULT_DEEPSPEED
    read_json(ds, "--deepspeed config")
    fp16, bf16 = _precision_flags(recipe)
    with adapter_output(out, model_dir, train_file, ds, force) as tmp:
        argv = tevatron_command(
            model=str(model_dir), train_file=str(train_file), out=str(tmp), max_steps=max_steps,
            deepspeed_config=str(ds), query_prefix=prefix, recipe=recipe, fp16=fp16, bf16=bf16,
            launcher=deepspeed_launcher(),
        )
        run_tevatron(argv, log_path=tmp / "tevatron.log")
        for name in ("adapter_config.json", "adapter_model.safetensors"):
            if not (tmp / name).is_file():
                raise MergeirError(f"Tevatron finished but wrote no {name}; see its log")
        losses = _tevatron_losses(tmp)
        (tmp / "train_log.jsonl").write_text(
            "".join(f'{{"step": {i}, "loss": {v!r}}}\n' for i, v in enumerate(losses, 1)), encoding="utf-8")
        write_json(tmp / "provenance.json", {
            "kind": "lora-adapter",
            "backend": "tevatron",
            "command": [str(out) if a == str(tmp) else a for a in argv],
            **base_identity(model_dir),
            "allow_eval_split": data.allow_eval_split,
            "train_file": {"path": str(train_file), "sha256": sha256_file(train_file), "sidecar": sidecar},
            "max_steps": max_steps,
            "recipe": recipe.to_json(),
            "query_instruction": data.query_instruction,
            "query_prefix": prefix,
            "deepspeed": {"config": str(ds), "sha256": sha256_file(ds)},
            "final_loss": losses[-1] if losses else None,
            "tool_versions": tool_versions(),
        })
    return losses


def _tevatron_losses(folder: Path) -> list[float]:
    """Per-step losses from the HF Trainer's trainer_state.json (logging_steps 1), if it wrote one."""
    state = folder / "trainer_state.json"
    if not state.is_file():
        return []
    hist = read_json(state, "trainer state").get("log_history", [])
    return [float(h["loss"]) for h in hist if "loss" in h]
