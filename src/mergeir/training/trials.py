"""Limited-data trials: N seeded samples of M labelled queries from a training file (paper: 10 x ~50).

Trial i (named v1..vN, the authors' names) draws with its own seed, seed + i - 1, so any one trial can be
re-drawn alone; its sidecar records that seed, the source file's sha256 and the chosen query ids.
"""

from __future__ import annotations

import random
from pathlib import Path

from ..errors import MergeirError
from ..io import Stage, atomic_dir, sha256_file, write_json
from ..provenance import tool_versions
from .data import read_sidecar, read_training_set, sidecar_path, write_training_set

TRIALS_STAGE = Stage("trials", "trials.json", legacy=("trials", "m", "n", "source"))
MAX_TRIALS = 1000  # v1 .. v1000 (the paper: 10); --trials 10**30 wrote trial files until the disk filled


def trial_names(n: int) -> list[str]:
    return [f"v{i}" for i in range(1, n + 1)]


def draw_trial(query_ids: list[str], m: int, seed: int) -> list[str]:
    """M query ids drawn without replacement by random.Random(seed), returned in the file's order."""
    chosen = set(random.Random(seed).sample(query_ids, m))
    return [q for q in query_ids if q in chosen]


def sample_trials(train_file: str | Path, out: str | Path, *, n: int = 10, m: int = 50, seed: int = 0,
                  force: bool = False) -> list[Path]:
    """Write out/v1.jsonl .. vN.jsonl (+ sidecars) and out/trials.json; returns the trial files."""
    if not 1 <= n <= MAX_TRIALS:
        raise MergeirError(f"--trials must be within [1, {MAX_TRIALS}], got {n}")
    if m < 1:
        raise MergeirError(f"--queries must be at least 1, got {m}")
    train_file = Path(train_file)
    examples = read_training_set(train_file)
    if m > len(examples):
        raise MergeirError(f"--queries {m} is more than the {len(examples)} queries in {train_file}")
    source_side = read_sidecar(train_file) or {}
    source = {"path": str(train_file), "sha256": sha256_file(train_file),
              "collection": source_side.get("collection"), "split": source_side.get("split")}
    by_id = {e.query_id: e for e in examples}
    ids = [e.query_id for e in examples]
    files = []
    with atomic_dir(out, stage=TRIALS_STAGE, inputs={"--train": [train_file, sidecar_path(train_file)]},
                    force=force) as tmp:
        trials = []
        for i, name in enumerate(trial_names(n)):
            trial_seed = seed + i
            chosen = draw_trial(ids, m, trial_seed)
            write_training_set(tmp / f"{name}.jsonl", [by_id[q] for q in chosen], {
                "kind": "trial",
                "trial": name,
                "seed": trial_seed,
                "m": m,
                "source": source,
                "collection": source_side.get("collection"),
                "collection_checksum": source_side.get("collection_checksum"),
                "split": source_side.get("split"),
                "eval_split": source_side.get("eval_split"),
                "query_instruction": source_side.get("query_instruction"),
                "miner": source_side.get("miner"),
                "k": source_side.get("k"),
                "tool_versions": tool_versions(),
            })
            trials.append({"trial": name, "seed": trial_seed, "file": f"{name}.jsonl", "query_ids": chosen})
            files.append(Path(out) / f"{name}.jsonl")
        write_json(tmp / "trials.json", {"stage": TRIALS_STAGE.name, "n": n, "m": m, "seed": seed, "source": source,
                                         "trials": trials})
    return files
