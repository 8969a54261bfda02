"""The merged weights written in the source's layout: mergekit's output re-keyed into deterministic shards, the
source's input embeddings restored, tensors mergekit does not merge copied from the source, and every tensor
verified before anything is written — against its expected weighted sum where the method has a closed form,
and always finite and of the source's shape.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from ..errors import MergeirError
from ..io import write_json
from ..models.checkpoints import Checkpoint
from ..models.dtypes import torch_dtype
from ..models.weights import ST_DTYPE_BYTES, weight_files
from .mixing import Slice, all_finite, alpha_for

VERIFY_ALL_BELOW_BYTES = 2_000_000_000  # above this, verify a stated sample of tensors (all are checked finite)
SHARD_BYTES = 5_000_000_000
CLOSED_FORM = ("linear", "task_arithmetic")  # the methods whose result has an expected weighted sum
_SAMPLE_RULE = ("sample: embeddings, pre/post tensors, every 1-D tensor and one matrix per layer (rotating over the "
                "layer's matrices)")


class _MergekitOutput:
    """mergekit's output folder (canonical keys), read one tensor at a time."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.key_file = weight_files(folder, "mergekit output")
        self._handles: dict = {}

    def check_complete(self, mergeable: dict) -> None:
        missing = [k for k in mergeable if k not in self.key_file]
        if missing:  # never fill a tensor mergekit skipped with the source's: that is the silent failure we guard
            raise MergeirError(f"mergekit did not write {missing[0]} ({len(missing)} merged tensors missing)")

    def dropped(self, source: Checkpoint) -> list[str]:
        """Tensors mergekit wrote that the source has not (the domain's lm_head; hidden keys excepted)."""
        return sorted(k for k in self.key_file if k not in source.canonical and not k.startswith("mergeir_hidden."))

    def tensor(self, ckey: str, dtype: str):
        from safetensors import safe_open

        name = self.key_file[ckey]
        handle = self._handles.get(name) or self._handles.setdefault(
            name, safe_open(str(self.folder / name), framework="pt"))
        t = handle.get_tensor(ckey)
        if t.dtype != torch_dtype(dtype):
            raise MergeirError(f"mergekit wrote {ckey} as {t.dtype}, expected {dtype}")
        return t

    def close(self) -> None:
        self._handles.clear()


@dataclass
class _Verifier:
    sample: bool  # large model: a stated sample of the weighted sums (every tensor is still checked finite)
    layer_pick: dict  # layer -> the one matrix of that layer the sample compares (rotating over the layer's matrices)
    checked: int = 0
    finite_checked: int = 0
    max_abs_err: float = 0.0

    @classmethod
    def for_source(cls, source: Checkpoint, mergeable: dict, verify_all_below: int) -> _Verifier:
        """Every tensor of a model up to `verify_all_below` bytes; above, the sample rule."""
        layer_keys: dict[int, list[str]] = {}
        for ckey, role in mergeable.items():
            if role[0] == "layer" and len(source.shape(ckey)) > 1:
                layer_keys.setdefault(role[1], []).append(ckey)
        return cls(sample=source.nbytes() > verify_all_below,
                   layer_pick={i: sorted(ks)[i % len(ks)] for i, ks in layer_keys.items()})

    def wants(self, ckey: str, role, ndim: int) -> bool:
        if not self.sample or role[0] != "layer" or ndim == 1:
            return True  # embeddings, pre/post tensors, norms and biases: always
        return self.layer_pick.get(role[1]) == ckey

    def compare(self, ckey: str, merged, alpha: float, s, d, b=None) -> None:
        """`merged` is α·s + (1-α)·d (task arithmetic: around the base `b`) within the rounding bound."""
        expected, tol = _expected_tol(s, d, alpha, merged.dtype, b)
        err = (merged.double() - expected).abs()
        bad = err > tol
        if bad.any():
            raise MergeirError(
                f"merge verification failed: {ckey} differs from {alpha}*source + {1 - alpha}*domain "
                f"by up to {err.max().item():.3g} ({int(bad.sum())} elements); nothing was written"
            )
        self.max_abs_err = max(self.max_abs_err, float(err.max()))
        self.checked += 1

    def check_written(self, native: str, t, shape: tuple[int, ...]) -> None:
        """Any tensor about to be written: finite (floating point) and of the source's shape."""
        if t.is_floating_point():
            if not all_finite(t):
                raise MergeirError(f"merged tensor {native} contains NaN or Inf; nothing was written")
            self.finite_checked += 1
        if t.shape != shape:
            raise MergeirError(f"merged tensor {native} has shape {list(t.shape)}, the source's is {list(shape)}")

    def record(self, method: str, written: int) -> dict:
        if method not in CLOSED_FORM:
            sums = f"not applicable ({method} has no closed form); all tensors checked finite"
        else:
            sums = _SAMPLE_RULE if self.sample else "every merged tensor"
        return {
            "weighted_sums": sums,
            "tensors_compared": self.checked,
            "max_abs_error": self.max_abs_err,
            "tensors_checked_finite": self.finite_checked,
            "tensors_written": written,
        }


