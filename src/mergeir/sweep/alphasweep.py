"""The in-memory α sweep's weights: the working model on its device, source and domain on the host.

Source and domain tensors stay in their stored dtype as read-only views of their memory-mapped safetensors files
(the page cache holds them; nothing is copied up front). Making the model a grid point streams each tensor whose
α changed to the model's device in chunks of `chunk_elements` and mixes it there, so the device holds the model plus
one chunk's source/domain pair and three float32 scratch chunks (64 MiB each by default) — for the 7B pair about
14.5 GB of bfloat16 weights instead of 70 GB of float32 copies. The mix is mergekit's own arithmetic
(`mergeir.merging.linear_mix`), elementwise, so chunking changes no bit: on CPU the weights are bit-identical to a
mergekit merge, on a GPU equal within float rounding.
"""

from __future__ import annotations

import math
import mmap
import os
import struct

from ..errors import MergeirError
from ..merging.alphas import check_alpha
from ..merging.mixing import all_finite, alpha_for, linear_mix, make_slices, profile_slices
from ..models.checkpoints import Checkpoint, check_compatible, open_checkpoint
from ..models.layouts import detect_layout, to_canonical
from ..models.weights import ST_DTYPE_BYTES

CHUNK_ELEMENTS = 1 << 24  # a power of two: chunk edges fall on vector-width boundaries of the CPU kernels
_ST_TORCH = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16"}


class HostTensors:
    """A checkpoint's floating-point tensors as views of its memory-mapped safetensors files, in the stored dtype.

    The maps are private copy-on-write (`ACCESS_COPY`): torch may view them, nothing ever writes them back."""

    def __init__(self, ckpt: Checkpoint):
        self.ckpt = ckpt
        self._maps: dict[str, tuple[mmap.mmap, int]] = {}

    def _map(self, name: str) -> tuple[mmap.mmap, int]:
        if name not in self._maps:
            with open(self.ckpt.path / name, "rb") as f:
                (n,) = struct.unpack("<Q", f.read(8))
                self._maps[name] = (mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY), 8 + n)
        return self._maps[name]

    def get(self, ckey: str):
        import torch

        native = self.ckpt.canonical[ckey]
        info = self.ckpt.headers[native]
        dtype = getattr(torch, _ST_TORCH[info["dtype"]])
        start, end = (int(x) for x in info["data_offsets"])
        if end == start:
            return torch.empty(info["shape"], dtype=dtype)
        buf, base = self._map(self.ckpt.key_file[native])
        raw = torch.frombuffer(buf, dtype=torch.uint8, count=end - start, offset=base + start)
        if (base + start) % dtype.itemsize:  # unaligned (not written by safetensors itself): copy once
            raw = raw.clone()
        return raw.view(dtype).view(info["shape"])

    def nbytes(self, ckeys) -> int:
        total = 0
        for k in ckeys:
            info = self.ckpt.headers[self.ckpt.canonical[k]]
            n = ST_DTYPE_BYTES[info["dtype"]]
            for d in info["shape"]:
                n *= int(d)
            total += n
        return total

    def close(self) -> None:
        self._maps.clear()  # the maps close when the last tensor viewing them is gone


def scratch_bytes(chunk: int, dtype) -> int:
    """The mixing working set on the device: float32 scratch chunks (accumulator; plus source and domain upcasts
    for half-precision weights) and one streamed chunk of source and domain each."""
    import torch

    rows = 1 if dtype == torch.float32 else 3
    return chunk * (rows * 4 + 2 * dtype.itemsize)


