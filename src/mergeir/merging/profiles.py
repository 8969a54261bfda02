"""α profiles: one source weight per group of consecutive layers (K groups; K = 2 is the paper's
(alpha_lower, alpha_upper) pair). Parsing, and the folder code of a profile (the authors' codes joined by `_`, so a
2-group profile's folder is the grid point's: `05_10`)."""

from __future__ import annotations

import math
from typing import Sequence

from ..errors import MergeirError
from .alphas import alpha_code, check_alpha


def parse_profile(text: str | Sequence[float], what: str = "--profile", groups: int | None = None) -> tuple[float, ...]:
    """'0.25,0.5,1' -> (0.25, 0.5, 1.0): each within [0, 1]; `groups`: the number of values required."""
    items = [x for x in text.split(",")] if isinstance(text, str) else list(text)
    out = []
    for item in items:
        try:
            a = float(item)
        except (TypeError, ValueError):
            raise MergeirError(f"{what}: {item!r} is not a number") from None
        out.append(check_alpha(a, f"{what} value"))
    if not out:
        raise MergeirError(f"{what} is empty")
    if groups is not None and len(out) != groups:
        raise MergeirError(f"{what} has {len(out)} alphas but there are {groups} layer groups: give one per group")
    return tuple(out)


def profile_code(alphas: Sequence[float]) -> str:
    return "_".join(alpha_code(a) for a in alphas)


# the finest α lattice a search may use: neighbours stay distinct alphas for same_alpha (1e-9 apart is one alpha),
# and optuna can lay it out ((1 - 0) / step fits its 28-digit Decimal: --step 1e-300 crashed after the models loaded)
MIN_STEP = 1e-6


def lattice_profiles(step: float, groups: int, cap: int) -> int:
    """How many distinct profiles of `groups` alphas lie on the lattice 0, step, 2*step, ... <= 1 (optuna's
    suggest_float(0, 1, step=step), rounded to 10 decimals as the search rounds them), counted up to `cap`: a
    search asked for more can never meet its budget (it ran forever: `--budget 10**30`)."""
    per_group = min(math.floor(1 / step + 1e-9), 10**10) + 1
    count = 1
    for _ in range(groups):
        count *= per_group
        if count >= cap:
            return cap
    return count
