"""Batches for encoding: cut by count or by a padded-token budget, and run so that a device out-of-memory error
halves the batch and goes on in the same process.

Texts are sorted longest first, so a batch's padded size is its row count times its first text's length. A
token budget (`--max-batch-tokens`) keeps that product under a bound: a 7B encoder then holds a steady memory use
across a corpus whose lengths span 10 to 4,096 tokens, and short queries run in large batches. A batch is the same
rows whichever way it was cut, so embeddings agree with count batches up to float rounding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..errors import MergeirError, OutOfMemory


def check_budget(batch_size: int, max_batch_tokens: int | None, max_length: int) -> None:
    if batch_size < 1:
        raise MergeirError(f"--batch-size must be >= 1, got {batch_size}")
    if max_batch_tokens is not None and max_batch_tokens < max_length:
        raise MergeirError(f"--max-batch-tokens {max_batch_tokens} is below --max-length {max_length}: the longest "
                           "text would not fit a batch")


def cut(lengths: np.ndarray, batch_size: int, max_batch_tokens: int | None = None) -> list[np.ndarray]:
    """Row indices per batch: longest first (stable, so equal lengths keep input order), then `batch_size` rows
    per batch, or with `max_batch_tokens` as many rows as keep rows x longest length within the budget."""
    order = np.argsort(-lengths, kind="stable")
    if max_batch_tokens is None:
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    batches, start = [], 0
    while start < len(order):
        rows = max(1, max_batch_tokens // max(1, int(lengths[order[start]])))  # the first text is the longest
        batches.append(order[start : start + rows])
        start += rows
    return batches


@dataclass
class Rows:
    """Some rows of a batch: right-padded ids and mask, their positions in the input, and (layer-split cache)
    the hidden states computed for them so far."""

    ids: Any
    mask: Any
    index: np.ndarray
    hidden: Any = None

    def __len__(self) -> int:
        return len(self.index)

    @property
    def tokens(self) -> int:
        return int(self.ids.shape[0] * self.ids.shape[1])

    def halves(self) -> tuple["Rows", "Rows"]:
        """Two halves, each cut to its own longest row (right padding: trailing columns of pads only)."""
        mid = len(self) // 2
        out = []
        for sl in (slice(0, mid), slice(mid, len(self))):
            mask = self.mask[sl]
            width = int(mask.sum(dim=1).max()) if mask.numel() else 0
            hidden = None if self.hidden is None else self.hidden[sl, :width]
            out.append(Rows(self.ids[sl, :width], mask[:, :width], self.index[sl], hidden))
        return out[0], out[1]


def is_oom(e: BaseException) -> bool:
    """A device allocator's out-of-memory error (CUDA, and other accelerators torch reports the same way)."""
    import torch

    return isinstance(e, torch.OutOfMemoryError)


def release_cached_memory() -> None:
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


class Halving:
    """Run `fn(rows)` on batches; a device out-of-memory error inside a batch splits it into halves, which run in
    turn (recursively, down to single rows). Batches at least as large (padded tokens) as one that failed are split
    before they are tried. A single text that does not fit raises OutOfMemory (the CLIs exit 75).

    `fn` is the seam: encoding passes the model's forward; tests pass a function that fails on demand.
    """

    def __init__(self, fn: Callable[[Rows], Any], oom: Callable[[BaseException], bool] = is_oom,
                 release: Callable[[], None] = release_cached_memory):
        self.fn, self.oom, self.release = fn, oom, release
        self.limit = math.inf  # padded tokens from which a batch is split up front
        self.splits = 0

    def __call__(self, rows: Rows) -> list[tuple[Rows, Any]]:
        """[(rows, fn(rows))] for the pieces that ran, covering `rows` in order."""
        todo, done = [rows], []
        while todo:
            r = todo.pop(0)
            if r.tokens >= self.limit and len(r) > 1:
                todo[:0] = r.halves()
                self.splits += 1
                continue
            failed = False
            try:
                done.append((r, self.fn(r)))
            except Exception as e:  # noqa: BLE001 - only out-of-memory is handled; the rest re-raised
                if not self.oom(e):
                    raise
                failed = True  # handled outside the except block, so the failed batch's tensors can be freed
            if failed:
                self.release()
                if len(r) == 1:
                    raise OutOfMemory(
                        f"out of memory on a single text of {r.ids.shape[1]} tokens (after {self.splits} batch "
                        "halvings): lower --max-length, use a smaller --dtype, or a device with more memory")
                self.limit = min(self.limit, r.tokens)
                todo[:0] = r.halves()
                self.splits += 1
        return done
