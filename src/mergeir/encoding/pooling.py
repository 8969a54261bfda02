"""Pooling a batch's last hidden states into one vector per text: the `last` non-pad token (e5-mistral), the
masked `mean`, or the first token (`cls`); `pooled` adds the L2 normalisation every embedding gets."""

from __future__ import annotations

import numpy as np

from .tokenization import _check_pooling


def pool(hidden, attention_mask, pooling: str):
    """Pool (batch, seq, dim) hidden states: `last` non-pad token, masked `mean`, or first token (`cls`).

    `last` finds the last 1 in the mask, so it is right whichever side was padded.
    """
    _check_pooling(pooling)
    if pooling == "cls":
        return hidden[:, 0]
    import torch

    if pooling == "mean":  # summed in float32: a float16 sum over thousands of tokens overflows
        m = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * m).sum(dim=1, dtype=torch.float32) / m.sum(dim=1, dtype=torch.float32).clamp(min=1e-9)

    width = attention_mask.shape[1]
    last = width - 1 - attention_mask.flip(dims=[1]).argmax(dim=1)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]


def pooled(hidden, mask, pooling: str) -> np.ndarray:
    """L2-normalised float32 embeddings (rows, dim) on the host from a batch's last hidden states."""
    import torch.nn.functional as F

    return F.normalize(pool(hidden, mask, pooling).float(), p=2, dim=-1).cpu().numpy()
