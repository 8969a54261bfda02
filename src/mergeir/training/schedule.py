"""DeepSpeed's WarmupDecayLR (the schedule in Tevatron's ZeRO-3 config), for the plain-torch loop.

DeepSpeed's semantics, kept exactly so a run with and without `--deepspeed` sees the same learning rates:
the scheduler starts at iteration -1 (lr = warmup_min_lr) and is stepped after each optimizer step; at
iteration i < warmup the factor is log(i + 1) / log(warmup) (or i / warmup for linear); afterwards it decays
linearly to 0 at total_steps. warmup is raised to at least 2, as DeepSpeed does.
"""

from __future__ import annotations

import math


def warmup_decay_factor(iteration: int, warmup_steps: int, total_steps: int, warmup_type: str = "log") -> float:
    """Fraction of the way from warmup_min_lr (0 here) to the peak lr at scheduler iteration `iteration`."""
    if iteration < 0:
        return 0.0
    warmup = max(2, warmup_steps)
    if iteration < warmup:
        if warmup_type == "log":
            return math.log(iteration + 1) / math.log(warmup)
        return iteration / warmup
    return max(0.0, (total_steps - iteration) / max(1.0, total_steps - warmup))


def warmup_decay_lr(optimizer, warmup_steps: int, total_steps: int, warmup_type: str = "log"):
    """A LambdaLR whose k-th value (k = number of step() calls) is DeepSpeed's value at iteration k - 1."""
    from torch.optim.lr_scheduler import LambdaLR

    return LambdaLR(optimizer, lambda k: warmup_decay_factor(k - 1, warmup_steps, total_steps, warmup_type))
