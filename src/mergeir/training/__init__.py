"""The LoRA baseline: training sets (mined, the authors', limited-data trials) and Tevatron's recipe on peft.

Modules, one concept each: `data` (Tevatron jsonl + sidecar), `mining` (hard negatives), `authors` (the
authors' zips), `trials` (limited-data samples), `sampling` (train groups), `loss` (InfoNCE), `schedule`
(WarmupDecayLR), `recipe` (the paper's defaults), `trainer` (the loop), `tevatron` (the authors' command).
"""

from .data import Passage, TrainingExample, read_sidecar, read_training_set, sidecar_path, write_training_set
from .loss import info_nce
from .recipe import Recipe, targets_for
from .sampling import sample_group

__all__ = [
    "Passage", "TrainingExample", "Recipe", "info_nce", "read_sidecar", "read_training_set", "sample_group",
    "sidecar_path", "targets_for", "write_training_set",
]
