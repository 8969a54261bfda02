"""Layer-split cache for the α sweep: the hidden states after layer K depend on alpha_lower only.

For each alpha_lower, the input embeddings and layers [0, K) run once over the split's texts (source embeddings
are restored, or mixed with alpha_lower: either way the lower part does not depend on alpha_upper); then for each
alpha_upper only layers [K, n) and the final norm run, from the cached hidden states. On the paper's 5 x 5 grid with
K = n/2 that is 5 lower passes instead of 25: 40 % of the grid's compute saved.

The texts are processed in chunks of consecutive batches whose cached hidden states fit `budget_bytes` (on the
model's device); a chunk runs its lower pass, then every alpha_upper in turn. Each further chunk re-mixes the upper
half once per alpha_upper, visiting them in the reverse order of the previous chunk so that consecutive points
share their upper weights. The model's own forward runs each part (its layer list cut to the part, its final norm
or its embedding module bypassed), so masks and positions are built exactly as in a plain forward.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Sequence

import numpy as np
import torch.nn as nn

from ..encoding.batching import Halving, Rows
from ..encoding.loading import backbone, model_device
from ..encoding.pooling import pooled
from .memory import hidden_bytes

# family -> (layer list, final norm applied after the last layer, embedding module that still runs on inputs_embeds)
PARTS = {"mistral": ("layers", "norm", None), "bert": ("encoder.layer", None, "embeddings")}


def supported(model, split_layer: int) -> bool:
    """Whether the cache applies: a known family and a non-empty lower part (K = 0 has nothing to cache)."""
    return getattr(backbone(model).config, "model_type", None) in PARTS and split_layer > 0


def _resolve(root, dotted: str):
    parent = root
    *path, name = dotted.split(".")
    for p in path:
        parent = getattr(parent, p)
    return parent, name


@contextmanager
def _part(body, start: int, end: int, lower: bool, upper: bool | None = None):
    """The body running layers [start, end) only; a lower part stops before the final norm, an upper part
    starts from given hidden states (its embedding module passes them through). `upper` defaults to `not lower`;
    a middle part (the α search's prefix cache) is neither."""
    upper = not lower if upper is None else upper
    layers_at, final_at, embed_at = PARTS[body.config.model_type]
    swaps = []
    parent, name = _resolve(body, layers_at)
    swaps.append((parent, name, nn.ModuleList(list(getattr(parent, name))[start:end])))
    if not upper and final_at:
        swaps.append((*_resolve(body, final_at), nn.Identity()))
    if not lower and embed_at:
        swaps.append((*_resolve(body, embed_at), _Passthrough()))
    saved = [(parent, name, getattr(parent, name)) for parent, name, _ in swaps]
    try:
        for parent, name, module in swaps:
            setattr(parent, name, module)
        yield
    finally:
        for parent, name, module in saved:
            setattr(parent, name, module)


class _Passthrough(nn.Module):
    """Stands in for an embedding module that would otherwise add positions to given hidden states."""

    def forward(self, *args, inputs_embeds=None, **kwargs):
        return inputs_embeds


def chunks(batches: list, hidden_size: int, itemsize: int, budget_bytes: int) -> list[list]:
    """Consecutive batches whose hidden states fit the budget (a batch larger than it forms its own chunk)."""
    out, size = [[]], 0
    for b in batches:
        n = hidden_bytes(b[1].ids, hidden_size, itemsize)
        if out[-1] and size + n > budget_bytes:
            out.append([])
            size = 0
        out[-1].append(b)
        size += n
    return [c for c in out if c]


def cache_chunks(prepared, hidden_size: int, itemsize: int, budget_bytes: int) -> list[list]:
    """The chunks `encode_uppers` runs: every (side, Rows) batch of the prepared split, queries first, cut by
    `chunks` (public so that a test can see the cache's memory plan)."""
    sides = {"queries": prepared.queries, "corpus": prepared.corpus}
    batches = [(side, Rows(ids, mask, idx))
               for side, p in sides.items() for (ids, mask), idx in zip(p.batches, p.index)]
    return chunks(batches, hidden_size, itemsize, budget_bytes)


def encode_uppers(model, sweep, prepared, alpha_lower: float, uppers: Sequence[float], budget_bytes: int,
                  progress: bool = False) -> dict[float, tuple[np.ndarray, np.ndarray]]:
    """{alpha_upper: (query embeddings, document embeddings)} of the points (alpha_lower, alpha_upper), visiting
    `uppers` in the given order first; the model is left at the last point visited (`sweep.point`)."""
    import torch
    from tqdm.auto import tqdm

    body = backbone(model)
    device = model_device(model)
    k, n = sweep.split_layer, sweep.source.num_layers
    pooling = prepared.queries.pooling
    sides = {"queries": prepared.queries, "corpus": prepared.corpus}
    dim = int(body.config.hidden_size)
    out = {au: {side: np.empty((p.n, dim), dtype=np.float32) for side, p in sides.items()} for au in uppers}

    def lower(rows):
        ids, mask = rows.ids.to(device), rows.mask.to(device)
        return body(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state

    def upper(rows):
        mask = rows.mask.to(device)
        return pooled(body(inputs_embeds=rows.hidden, attention_mask=mask, use_cache=False).last_hidden_state,
                      mask, pooling)

    run_lower, run_upper = Halving(lower), Halving(upper)
    order = list(uppers)
    parts = cache_chunks(prepared, dim, sweep.dtype.itemsize, budget_bytes)
    total = sum(len(r) for part in parts for _, r in part) * (1 + len(order))
    bar = tqdm(total=total, desc=f"alpha_lower {alpha_lower}", unit="text", file=sys.stderr, disable=not progress,
               leave=False)
    was_training = body.training
    body.eval()
    try:
        with torch.inference_mode():
            for part in parts:
                sweep.set(alpha_lower, order[0])
                cached = []
                with _part(body, 0, k, lower=True):
                    for side, rows in part:
                        for piece, hidden in run_lower(rows):
                            cached.append((side, Rows(piece.ids, piece.mask, piece.index, hidden)))
                        bar.update(len(rows))
                for au in order:
                    sweep.set(alpha_lower, au)
                    with _part(body, k, n, lower=False):
                        for side, rows in cached:
                            for piece, emb in run_upper(rows):
                                out[au][side][piece.index] = emb
                            bar.update(len(rows))
                del cached
                order.reverse()  # the next chunk starts at the alpha_upper this one ended with
    finally:
        bar.close()
        body.train(was_training)
    if run_lower.splits or run_upper.splits:
        print(f"warning: alpha_lower {alpha_lower}: out of device memory; batches were halved "
              f"{run_lower.splits + run_upper.splits} times and went on", file=sys.stderr)
    return {au: (v["queries"], v["corpus"]) for au, v in out.items()}
