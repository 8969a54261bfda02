"""Layer-wise merging of a source retriever with a domain model: mergekit on one key layout, verified, and an
in-memory α sweep for the grid search (mergeir.alphasweep).

α is the weight of the SOURCE model (1.0 = pure source). Layers [0, K) get alpha_lower, [K, n) alpha_upper (K
defaults to n // 2). As in mergekit, weights before the first layer (the input embeddings) take the first slice's
α and weights after the last (final norm, lm_head, BERT pooler) the last slice's; the paper then restores the
source's own input embeddings, so the evaluated model is: source embeddings, layers mixed per half, final norm
mixed with alpha_upper (docs/paper.md, "Merging").

Why layout views: mergekit 0.1.5 given a `MistralModel` (keys `layers.*`) and a `MistralForCausalLM` (keys
`model.*`) exits 0 and silently writes one model's tensors (or NaN), depending on PYTHONHASHSEED — it orders the
models through a set. Both checkpoints are therefore first shown to mergekit in the canonical layout of
`mergeir.models` (a temporary folder: re-keyed safetensors headers over the same tensor bytes), mergekit's
output is re-keyed back to the source's layout, and every tensor is checked against its expected weighted sum.

mergekit 0.1.5's BERT plan crashes (`plan_tensor` concatenates a list with the tuple of aliases of the optional
`embeddings.position_ids`); BERT pairs are merged under a private copy of mergekit's own bert.json without that
int64 buffer (`MergeirBertModel`), and the buffer is copied from the source.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from .alphas import check_alpha  # noqa: F401 (re-exported)
from .dtypes import check_dtype, torch_dtype
from .errors import MergeirError
from .io import Stage, atomic_dir, atomic_write_text, scratch_dir, write_json
from .models import (
    CANONICAL_PREFIX,
    ST_DTYPE_BYTES,
    Checkpoint,
    check_compatible,
    open_checkpoint,
    read_safetensors_header,
    to_canonical,
    weight_files,
)
from .provenance import tool_versions

METHODS = ("linear", "slerp", "ties", "task_arithmetic", "dare_ties")
NEEDS_BASE = ("ties", "task_arithmetic", "dare_ties")
# the architecture name the views declare, so mergekit picks its JSON definition (and never guesses)
MERGEKIT_ARCH = {"mistral": "MistralForCausalLM", "bert": "MergeirBertModel"}
VERIFY_ALL_BELOW_BYTES = 2_000_000_000  # above this, verify a stated sample of tensors (all are checked finite)
SHARD_BYTES = 5_000_000_000
MERGE_STAGE = Stage("merge", "provenance.json")  # a merged model's provenance.json says "stage": "merge"
# source files copied next to the merged weights: tokenizer, generation and sentence-transformers configs
_NOT_COPIED = ("config.json", "provenance.json", "model.safetensors.index.json", "README.md")

METHOD_HELP = "\n".join([
    "linear: the paper's method. Per slice, weight alpha on the source and 1-alpha on the domain (normalised).",
    "slerp: spherical interpolation per tensor from the source (t=0) towards the domain, t = 1-alpha per slice.",
    "task_arithmetic: base + alpha*(source-base) + (1-alpha)*(domain-base); needs --base (the models' common "
    "ancestor, e.g. Mistral-7B-v0.1).",
    "ties: TIES-merging of the task vectors source-base and domain-base: each trimmed to --density of its "
    "largest-magnitude entries, sign consensus, weights alpha / 1-alpha (normalised); needs --base.",
    "dare_ties: DARE (keep a random --density of each task vector, rescale) + TIES sign consensus, weights "
    "alpha / 1-alpha; needs --base; --seed fixes the random drop.",
])


# ---------------------------------------------------------------------------------------------------------------
# Slices and expected weights


@dataclass(frozen=True)
class Slice:
    start: int
    end: int
    alpha: float


def make_slices(num_layers: int, split_layer: int | None, alpha_lower: float, alpha_upper: float) -> list[Slice]:
    """[0, K) with alpha_lower and [K, n) with alpha_upper; an empty range is dropped (K = 0 or K = n)."""
    k = num_layers // 2 if split_layer is None else split_layer
    if not 0 <= k <= num_layers:
        raise MergeirError(f"--split-layer {k} is outside [0, {num_layers}] (the models have {num_layers} layers)")
    return [s for s in (Slice(0, k, alpha_lower), Slice(k, num_layers, alpha_upper)) if s.end > s.start]


def alpha_for(role: tuple[str, int | None], slices: list[Slice]) -> float | None:
    """The source weight mergekit gives a tensor of this role (None: not merged)."""
    kind, layer = role
    if kind in ("embed", "pre"):
        return slices[0].alpha
    if kind == "post":
        return slices[-1].alpha
    if kind == "layer":
        for s in slices:
            if s.start <= layer < s.end:
                return s.alpha
    return None


def all_finite(t) -> bool:
    """No NaN and no ±Inf: min and max of one aminmax pass (NaN propagates), ~15x cheaper than isfinite().all()."""
    import torch

    if t.numel() == 0:
        return True
    lo, hi = torch.aminmax(t)
    return bool(torch.isfinite(lo) and torch.isfinite(hi))


def linear_mix(s, d, alpha: float, out=None, scratch=None, dtype=None):
    """α·s + (1-α)·d exactly as mergekit 0.1.5's `linear` computes it: the inputs in the merge dtype, accumulated in
    float32 from zero, divided by the weight sum, cast back to the merge dtype — so the sweep's weights are
    bit-identical to a mergekit merge. `s`/`d` may be float32 copies of merge-dtype tensors (an exact upcast that
    makes the CPU kernels several times faster); `dtype` is then the merge dtype."""
    import torch

    w = torch.tensor([alpha, 1.0 - alpha], dtype=torch.float32, device=s.device)
    acc = scratch if scratch is not None else torch.empty(s.shape, dtype=torch.float32, device=s.device)
    acc.zero_()
    acc.addcmul_(s, w[0])
    acc.addcmul_(d, w[1])
    total = w.sum()
    if total.item() != 1.0:  # dividing by exactly 1.0 changes no bit
        acc.div_(total)
    if out is None:
        return acc.to(dtype or s.dtype)
    out.copy_(acc)
    return out


# ---------------------------------------------------------------------------------------------------------------
# Layout views for mergekit


def _register_bert_architecture() -> None:
    """mergekit's bert.json minus the optional int64 `embeddings.position_ids` whose tuple of aliases crashes its
    planner; registered under a private name the BERT views declare."""
    from importlib import resources

    from mergekit.architecture import json_definitions as jd

    if "MergeirBertModel" in jd.NAME_TO_ARCH:
        return
    data = json.loads(resources.files("mergekit._data.architectures").joinpath("bert.json").read_text())
    data["pre_weights"] = [w for w in data["pre_weights"] if w["name"] != "embeddings.position_ids"]
    data["architectures"] = ["MergeirBertModel"]
    jd.NAME_TO_ARCH["MergeirBertModel"] = [jd._load_architecture_json(json.dumps(data))]


def _rekey_safetensors(src: Path, dst: Path, rename) -> None:
    """Copy a safetensors file with renamed tensors: a new header over the same data bytes (no tensor is decoded;
    data offsets are relative to the end of the header, so they stay valid)."""
    header = read_safetensors_header(src)
    new = {(k if k == "__metadata__" else rename(k)): v for k, v in header.items()}
    raw = json.dumps(new, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with open(src, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        f.seek(8 + n)
        with open(dst, "wb") as g:
            g.write(struct.pack("<Q", len(raw)))
            g.write(raw)
            shutil.copyfileobj(f, g, 16 << 20)


def write_view(ckpt: Checkpoint, dest: Path, hide: Iterable[str] = ()) -> Path:
    """`ckpt` as mergekit should see it: canonical key names, the canonical architecture in config.json, and an
    index. Files already in canonical layout are symlinked; `hide` (canonical keys) are renamed out of mergekit's
    sight (e.g. the domain's lm_head when the source has none)."""
    dest.mkdir(parents=True)
    hide = set(hide)
    canonical_already = ckpt.layout.prefix == CANONICAL_PREFIX[ckpt.family]
    weight_map = {}
    for name in sorted(set(ckpt.key_file.values())):
        keys = [k for k, f in ckpt.key_file.items() if f == name]
        renamed = {k: _view_key(ckpt, k, hide) for k in keys}
        if canonical_already and all(renamed[k] == k for k in keys):
            os.symlink((ckpt.path / name).resolve(), dest / name)
        else:
            _rekey_safetensors(ckpt.path / name, dest / name, lambda k: _view_key(ckpt, k, hide))
        weight_map.update({renamed[k]: name for k in keys})
    (dest / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    config = dict(ckpt.config)
    config["architectures"] = [MERGEKIT_ARCH[ckpt.family]]
    (dest / "config.json").write_text(json.dumps(config, indent=2))
    return dest


def _view_key(ckpt: Checkpoint, native: str, hide: set[str]) -> str:
    ckey = to_canonical(native, ckpt.layout)
    return "mergeir_hidden." + ckey if ckey in hide else ckey


# ---------------------------------------------------------------------------------------------------------------
# The mergekit configuration


def mergekit_config(method: str, slices: list[Slice], source: str, domain: str, base: str | None, dtype: str,
                    density: float | None) -> dict:
    """The mergekit YAML (as a dict) for one merge; model entries are paths."""
    out_slices = []
    for s in slices:
        rng = [s.start, s.end]
        src = {"model": source, "layer_range": rng}
        dom = {"model": domain, "layer_range": rng}
        entry: dict = {"sources": [src, dom]}
        if method == "linear":
            src["parameters"] = {"weight": s.alpha}
            dom["parameters"] = {"weight": 1.0 - s.alpha}
        elif method == "slerp":
            entry["parameters"] = {"t": 1.0 - s.alpha}
        else:
            src["parameters"] = {"weight": s.alpha}
            dom["parameters"] = {"weight": 1.0 - s.alpha}
            if method in ("ties", "dare_ties"):
                src["parameters"]["density"] = density
                dom["parameters"]["density"] = density
            entry["sources"].append({"model": base, "layer_range": rng})
        out_slices.append(entry)
    cfg: dict = {"merge_method": method, "dtype": dtype, "slices": out_slices}
    if method == "slerp":
        cfg["base_model"] = source
    elif method in NEEDS_BASE:
        cfg["base_model"] = base
    return cfg


def _yaml(cfg: dict, names: dict[str, str]) -> str:
    """The config as written next to the model: view paths replaced by the input folders they show."""
    import yaml

    def sub(x):
        if isinstance(x, dict):
            return {k: sub(v) for k, v in x.items()}
        if isinstance(x, list):
            return [sub(v) for v in x]
        return names.get(x, x) if isinstance(x, str) else x

    head = ("# mergekit configuration used by mergeir (mergekit ran on layout views of these folders: the same\n"
            "# tensors under canonical key names; see provenance.json)\n")
    return head + yaml.safe_dump(sub(cfg), sort_keys=False)


def run_mergekit(cfg: dict, out: Path, seed: int, device: str = "cpu") -> None:
    from mergekit.config import MergeConfiguration
    from mergekit.io.tasks import LoaderCache
    from mergekit.merge import MergeOptions, run_merge

    _register_bert_architecture()
    options = MergeOptions(copy_tokenizer=False, write_model_card=False, quiet=True, random_seed=seed,
                           safe_serialization=True, lazy_unpickle=False, trust_remote_code=False, device=device)
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # mergekit sets the deprecated config.torch_dtype: a warning per merge
    try:
        run_merge(MergeConfiguration.model_validate(cfg), str(out), options)
    except MergeirError:
        raise
    except Exception as e:  # noqa: BLE001 - mergekit's failures become one line naming the stage
        raise MergeirError(f"mergekit failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from e
    finally:
        LoaderCache().loaders.clear()  # its loaders are cached per path in a class-level dict: drop the views'
        hf_logging.set_verbosity(verbosity)


# ---------------------------------------------------------------------------------------------------------------
# Writing the result in the source's layout, verifying as we go


@dataclass
class _Verifier:
    sample: bool  # large model: a stated sample of the weighted sums (every tensor is still checked finite)
    layer_pick: dict  # layer -> the one matrix of that layer the sample compares (rotating over the layer's matrices)
    checked: int = 0
    finite_checked: int = 0
    max_abs_err: float = 0.0

    def wants(self, ckey: str, role, ndim: int) -> bool:
        if not self.sample or role[0] != "layer" or ndim == 1:
            return True  # embeddings, pre/post tensors, norms and biases: always
        return self.layer_pick.get(role[1]) == ckey


CLOSED_FORM = ("linear", "task_arithmetic")


def _expected_tol(s, d, alpha: float, dtype, b=None):
    """Expected α·s + (1-α)·d (task arithmetic: b + α(s-b) + (1-α)(d-b), the same number in exact arithmetic) in
    float64, and an elementwise bound: float32 accumulation plus rounding to dtype."""
    import torch

    s64, d64 = s.double(), d.double()
    if b is None:
        exp = alpha * s64 + (1.0 - alpha) * d64
        mag = alpha * s64.abs() + (1.0 - alpha) * d64.abs()
    else:
        b64 = b.double()
        exp = b64 + alpha * (s64 - b64) + (1.0 - alpha) * (d64 - b64)
        mag = 2 * (b64.abs() + alpha * (s64 - b64).abs() + (1.0 - alpha) * (d64 - b64).abs())
    eps = torch.finfo(dtype).eps
    tiny = torch.finfo(dtype).tiny * eps  # spacing of the dtype's subnormals
    return exp, 2 * eps * mag + tiny


def write_merged(merged_dir: Path, out: Path, source: Checkpoint, domain: Checkpoint, *, method: str,
                 slices: list[Slice], dtype: str, restore: bool, base: Checkpoint | None = None,
                 verify_all_below: int = VERIFY_ALL_BELOW_BYTES) -> dict:
    """Re-key mergekit's output into the source's layout (deterministic shards), restore the source's input
    embeddings, copy tensors mergekit does not merge from the source, and verify every tensor written."""
    import torch
    from safetensors.torch import save_file

    tdtype = torch_dtype(dtype)
    produced = weight_files(merged_dir, "mergekit output")
    handles: dict = {}

    def merged_tensor(ckey):
        from safetensors import safe_open

        name = produced[ckey]
        h = handles.get(name) or handles.setdefault(name, safe_open(str(merged_dir / name), framework="pt"))
        return h.get_tensor(ckey)

    mergeable = source.mergeable()
    missing = [k for k in mergeable if k not in produced]
    if missing:  # never fill a tensor mergekit skipped with the source's: that is the silent failure we guard
        raise MergeirError(f"mergekit did not write {missing[0]} ({len(missing)} merged tensors missing)")
    # sample rule for large models: embeddings, pre/post tensors, every 1-D tensor, and one matrix per layer
    layer_keys: dict[int, list[str]] = {}
    for ckey, role in mergeable.items():
        if role[0] == "layer" and len(source.shape(ckey)) > 1:
            layer_keys.setdefault(role[1], []).append(ckey)
    ver = _Verifier(sample=source.nbytes() > verify_all_below,
                    layer_pick={i: sorted(ks)[i % len(ks)] for i, ks in layer_keys.items()})

    plan = [(native, ckey) for ckey, native in source.canonical.items()]  # (source-layout key, canonical key)
    dropped = sorted(k for k in produced if k not in source.canonical and not k.startswith("mergeir_hidden."))
    copied = sorted(native for native, ckey in plan if ckey not in mergeable)

    # shard assignment from header sizes alone, so it is the same in every run
    def nbytes(ckey):
        n = tdtype.itemsize if ckey in mergeable else ST_DTYPE_BYTES.get(source.st_dtype(ckey), 4)
        return n * math.prod(source.shape(ckey))

    shards: list[list[tuple[str, str]]] = [[]]
    size = 0
    total = 0
    for native, ckey in plan:
        b = nbytes(ckey)
        total += b
        if shards[-1] and size + b > SHARD_BYTES:
            shards.append([])
            size = 0
        shards[-1].append((native, ckey))
        size += b
    names = (["model.safetensors"] if len(shards) == 1 else
             [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))])

    weight_map = {}
    for name, shard in zip(names, shards):
        tensors = {}
        for native, ckey in shard:
            role = mergeable.get(ckey)
            if role is None:
                t = source.tensor(ckey)  # buffers and heads mergekit does not merge: the source's own
            elif restore and role[0] == "embed":
                t = source.tensor(ckey, tdtype)
            else:
                t = merged_tensor(ckey)
                if t.dtype != tdtype:
                    raise MergeirError(f"mergekit wrote {ckey} as {t.dtype}, expected {dtype}")
                if method in CLOSED_FORM and ver.wants(ckey, role, t.ndim):
                    alpha = alpha_for(role, slices)
                    b = base.tensor(ckey, tdtype) if method == "task_arithmetic" else None
                    exp, tol = _expected_tol(source.tensor(ckey, tdtype), domain.tensor(ckey, tdtype), alpha, tdtype, b)
                    err = (t.double() - exp).abs()
                    bad = err > tol
                    if bad.any():
                        raise MergeirError(
                            f"merge verification failed: {ckey} differs from {alpha}*source + {1 - alpha}*domain "
                            f"by up to {err.max().item():.3g} ({int(bad.sum())} elements); nothing was written"
                        )
                    ver.max_abs_err = max(ver.max_abs_err, float(err.max()))
                    ver.checked += 1
            if t.is_floating_point():
                if not all_finite(t):
                    raise MergeirError(f"merged tensor {native} contains NaN or Inf; nothing was written")
                ver.finite_checked += 1
            if t.shape != source.shape(ckey):
                raise MergeirError(f"merged tensor {native} has shape {list(t.shape)}, the source's is "
                                   f"{list(source.shape(ckey))}")
            tensors[native] = t.contiguous()
            weight_map[native] = name
        save_file(tensors, str(out / name), metadata={"format": "pt"})
        del tensors
    handles.clear()
    if len(shards) > 1:
        write_json(out / "model.safetensors.index.json", {"metadata": {"total_size": total}, "weight_map": weight_map})
    return {
        "verification": {
            "weighted_sums": ("every merged tensor" if not ver.sample else
                              "sample: embeddings, pre/post tensors, every 1-D tensor and one matrix per layer "
                              "(rotating over the layer's matrices)")
            if method in CLOSED_FORM else f"not applicable ({method} has no closed form); all tensors checked finite",
            "tensors_compared": ver.checked,
            "max_abs_error": ver.max_abs_err,
            "tensors_checked_finite": ver.finite_checked,
            "tensors_written": len(plan),
        },
        "dropped_tensors": dropped,
        "copied_from_source": copied,
    }


# ---------------------------------------------------------------------------------------------------------------
# The merge stage


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
    if method not in METHODS:
        raise MergeirError(f"--method must be one of {', '.join(METHODS)}, got {method!r}")
    check_dtype(dtype)  # without importing torch: bad inputs fail in a second
    if method in ("ties", "dare_ties") and not 0.0 < density <= 1.0:
        raise MergeirError(f"--density must be within (0, 1], got {density}")
    src = open_checkpoint(source, "--source")
    dom = open_checkpoint(domain, "--domain")
    check_compatible(src, dom)
    bse = None
    if method in NEEDS_BASE:
        if base is None:
            raise MergeirError(f"--method {method} needs --base (the common ancestor of source and domain)")
        bse = open_checkpoint(base, "--base")
        check_compatible(src, bse)
    elif base is not None:
        raise MergeirError(f"--base is only used by {', '.join(NEEDS_BASE)}, not --method {method}")
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
        names = {str(views["source"]): str(src.path.resolve()), str(views["domain"]): str(dom.path.resolve())}
        if bse is not None:
            names[str(views["base"])] = str(bse.path.resolve())
        atomic_write_text(tmp / "mergekit_config.yml", _yaml(cfg, names))
        _copy_source_files(src.path, tmp)
        config = dict(src.config)
        config["dtype"] = dtype
        if "torch_dtype" in config:
            config["torch_dtype"] = dtype
        atomic_write_text(tmp / "config.json", json.dumps(config, indent=2, sort_keys=True) + "\n")
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
            "density": density if method in ("ties", "dare_ties") else None,
            "seed": seed,
            "evaluated_model": _evaluated(src.family, slices, restore_source_embeddings, method),
            "inputs": {"source": src.input_record(), "domain": dom.input_record(),
                       **({"base": bse.input_record()} if bse is not None else {})},
            "layouts": {"source": src.layout.name, "domain": dom.layout.name,
                        "mergekit_view": MERGEKIT_ARCH[src.family], "output": src.layout.name},
            **record,
            "tools": tool_versions(),
        }
        write_json(tmp / "provenance.json", provenance)
    src.close()
    dom.close()
    return provenance


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


# ---------------------------------------------------------------------------------------------------------------
# In-memory α sweep: mergeir.alphasweep (host-side source and domain, streamed to the model's device)


def __getattr__(name: str):
    if name == "AlphaSweep":  # lazily: alphasweep imports this module
        from .alphasweep import AlphaSweep

        return AlphaSweep
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
