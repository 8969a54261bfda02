"""The merge weights α (alpha_lower, alpha_upper): their range, the grid syntax and the authors' folder code.

α is the *source's* weight: α·source + (1-α)·domain, alpha_lower for the layers below the split, alpha_upper for
the rest (docs/paper.md, "Merging")."""

from __future__ import annotations

import math
from typing import Sequence

from ..errors import MergeirError

DEFAULT_GRID = (0.0, 0.25, 0.5, 0.75, 1.0)


def check_alpha(value: float, option: str) -> float:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and 0.0 <= value <= 1.0):
        raise MergeirError(f"{option} must be within [0, 1] (the source's weight), got {value}")
    return float(value)


def alpha_code(alpha: float) -> str:
    """The authors' folder code: the decimal without its point (0.0 -> 00, 0.25 -> 025, 0.5 -> 05, 1.0 -> 10).
    Built from repr, so two different alphas never share a folder."""
    return repr(float(alpha)).replace(".", "")


ALPHA_TOLERANCE = 1e-9


def same_alpha(a: float, b: float) -> bool:
    """The one equality of alphas in a grid (the sweep, its gathering, the experiment's merge.grid): within 1e-9,
    so 0.5 and 0.5 + 1e-11 are one grid point, never two. Absolute, not only relative: alphas lie in [0, 1], and a
    relative tolerance alone held 0.0 and 1e-11 apart (two points whose merges are the same weights in float32)."""
    return math.isclose(a, b, rel_tol=ALPHA_TOLERANCE, abs_tol=ALPHA_TOLERANCE)


def parse_grid(text: str | Sequence[float], what: str = "--grid") -> list[float]:
    """'0,0.25,0.5' -> [0.0, 0.25, 0.5]: each within [0, 1], no duplicates (same_alpha), kept in the given order.
    what: the option or key the values came from, for the message."""
    items = text.split(",") if isinstance(text, str) else list(text)
    out: list[float] = []
    for item in items:
        try:
            a = float(item)
        except (TypeError, ValueError):
            raise MergeirError(f"{what}: {item!r} is not a number") from None
        check_alpha(a, f"{what} value")
        same = next((b for b in out if same_alpha(a, b)), None)
        if same is not None:
            twice = "appears twice" if a == same else \
                f"and {same!r} are one alpha (they differ by less than {ALPHA_TOLERANCE})"
            raise MergeirError(f"{what}: {a!r} {twice}")
        out.append(a)
    if not out:
        raise MergeirError(f"{what} is empty")
    return out
