"""Train-group sampling as Tevatron's `TrainDataset.__getitem__` does it (legacy positive/negative format).

A group is 1 positive + (group_size - 1) negatives for one query:
- positive: positives[(item + seed + epoch) % len(positives)] — a different positive each epoch;
- enough negatives: shuffle them with a generator seeded by (item + seed), repeat the list twice, take the
  window starting at epoch x (group_size - 1) mod len(negatives) — fresh negatives each epoch;
- fewer negatives than group_size - 1: sample that many WITH replacement;
- none while some are needed: an error naming the query (Tevatron would crash with an IndexError).

Tevatron draws the with-replacement case from the process-global `random`; here it comes from a generator
seeded by (seed, item, epoch), so a group depends only on those three numbers.
"""

from __future__ import annotations

import random

from ..errors import MergeirError
from .data import Passage, TrainingExample


def sample_group(
    example: TrainingExample, group_size: int, *, item: int, epoch: int, seed: int
) -> tuple[Passage, list[Passage]]:
    """(positive, negatives) for the training example at position `item` of the file, in `epoch`."""
    if group_size < 1:
        raise MergeirError("--group-size must be at least 1")
    hashed_seed = item + seed  # Tevatron: hash(item + seed), and hash(int) is the int itself
    positive = example.positives[(hashed_seed + epoch) % len(example.positives)]
    need = group_size - 1
    negs = list(example.negatives)
    if need == 0:
        return positive, []
    if not negs:
        raise MergeirError(
            f"query {example.query_id} has no negative_passages but --group-size {group_size} needs {need}"
        )
    if len(negs) < need:
        rng = random.Random(f"{seed}:{item}:{epoch}")
        return positive, rng.choices(negs, k=need)
    random.Random(hashed_seed).shuffle(negs)
    offset = epoch * need % len(negs)
    return positive, (negs * 2)[offset : offset + need]
