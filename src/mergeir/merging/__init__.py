"""Merging: a source retriever merged layer-wise with a same-architecture domain model, written and verified.

α is the weight of the SOURCE model (1.0 = pure source): layers [0, K) get alpha_lower, [K, n) alpha_upper (K
defaults to n // 2); the paper then restores the source's own input embeddings (docs/paper.md, "Merging").

`merge` is the stage (bin/merge.py): mergekit (`METHODS`, `METHOD_HELP`) run on both checkpoints shown in one key
layout (`write_view`, `mergekit_config`, `run_mergekit`), its output re-keyed to the source's layout and verified
tensor by tensor (`write_merged`). The α values themselves: `check_alpha`, the grid syntax `parse_grid` /
`DEFAULT_GRID` / `same_alpha`, and the authors' folder code `alpha_code`. The arithmetic both the merge and the
in-memory sweep (mergeir.sweep) use: `make_slices`, `alpha_for`, `linear_mix`, `all_finite`. A source and its
LoRA adapter folded into one model folder: `fold_adapter` (`FOLD_STAGE`).

Modules: `layerwise` (the stage), `alphas`, `mixing`, `mergekit_run`, `merged_weights`, `fold`.
"""

from .alphas import DEFAULT_GRID, alpha_code, check_alpha, parse_grid, same_alpha
from .fold import FOLD_STAGE, fold_adapter
from .layerwise import MERGE_STAGE, merge
from .merged_weights import CLOSED_FORM, SHARD_BYTES, VERIFY_ALL_BELOW_BYTES, write_merged
from .mergekit_run import (MERGEKIT_ARCH, METHOD_HELP, METHODS, NEEDS_BASE, NEEDS_DENSITY, mergekit_config,
                           run_mergekit, write_view)
from .mixing import Slice, all_finite, alpha_for, linear_mix, make_slices

__all__ = [
    "CLOSED_FORM", "DEFAULT_GRID", "FOLD_STAGE", "MERGEKIT_ARCH", "MERGE_STAGE", "METHODS", "METHOD_HELP", "NEEDS_BASE",
    "NEEDS_DENSITY", "SHARD_BYTES", "Slice", "VERIFY_ALL_BELOW_BYTES", "all_finite", "alpha_code", "alpha_for",
    "check_alpha", "fold_adapter", "linear_mix", "make_slices", "merge", "mergekit_config", "parse_grid",
    "run_mergekit", "same_alpha", "write_merged", "write_view",
]
