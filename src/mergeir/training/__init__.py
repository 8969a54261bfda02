"""The LoRA baseline: training sets (mined, the authors', limited-data trials) and Tevatron's recipe on peft.

`mine_hard_negatives` builds a Tevatron training set from a collection's labelled split (`labelled_split`,
`MINE_STAGE`; bin/prepare_training.py mine), `extract_authors` unpacks and verifies the authors' own sets (authors),
`sample_trials` draws the limited-data trials (trials); `write_training_set` / `read_training_set` /
`read_sidecar` / `sidecar_path` are the jsonl and its sidecar (`Passage`, `TrainingExample`). `train_with_backend`
trains a LoRA adapter (bin/lora_train.py) with the in-process loop or the authors' Tevatron command, from a
`Recipe` (the paper's defaults; `targets_for`, `DEFAULT_DEEPSPEED`) with `sample_group` and `info_nce`.

Modules, one concept each: `data` (Tevatron jsonl + sidecar), `mining` (hard negatives), `authors` (the
authors' zips), `trials` (limited-data samples), `sampling` (train groups), `loss` (InfoNCE), `schedule`
(WarmupDecayLR), `recipe` (the paper's defaults), `trainer` (the loop), `tevatron` (the authors' command),
`deepspeed_engine` (ZeRO-3), `adapter` (the output folder).
"""

from .authors import extract_authors
from .data import Passage, TrainingExample, read_sidecar, read_training_set, sidecar_path, write_training_set
from .loss import info_nce
from .mining import MINE_STAGE, labelled_split, mine_hard_negatives
from .recipe import DEFAULT_DEEPSPEED, Recipe, targets_for
from .sampling import sample_group
from .trainer import train_with_backend
from .trials import sample_trials

__all__ = [
    "DEFAULT_DEEPSPEED", "MINE_STAGE", "Passage", "TrainingExample", "Recipe", "extract_authors", "info_nce",
    "labelled_split", "mine_hard_negatives", "read_sidecar", "read_training_set", "sample_group", "sample_trials",
    "sidecar_path", "targets_for", "train_with_backend", "write_training_set",
]
