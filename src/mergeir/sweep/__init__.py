"""The α sweep: every point of an (alpha_lower, alpha_upper) grid merged in memory, its labelled split encoded,
searched and scored (bin/sweep.py), the parts of a split sweep gathered (bin/gather.py grid), and the α chosen
from the grid or taken from the paper (bin/report.py select-alpha).

`run_sweep` is the stage (`SWEEP_STAGE`: `grid.json` + `points/<al>_<au>/`): `AlphaSweep` mixes the model's weights
on its device from memory-mapped source and domain checkpoints, the layer-split cache (`layercache`) runs layers
[0, K) once per alpha_lower, and `sweep_estimate` (`MemoryEstimate`) checks the memory before anything loads;
`gather_grid` joins partial grids. `select_from_grid` picks the best point on the training queries (`pick`, ties to
the larger source weight; never on the evaluation split), `select_from_paper` reads the published α from the
experiment file (`SELECT_STAGE`); `load_grid` / `Grid` and `read_per_query` / `parse_alpha` / `parse_setting` read
grids and results for the report.

`run_search` (bin/sweep.py --search) is the α-profile search: a seeded optuna sampler over one α per group of
layers, each profile scored like a grid point into the same artifact, its encodes restarted from the deepest group
boundary whose prefix of alphas is unchanged (`prefixcache`).

Modules: `grid_search` (the stage), `search`, `alphasweep`, `layercache` and `prefixcache` (import torch; loaded
by the stages when used), `memory`, `gather`, `selection`.
"""

from .alphasweep import AlphaSweep
from .gather import gather_grid
from .grid_search import SWEEP_STAGE, run_sweep
from .memory import MemoryEstimate, sweep_estimate
from .search import run_search
from .selection import (SELECT_STAGE, Grid, load_grid, parse_alpha, parse_setting, pick, read_per_query,
                        select_from_grid, select_from_paper)

__all__ = [
    "AlphaSweep", "Grid", "MemoryEstimate", "SELECT_STAGE", "SWEEP_STAGE", "gather_grid", "load_grid", "parse_alpha",
    "parse_setting", "pick", "read_per_query", "run_search", "run_sweep", "select_from_grid", "select_from_paper",
    "sweep_estimate",
]
