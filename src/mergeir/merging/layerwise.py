"""The merge stage: a source retriever merged layer-wise with a domain model by mergekit on one key layout,
verified, and written atomically in the source's layout (bin/merge.py).

α is the weight of the SOURCE model (1.0 = pure source). Layers [0, K) get alpha_lower, [K, n) alpha_upper (K
defaults to n // 2). As in mergekit, weights before the first layer (the input embeddings) take the first slice's
α and weights after the last (final norm, lm_head, BERT pooler) the last slice's; the paper then restores the
source's own input embeddings, so the evaluated model is: source embeddings, layers mixed per half, final norm
mixed with alpha_upper (docs/paper.md, "Merging").

Its parts: the slices and mix arithmetic (`mixing`), mergekit's configuration, layout views and run
(`mergekit_run`), the verified write of the merged weights (`merged_weights`). The in-memory α sweep over the same
arithmetic is mergeir.sweep's.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from ..encoding.sentence_transformers import plan_export
from ..errors import MergeirError
from ..io import Stage, atomic_dir, atomic_write_text, scratch_dir, write_json
from ..models.checkpoints import Checkpoint, check_compatible, open_checkpoint
from ..models.dtypes import check_dtype
from ..provenance import tool_versions
from .alphas import check_alpha
from .merged_weights import VERIFY_ALL_BELOW_BYTES, write_merged
from .mergekit_run import (MERGEKIT_ARCH, METHODS, NEEDS_BASE, NEEDS_DENSITY, config_yaml, mergekit_config,
                           run_mergekit, write_view)
from .mixing import Slice, group_bounds, make_slices, profile_slices
from .profiles import parse_profile

MERGE_STAGE = Stage("merge", "provenance.json")  # a merged model's provenance.json says "stage": "merge"
# source files copied next to the merged weights: tokenizer, generation and sentence-transformers configs
_NOT_COPIED = ("config.json", "provenance.json", "model.safetensors.index.json", "README.md")


def merge(source: str | os.PathLike, domain: str | os.PathLike, out: str | os.PathLike, *,
          alpha_lower: float | None = None, alpha_upper: float | None = None, profile=None, method: str = "linear",
          dtype: str = "float16", split_layer: int | None = None,
          restore_source_embeddings: bool = True, base: str | os.PathLike | None = None, density: float = 0.5,
          seed: int = 0, device: str = "cpu", verify_all_below: int = VERIFY_ALL_BELOW_BYTES, force: bool = False,
          sentence_transformers: dict | None = None) -> dict:
    """Merge `domain` into `source` layer-wise with mergekit and write a transformers model to `out` in the source's
    layout, with the source's tokenizer, `mergekit_config.yml` and `provenance.json`. Returns the provenance.
    `sentence_transformers` (settings of mergeir.encoding.sentence_transformers.plan_export) also writes the Sentence Transformers files.

    `profile` (instead of the two alphas): one α per group of consecutive layers, the groups an even split of the
    layers (mergeir.sweep.search's profiles); two groups are (alpha_lower, alpha_upper) at K = n // 2.

    Every input is checked before any work; a failed merge or verification leaves nothing under `out`.
    """
    if profile is not None:
        if alpha_lower is not None or alpha_upper is not None or split_layer is not None:
            raise MergeirError("--profile replaces --alpha-lower, --alpha-upper and --split-layer: give one or the "
                               "other")
        profile = parse_profile(profile)
    elif alpha_lower is None or alpha_upper is None:
        raise MergeirError("give --alpha-lower and --alpha-upper, or --profile")
    else:
        alpha_lower = check_alpha(alpha_lower, "--alpha-lower")
        alpha_upper = check_alpha(alpha_upper, "--alpha-upper")
    _check_options(method, dtype, density)
    src, dom, bse = _open_inputs(source, domain, base, method)
    # checked on the source, whose config and tokenizer the merge copies
    st = None if sentence_transformers is None else plan_export(source, **sentence_transformers)
    if profile is not None:
        bounds = group_bounds(src.num_layers, len(profile), what="--profile: alphas (layer groups)")
        slices = profile_slices(bounds, profile)
        k = bounds[1] if len(profile) == 2 else None
        if len(profile) == 2:
            alpha_lower, alpha_upper = profile
    else:
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
        copy_source_files(src.path, tmp)
        _write_config(src, tmp, dtype)
        st_files = None if st is None else st.write(tmp)  # replaces the source's copied ST files
        provenance = {
            "stage": MERGE_STAGE.name,
            "method": method,
            "alpha_lower": alpha_lower,
            "alpha_upper": alpha_upper,
            "split_layer": k,
            "num_layers": src.num_layers,
            "slices": [{"layers": [s.start, s.end], "alpha": s.alpha} for s in slices],
            "profile": None if profile is None else list(profile),
            "dtype": dtype,
            "restore_source_embeddings": restore_source_embeddings,
            "density": density if method in NEEDS_DENSITY else None,
            "seed": seed,
            "evaluated_model": _evaluated(src.family, slices, restore_source_embeddings, method),
            "inputs": {role: ckpt.input_record() for role, ckpt in shown.items() if ckpt is not None},
            "layouts": {"source": src.layout.name, "domain": dom.layout.name,
                        "mergekit_view": MERGEKIT_ARCH[src.family], "output": src.layout.name},
            **record,
            "sentence_transformers": st_files,
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


def copy_source_files(src: Path, dest: Path) -> None:
    """Tokenizer, generation config and sentence-transformers modules of the source, so the output encodes alike."""
    for p in sorted(src.rglob("*")):
        rel = p.relative_to(src)
        if not p.is_file() or any(part.startswith(".") for part in rel.parts):
            continue
        if rel.as_posix() in _NOT_COPIED or rel.suffix in (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".pkl"):
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(p, dest / rel)
