"""The α search's prefix cache: the hidden states at a group boundary depend only on the α of the groups before it.

A profile (one α per group of consecutive layers) is encoded from the deepest cached boundary whose prefix of alphas
equals the previous profile's: only the groups after it run (and only their tensors are re-mixed, `AlphaSweep`
rewrites what changed). With two groups this is the layer-split cache's saving (layercache) for profiles evaluated
in any order; a search that moves only the upper groups pays only for them.

Memory: a boundary's cache holds one hidden state per padded token of the whole split (queries and corpus) on the
model's device; the first `keep` boundaries that fit `budget_bytes` are cached (none: every profile runs every
layer). Each part runs through the model's own forward (layercache's `_part`), so masks and positions are built as
in a plain forward: on CPU the embeddings equal a plain forward's.
"""

from __future__ import annotations

import sys

import numpy as np

from ..encoding.batching import Halving, Rows
from ..encoding.loading import backbone, model_device
from ..encoding.pooling import pooled
from .layercache import _part
from .memory import hidden_bytes


def split_batches(prepared) -> list[tuple[str, Rows]]:
    """Every (side, Rows) batch of a prepared split, queries first."""
    sides = {"queries": prepared.queries, "corpus": prepared.corpus}
    return [(side, Rows(ids, mask, idx)) for side, p in sides.items() for (ids, mask), idx in zip(p.batches, p.index)]


class PrefixEncoder:
    """`encode(profile)` -> (query vectors, document vectors) of the merge of `profile` over `bounds` (layer
    boundaries of the groups, `mixing.group_bounds`), reusing the hidden states of the longest unchanged prefix."""

    def __init__(self, model, sweep, prepared, bounds: list[int], budget_bytes: int):
        self.model, self.sweep, self.prepared, self.bounds = model, sweep, prepared, list(bounds)
        self.body = backbone(model)
        self.device = model_device(model)
        self.batches = split_batches(prepared)
        self.dim = int(self.body.config.hidden_size)
        per_boundary = sum(hidden_bytes(r.ids, self.dim, sweep.dtype.itemsize) for _, r in self.batches)
        groups = len(self.bounds) - 1
        self.keep = min(groups - 1, int(budget_bytes // per_boundary) if per_boundary else groups - 1)
        self.states: list[list[tuple[str, Rows]] | None] = [None] * self.keep  # states[j]: after group j
        self.profile: tuple[float, ...] | None = None  # the profile the cached states were computed under
        self.groups_run = 0  # layer groups run over the encoder's life (a full forward runs all of them)
        self.splits = 0

    def reusable(self, profile) -> int:
        """The number of leading groups whose output is cached for this profile's prefix (0: run from the input)."""
        if self.profile is None:
            return 0
        j = 0
        while j < self.keep and self.states[j] is not None and profile[j] == self.profile[j]:
            j += 1
        return j

    def encode(self, profile) -> tuple[np.ndarray, np.ndarray]:
        import torch

        profile = tuple(float(a) for a in profile)
        start = self.reusable(profile)
        self.sweep.set_profile(self.bounds, profile)
        for j in range(start, self.keep):
            self.states[j] = None  # computed under other alphas: replaced below
        self.profile = profile
        groups = len(self.bounds) - 1
        sides = {"queries": self.prepared.queries, "corpus": self.prepared.corpus}
        out = {side: np.empty((p.n, self.dim), dtype=np.float32) for side, p in sides.items()}
        rows = self.batches if start == 0 else self.states[start - 1]
        was_training = self.body.training
        self.body.eval()
        try:
            with torch.inference_mode():
                for g in range(start, groups):
                    first, last = g == 0, g == groups - 1
                    run = Halving(self._forward(first, last))
                    nxt = []
                    with _part(self.body, self.bounds[g], self.bounds[g + 1], lower=first, upper=last):
                        for side, r in rows:
                            for piece, result in run(r):
                                if last:
                                    out[side][piece.index] = result
                                else:
                                    nxt.append((side, Rows(piece.ids, piece.mask, piece.index, result)))
                    self.splits += run.splits
                    self.groups_run += 1
                    if not last and g < self.keep:
                        self.states[g] = nxt
                    rows = nxt
        finally:
            self.body.train(was_training)
        if self.splits:
            print(f"warning: profile {profile}: out of device memory; batches were halved {self.splits} times "
                  "and went on", file=sys.stderr)
            self.splits = 0
        return out["queries"], out["corpus"]

    def _forward(self, first: bool, last: bool):
        body, device, pooling = self.body, self.device, self.prepared.queries.pooling

        def fn(rows: Rows):
            mask = rows.mask.to(device)
            if first:
                hidden = body(input_ids=rows.ids.to(device), attention_mask=mask, use_cache=False).last_hidden_state
            else:
                hidden = body(inputs_embeds=rows.hidden, attention_mask=mask, use_cache=False).last_hidden_state
            return pooled(hidden, mask, pooling) if last else hidden

        return fn
