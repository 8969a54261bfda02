"""The weight dtypes of every stage (merge, encode, sweep, the experiment file, the CLI choices): one list."""

from __future__ import annotations

from ..errors import MergeirError

DTYPES = ("float32", "float16", "bfloat16")


def check_dtype(name: str, option: str = "--dtype") -> str:
    """The name itself, or one error line; needs no torch, so a bad value fails before any model loads."""
    if name not in DTYPES:
        raise MergeirError(f"{option} must be one of {', '.join(DTYPES)}, got {name!r}")
    return name


def torch_dtype(name: str):
    import torch

    return getattr(torch, check_dtype(name))