def plan_bytes(source: Checkpoint, domain: Checkpoint, dtype, restore: bool,
               chunk_elements: int = CHUNK_ELEMENTS) -> tuple[int, int]:
    """(host bytes, device mixing bytes) of a sweep over these checkpoints, known before any model is loaded."""
    keys = {k: r for k, r in source.mergeable().items() if k != "lm_head.weight"}  # encoders have no lm_head
    dom = [k for k, r in keys.items() if not (restore and r[0] == "embed")]
    host = HostTensors(source).nbytes(keys) + HostTensors(domain).nbytes(dom)
    chunk = min(chunk_elements, max(math.prod(source.shape(k)) for k in keys))
    return host, scratch_bytes(chunk, dtype)


class AlphaSweep:
    """`set(alpha_lower, alpha_upper)` rewrites the model's parameters in place to the merge mergekit would write
    for that α pair — bit-identical on CPU — without writing a model to disk. Tensors whose α did not change since
    the last point are left alone.

    `model` is the encoder loaded from the source folder (any layout of the family: its parameter names are mapped
    to canonical keys); tensors it does not have (lm_head) are ignored. Source and domain tensors are checked finite
    the first time they are streamed (the first `set` streams every tensor it needs).
    """

    def __init__(self, model, source: str | os.PathLike, domain: str | os.PathLike, *, split_layer: int | None = None,
                 restore_source_embeddings: bool = True, chunk_elements: int = CHUNK_ELEMENTS):
        import torch

        if chunk_elements < 1:
            raise MergeirError(f"chunk_elements must be >= 1, got {chunk_elements}")
        self.model = model
        self.source = open_checkpoint(source, "--source")
        self.domain = open_checkpoint(domain, "--domain")
        check_compatible(self.source, self.domain)
        self.split_layer = self.source.num_layers // 2 if split_layer is None else split_layer
        make_slices(self.source.num_layers, self.split_layer, 1.0, 1.0)  # validates K
        self.restore = restore_source_embeddings
        params = dict(model.named_parameters())
        layout = detect_layout(params, "encoder model")
        by_ckey = {to_canonical(k, layout): (k, p) for k, p in params.items()}
        self.mergeable = {k: r for k, r in self.source.mergeable().items() if k in by_ckey}
        absent = sorted(k for k in self.source.mergeable() if k not in by_ckey and k != "lm_head.weight")
        if absent:
            raise MergeirError(f"encoder model has no parameter for {absent[0]} ({len(absent)} missing)")
        self.names = {k: by_ckey[k][0] for k in self.mergeable}
        self.params = {k: by_ckey[k][1] for k in self.mergeable}
        for k, p in self.params.items():
            if not p.is_contiguous() or tuple(p.shape) != self.source.shape(k):
                raise MergeirError(f"encoder parameter {self.names[k]} is not the source's {k} "
                                   f"{list(self.source.shape(k))}")
        first = next(iter(self.params.values()))
        self.dtype, self.device = first.dtype, first.device
        self.host = {"source": HostTensors(self.source), "domain": HostTensors(self.domain)}
        self.chunk = min(chunk_elements, max(p.numel() for p in self.params.values()))
        # accumulator + float32 upcasts of one chunk of source and domain (an exact upcast: the CPU kernels run
        # several times faster in float32 than in half precision)
        rows = 1 if self.dtype == torch.float32 else 3  # float32 weights are mixed straight from the streamed chunks
        self._scratch = torch.empty((rows, self.chunk), dtype=torch.float32, device=self.device)
        self._checked: set[tuple[str, str]] = set()
        self._current: dict[str, object] = {k: None for k in self.mergeable}
        self.point: tuple[float, ...] | None = None  # (alpha_lower, alpha_upper), or a profile
        self.rewritten = 0  # tensors rewritten over the sweep's life

    def host_bytes(self) -> int:
        """Bytes of source and domain tensors the sweep reads (stored dtype; memory-mapped, not copied)."""
        dom = [k for k, r in self.mergeable.items() if not (self.restore and r[0] == "embed")]
        return self.host["source"].nbytes(self.mergeable) + self.host["domain"].nbytes(dom)

    def device_scratch_bytes(self) -> int:
        return scratch_bytes(self.chunk, self.dtype)

    def targets(self, alpha_lower: float, alpha_upper: float, slices=None) -> dict[str, object]:
        """{canonical key: "source" | the source weight} of the (alpha_lower, alpha_upper) merge (or of `slices`)."""
        if slices is None:
            slices = make_slices(self.source.num_layers, self.split_layer, alpha_lower, alpha_upper)
        return {k: "source" if self.restore and r[0] == "embed" else alpha_for(r, slices)
                for k, r in self.mergeable.items()}

    def set(self, alpha_lower: float, alpha_upper: float) -> int:
        """Make the model the (alpha_lower, alpha_upper) merge; returns how many tensors were rewritten."""
        alpha_lower = check_alpha(alpha_lower, "alpha_lower")
        alpha_upper = check_alpha(alpha_upper, "alpha_upper")
        changed = self._apply(self.targets(alpha_lower, alpha_upper))
        self.point = (alpha_lower, alpha_upper)
        return changed

    def set_profile(self, bounds: list[int], alphas) -> int:
        """Make the model the merge of an α profile (one α per group of layers, `mixing.group_bounds`); with two
        groups split at K it is `set(alpha_lower, alpha_upper)`."""
        alphas = tuple(check_alpha(a, "profile alpha") for a in alphas)
        changed = self._apply(self.targets(0.0, 0.0, profile_slices(bounds, alphas)))
        self.point = alphas
        return changed

    def _apply(self, targets: dict[str, object]) -> int:
        import torch

        changed = 0
        with torch.no_grad():
            for ckey, target in targets.items():
                if self._current[ckey] == target:
                    continue
                self._current[ckey] = None  # a failure half-way leaves the tensor unknown, not stale
                self._write(ckey, target)
                self._current[ckey] = target
                changed += 1
        self.rewritten += changed
        return changed

    def _stream(self, role: str, ckey: str, lo: int, hi: int):
        """Elements [lo, hi) of a source/domain tensor on the device, in the merge dtype (cast as mergekit does)."""
        flat = self.host[role].get(ckey).view(-1)
        t = flat[lo:hi].to(self.device).to(self.dtype)
        if (role, ckey) not in self._checked:
            if not all_finite(t):
                ckpt = self.source if role == "source" else self.domain
                raise MergeirError(f"--{role} {ckpt.path}: tensor {ckey} contains NaN or Inf")
            if hi == flat.numel():  # chunks stream in order: every chunk of this tensor has passed
                self._checked.add((role, ckey))
        return t

    def _write(self, ckey: str, target) -> None:
        import torch

        flat = self.params[ckey].view(-1)
        n = flat.numel()
        acc, s32, d32 = (*self._scratch, None, None)[:3]
        for lo in range(0, n, self.chunk):
            hi = min(n, lo + self.chunk)
            out = flat[lo:hi]
            if target == "source":  # the source's own tensor, bit for bit
                out.copy_(self._stream("source", ckey, lo, hi))
            elif target in (0.0, 1.0):
                # mergekit accumulates from +0, so its alpha=1 result is the source with -0 turned into +0 (and
                # alpha=0 the domain's): a copy, then +0.0, which changes nothing else
                out.copy_(self._stream("source" if target == 1.0 else "domain", ckey, lo, hi))
                out.add_(0.0)
            else:
                m = hi - lo
                s, d = self._stream("source", ckey, lo, hi), self._stream("domain", ckey, lo, hi)
                if self.dtype != torch.float32:
                    s, d = s32[:m].copy_(s), d32[:m].copy_(d)
                linear_mix(s, d, target, out=out, scratch=acc[:m])

    def state_dict(self) -> dict:
        """{the model's parameter name: tensor} for the merged tensors (to compare with a written merge)."""
        return {self.names[k]: p.detach() for k, p in self.params.items()}

    def close(self) -> None:
        for h in self.host.values():
            h.close()
