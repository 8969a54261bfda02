"""What the α sweep needs in memory, known before anything is loaded, printed and checked before it starts.

Device: the working model (parameters + buffers, counted on a meta-device copy of the encoder class), the mixing
working set (`alphasweep.AlphaSweep.device_scratch_bytes`), the activations of the largest batch, and the
layer-split cache's hidden states. Host: source and domain tensors in their stored dtype (memory-mapped, so the
page cache holds them; they are not copied into process memory).

Activations of one inference forward of a Mistral-style decoder, measured per padded token: the embedding output
(kept by the forward for the whole pass), the residual, the normed input, and inside the MLP the activated gate,
the up projection and their product, then the down projection: (4·hidden + 3·intermediate) values per token in
the model dtype, plus the boolean attention mask (rows · width²). Fused attention (PyTorch's flash / memory
efficient kernels, on CPU and GPU) materialises no width² scores. A BERT encoder needs less (2 intermediate
tensors), so the same count is an upper bound there.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..errors import MergeirError
from .alphasweep import plan_bytes

HEADROOM = 0.95  # of the free memory: allocator fragmentation and the caching allocator's rounding
GIB = 1 << 30


def _gib(n: int | None) -> str:
    return "unknown" if n is None else f"{n / GIB:.2f} GiB"


@dataclass
class MemoryEstimate:
    device: str
    model_bytes: int
    mix_bytes: int
    activation_bytes: int
    cache_bytes: int
    host_bytes: int
    batch_tokens: int
    available_bytes: int | None  # free on the device (CPU: MemAvailable) before the model is loaded

    @property
    def device_bytes(self) -> int:
        return self.model_bytes + self.mix_bytes + self.activation_bytes + self.cache_bytes

    def describe(self) -> str:
        return (f"sweep memory on {self.device}: model {_gib(self.model_bytes)} + mixing {_gib(self.mix_bytes)} + "
                f"activations {_gib(self.activation_bytes)} (largest batch {self.batch_tokens} padded tokens) + "
                f"layer cache {_gib(self.cache_bytes)} = {_gib(self.device_bytes)} of {_gib(self.available_bytes)} "
                f"free; host: source+domain {_gib(self.host_bytes)} memory-mapped")

    def check(self) -> None:
        if self.available_bytes is not None and self.device_bytes > HEADROOM * self.available_bytes:
            raise MergeirError(f"the sweep needs {_gib(self.device_bytes)} on {self.device} but "
                               f"{_gib(self.available_bytes)} is free ({self.describe()}); lower --max-batch-tokens "
                               "or --batch-size, --cache-gib, or use a smaller --dtype")

    def as_dict(self) -> dict:
        return {**asdict(self), "device_bytes": self.device_bytes}


def model_bytes(config, dtype) -> int:
    """Parameters and buffers of the encoder `AutoModel.from_config(config)` builds, in `dtype` (no allocation)."""
    import torch
    from transformers import AutoModel

    with torch.device("meta"):
        model = AutoModel.from_config(config, dtype=dtype)
    tensors = [*model.parameters(), *model.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)


def activation_bytes(config, rows: int, width: int, dtype) -> int:
    """Peak activations of one inference forward of `rows` x `width` padded tokens (see the module docstring)."""
    hidden = int(config.hidden_size)
    inter = int(getattr(config, "intermediate_size", 4 * hidden))
    return rows * width * (4 * hidden + 3 * inter) * dtype.itemsize + rows * width * width


def hidden_bytes(ids, hidden_size: int, itemsize: int) -> int:
    """The hidden states of one padded batch of token ids (what the layer-split cache holds per batch)."""
    return int(ids.shape[0] * ids.shape[1]) * hidden_size * itemsize


def largest_batch(batch_lists) -> tuple[int, int]:
    """(rows, width) of the batch with the most activation bytes among padded (ids, mask) batches."""
    best = (0, 0)
    for batches in batch_lists:
        for ids, _ in batches:
            rows, width = int(ids.shape[0]), int(ids.shape[1])
            if rows * width * (1 + width) > best[0] * best[1] * (1 + best[1]):
                best = (rows, width)
    return best


def available_bytes(device) -> int | None:
    """Free memory of a CUDA device, or the host's MemAvailable for the CPU (None: cannot tell)."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type == "cpu":
        try:
            with open("/proc/meminfo") as f:
                for line in f:
                    if line.startswith("MemAvailable:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            return None
    return None


def host_cache_default(device, free: int | None) -> int:
    """Default budget for the layer-split cache: half of what is free beyond the rest of the estimate on a GPU,
    a quarter of the available memory (at most 4 GiB) on the CPU."""
    import torch

    if free is None:
        return GIB
    if torch.device(device).type == "cuda":
        return max(0, free // 2)
    return min(4 * GIB, free // 4)


def sweep_estimate(source, domain, config, dtype, device, prepared, *, restore: bool, layer_cache: bool,
                   cache_budget: int | None) -> MemoryEstimate:
    """The estimate of a sweep over checkpoints `source`/`domain` (mergeir.models.Checkpoint) of the prepared split.
    With the layer cache, its budget defaults to `host_cache_default`; the cache never takes more than all the
    split's hidden states, nor less than its largest batch's."""
    import torch

    device = torch.device(device)
    host, mix = plan_bytes(source, domain, dtype, restore)
    model = model_bytes(config, dtype)
    sides = (prepared.queries.batches, prepared.corpus.batches)
    rows, width = largest_batch(sides)
    act = activation_bytes(config, rows, width, dtype) if rows else 0
    free = available_bytes(device)
    cache = 0
    if layer_cache:
        sizes = [hidden_bytes(ids, int(config.hidden_size), dtype.itemsize) for b in sides for ids, _ in b]
        if cache_budget is None:
            cache_budget = host_cache_default(device, None if free is None else free - model - mix - act)
        cache = max(max(sizes, default=0), min(cache_budget, sum(sizes)))
    return MemoryEstimate(str(device), model, mix, act, cache, host, rows * width, free)
