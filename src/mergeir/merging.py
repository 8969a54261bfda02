"""Layer-wise merging of a source retriever with a domain model: mergekit on one key layout, verified, and an
in-memory α sweep for the grid search (mergeir.alphasweep).

α is the weight of the SOURCE model (1.0 = pure source). Layers [0, K) get alpha_lower, [K, n) alpha_upper (K
defaults to n // 2). As in mergekit, weights before the first layer (the input embeddings) take the first slice's
α and weights after the last (final norm, lm_head, BERT pooler) the last slice's; the paper then restores the
source's own input embeddings, so the evaluated model is: source embeddings, layers mixed per half, final norm
mixed with alpha_upper (docs/paper.md, "Merging").

This module is the merge stage; its parts, re-exported here under the names callers import from
`mergeir.merging`: the slices and mix arithmetic (`mixing`), mergekit's configuration, layout views and run
(`mergekit_run`), the verified write of the merged weights (`merged_weights`), the sweep (`alphasweep`).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from .alphas import check_alpha
from .alphasweep import AlphaSweep
from .checkpoints import Checkpoint, check_compatible, open_checkpoint
from .dtypes import check_dtype
from .errors import MergeirError
from .io import Stage, atomic_dir, atomic_write_text, scratch_dir, write_json
from .merged_weights import CLOSED_FORM, SHARD_BYTES, VERIFY_ALL_BELOW_BYTES, write_merged
from .mergekit_run import (
    MERGEKIT_ARCH, METHOD_HELP, METHODS, NEEDS_BASE, NEEDS_DENSITY, config_yaml, mergekit_config, run_mergekit,
    write_view,
)
from .mixing import Slice, all_finite, alpha_for, linear_mix, make_slices
from .provenance import tool_versions

__all__ = [
    "AlphaSweep", "CLOSED_FORM", "MERGEKIT_ARCH", "MERGE_STAGE", "METHODS", "METHOD_HELP", "NEEDS_BASE",
    "NEEDS_DENSITY", "SHARD_BYTES", "Slice", "VERIFY_ALL_BELOW_BYTES", "all_finite", "alpha_for", "check_alpha",
    "linear_mix", "make_slices", "merge", "mergekit_config", "run_mergekit", "write_merged", "write_view",
]

MERGE_STAGE = Stage("merge", "provenance.json")  # a merged model's provenance.json says "stage": "merge"
# source files copied next to the merged weights: tokenizer, generation and sentence-transformers configs
_NOT_COPIED = ("config.json", "provenance.json", "model.safetensors.index.json", "README.md")


def merge(source: str | os.PathLike, domain: str | os.PathLike, out: str | os.PathLike, *, alpha_lower: float,
          alpha_upper: float, method: str = "linear", dtype: str = "float16", split_layer: int | None = None,
          restore_source_embeddings: bool = True, base: str | os.PathLike | None = None, density: float = 0.5,
          seed: int = 0, device: str = "cpu", verify_all_below: int = VERIFY_ALL_BELOW_BYTES, force: bool = False) -> dict:
    """Merge `domain` into `source` layer-wise with mergekit and write a transformers model to `out` in the source's
    layout, with the source's tokenizer, `mergekit_config.yml` and `provenance.json`. Returns the provenance.

    Every input is checked before any work; a failed merge or verification leaves nothing under `out`.
    """
    alpha_lower = check_alpha(alpha_lower, "--alpha-lower")
    alpha_upper = check_alpha(alpha_upper, "--alpha-upper")
    _check_options(method, dtype, density)
    src, dom, bse = _open_inputs(source, domain, base, method)
    k = src.num_layers // 2 if split_layer is None else split_layer
    slices = make_slices(src.num_layers, k, alpha_lower, alpha_upper)
    out = Path(out)
    hide = ["lm_head.weight"] if "lm_head.weight" not in src.mergeable() else []

    inputs = {"--source": source, "--domain": domain, "--base": base}
    if any(c in str(out.resolve().parent) for c in "@+"):  # mergekit reads them as model@revision / model+lora
        raise MergeirError(f"--out {out}: mergekit cannot read model paths containing '@' or '+'; choose a folder "
                           "without them")
    # the layout views (re-keyed copies of both checkpoints) sit beside --out, named with their owner so the next
    # merge there removes those a killed run left
    with atomic_dir(out, stage=MERGE_STAGE, inputs=inputs, force=force) as tmp, \
            scratch_dir(out.parent, ".mergeir-views-") as work:
        views = {"source": write_view(src, work / "source")}
        views["domain"] = write_view(dom, work / "domain", hide=hide)
        if bse is not None:
            views["base"] = write_view(bse, work / "base", hide=hide)
        cfg = mergekit_config(method, slices, str(views["source"]), str(views["domain"]),
                              str(views["base"]) if bse is not None else None, dtype, density)
        run_mergekit(cfg, work / "merged", seed=seed, device=device)
        record = write_merged(work / "merged", tmp, src, dom, method=method, slices=slices, dtype=dtype,
                              restore=restore_source_embeddings, base=bse, verify_all_below=verify_all_below)
        shown = {"source": src, "domain": dom, "base": bse}
        names = {str(view): str(shown[role].path.resolve()) for role, view in views.items()}
        atomic_write_text(tmp / "mergekit_config.yml", config_yaml(cfg, names))
        _copy_source_files(src.path, tmp)
        _write_config(src, tmp, dtype)
        provenance = {
            "stage": MERGE_STAGE.name,
            "method": method,
            "alpha_lower": alpha_lower,
            "alpha_upper": alpha_upper,
            "split_layer": k,
            "num_layers": src.num_layers,
            "slices": [{"layers": [s.start, s.end], "alpha": s.alpha} for s in slices],
            "dtype": dtype,
            "restore_source_embeddings": restore_source_embeddings,
            "density": density if method in NEEDS_DENSITY else None,
            "seed": seed,
            "evaluated_model": _evaluated(src.family, slices, restore_source_embeddings, method),
            "inputs": {role: ckpt.input_record() for role, ckpt in shown.items() if ckpt is not None},
            "layouts": {"source": src.layout.name, "domain": dom.layout.name,
                        "mergekit_view": MERGEKIT_ARCH[src.family], "output": src.layout.name},
            **record,
            "tools": tool_versions(),
        }
        write_json(tmp / "provenance.json", provenance)
    src.close()
    dom.close()
    return provenance


def _check_options(method: str, dtype: str, density: float) -> None:
    if method not in METHODS:
        raise MergeirError(f"--method must be one of {', '.join(METHODS)}, got {method!r}")
    check_dtype(dtype)  # without importing torch: bad inputs fail in a second
    if method in NEEDS_DENSITY and not 0.0 < density <= 1.0:
        raise MergeirError(f"--density must be within (0, 1], got {density}")


def _open_inputs(source, domain, base, method: str) -> tuple[Checkpoint, Checkpoint, Checkpoint | None]:
    """(source, domain, base or None), each checked mergeable with the source; --base only where the method uses it."""
    src = open_checkpoint(source, "--source")
    dom = open_checkpoint(domain, "--domain")
    check_compatible(src, dom)
    if method not in NEEDS_BASE:
        if base is not None:
            raise MergeirError(f"--base is only used by {', '.join(NEEDS_BASE)}, not --method {method}")
        return src, dom, None
    if base is None:
        raise MergeirError(f"--method {method} needs --base (the common ancestor of source and domain)")
    bse = open_checkpoint(base, "--base")
    check_compatible(src, bse)
    return src, dom, bse


def _write_config(src: Checkpoint, dest: Path, dtype: str) -> None:
    """The source's config.json with the merge dtype."""
    config = dict(src.config)
    config["dtype"] = dtype
    if "torch_dtype" in config:
        config["torch_dtype"] = dtype
    atomic_write_text(dest / "config.json", json.dumps(config, indent=2, sort_keys=True) + "\n")


def _evaluated(family: str, slices: list[Slice], restore: bool, method: str) -> str:
    if method != "linear":
        return f"{method} merge per slice; input embeddings {'of the source' if restore else 'merged'}"
    emb = "source input embeddings" if restore else f"input embeddings mixed with alpha={slices[0].alpha}"
    parts = [f"layers [{s.start},{s.end}) alpha={s.alpha}" for s in slices]
    return f"{emb}; {'; '.join(parts)}; final weights (norm{'/pooler' if family == 'bert' else ''}) alpha={slices[-1].alpha}"


def _copy_source_files(src: Path, dest: Path) -> None:
    """Tokenizer, generation config and sentence-transformers modules of the source, so the output encodes alike."""
    for p in sorted(src.rglob("*")):
        rel = p.relative_to(src)
        if not p.is_file() or any(part.startswith(".") for part in rel.parts):
            continue
        if rel.as_posix() in _NOT_COPIED or rel.suffix in (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".pkl"):
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(p, dest / rel)