def _expected_tol(s, d, alpha: float, dtype, b=None):
    """Expected α·s + (1-α)·d (task arithmetic: b + α(s-b) + (1-α)(d-b), the same number in exact arithmetic) in
    float64, and an elementwise bound: float32 accumulation plus rounding to dtype."""
    import torch

    s64, d64 = s.double(), d.double()
    if b is None:
        expected = alpha * s64 + (1.0 - alpha) * d64
        mag = alpha * s64.abs() + (1.0 - alpha) * d64.abs()
    else:
        b64 = b.double()
        expected = b64 + alpha * (s64 - b64) + (1.0 - alpha) * (d64 - b64)
        mag = 2 * (b64.abs() + alpha * (s64 - b64).abs() + (1.0 - alpha) * (d64 - b64).abs())
    eps = torch.finfo(dtype).eps
    tiny = torch.finfo(dtype).tiny * eps  # spacing of the dtype's subnormals
    return expected, 2 * eps * mag + tiny


def _shard_plan(source: Checkpoint, plan: list[tuple[str, str]], mergeable: dict, dtype: str):
    """([(file name, [(native, canonical key), ...]), ...], total bytes): shards of at most SHARD_BYTES, assigned
    from header sizes alone so that they are the same in every run."""
    itemsize = torch_dtype(dtype).itemsize
    shards: list[list[tuple[str, str]]] = [[]]
    size = 0
    total = 0
    for native, ckey in plan:
        n = itemsize if ckey in mergeable else ST_DTYPE_BYTES.get(source.st_dtype(ckey), 4)
        n *= math.prod(source.shape(ckey))
        total += n
        if shards[-1] and size + n > SHARD_BYTES:
            shards.append([])
            size = 0
        shards[-1].append((native, ckey))
        size += n
    names = (["model.safetensors"] if len(shards) == 1 else
             [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))])
    return list(zip(names, shards)), total


def write_merged(merged_dir: Path, out: Path, source: Checkpoint, domain: Checkpoint, *, method: str,
                 slices: list[Slice], dtype: str, restore: bool, base: Checkpoint | None = None,
                 verify_all_below: int = VERIFY_ALL_BELOW_BYTES) -> dict:
    """Re-key mergekit's output into the source's layout (deterministic shards), restore the source's input
    embeddings, copy tensors mergekit does not merge from the source, and verify every tensor written."""
    from safetensors.torch import save_file

    tdtype = torch_dtype(dtype)
    produced = _MergekitOutput(merged_dir)
    mergeable = source.mergeable()
    produced.check_complete(mergeable)
    ver = _Verifier.for_source(source, mergeable, verify_all_below)
    plan = [(native, ckey) for ckey, native in source.canonical.items()]  # (source-layout key, canonical key)
    shards, total = _shard_plan(source, plan, mergeable, dtype)

    weight_map = {}
    for name, shard in shards:
        tensors = {}
        for native, ckey in shard:
            role = mergeable.get(ckey)
            if role is None:
                t = source.tensor(ckey)  # buffers and heads mergekit does not merge: the source's own
            elif restore and role[0] == "embed":
                t = source.tensor(ckey, tdtype)
            else:
                t = produced.tensor(ckey, dtype)
                if method in CLOSED_FORM and ver.wants(ckey, role, t.ndim):
                    b = base.tensor(ckey, tdtype) if method == "task_arithmetic" else None
                    ver.compare(ckey, t, alpha_for(role, slices), source.tensor(ckey, tdtype),
                                domain.tensor(ckey, tdtype), b)
            ver.check_written(native, t, source.shape(ckey))
            tensors[native] = t.contiguous()
            weight_map[native] = name
        save_file(tensors, str(out / name), metadata={"format": "pt"})
        del tensors
    produced.close()
    if len(shards) > 1:
        write_json(out / "model.safetensors.index.json", {"metadata": {"total_size": total}, "weight_map": weight_map})
    return {
        "verification": ver.record(method, len(plan)),
        "dropped_tensors": produced.dropped(source),
        "copied_from_source": sorted(native for native, ckey in plan if ckey not in mergeable),
    }
