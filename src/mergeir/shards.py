"""Scatter/gather: a corpus encoded as N shard jobs (one GPU each) and an α sweep split by alpha_lower, each
gathered into the artifact the single job would have written.

Encoding shards are cut from the unsharded run's own batches (the split is tokenized and batched whole, then
batch j goes to shard j mod N), so every row is computed in exactly the batch it would have been computed in and
the gathered embeddings are byte-identical to the unsharded ones (same device and software). A shard folder holds
the rows it computed (`queries.npy` + `queries.rows.npy` positions, the same for the corpus), every id, and the
full meta.json plus `"shard": {index, count, plan_sha256}`; it is not an embeddings artifact (read_embeddings
refuses it). A partial grid is a sweep folder whose grid.json names its rows in `"partial"`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import shutil
from pathlib import Path
from typing import Sequence

import numpy as np

from .embeddings import ENCODE_STAGE, Embeddings, read_ids, write_embeddings, write_ids
from .encoding import encode_prepared, split_embeddings
from .errors import MergeirError
from .io import atomic_dir, read_json, write_json
from .loading import backbone
from .sweep import SWEEP_STAGE

SIDES = ("queries", "corpus")


def check_shard(shard: int | None, shards: int | None) -> None:
    if (shard is None) != (shards is None):
        raise MergeirError("--shard and --shards go together")
    if shards is not None and not (shards >= 1 and 0 <= shard < shards):
        raise MergeirError(f"--shard must be within [0, --shards), got --shard {shard} --shards {shards}")


def plan_sha256(prepared, shards: int) -> str:
    """Names the batch plan (every batch's rows, both sides) and the shard count: shards of one run agree on it."""
    h = hashlib.sha256(f"shards={shards}".encode())
    for side in SIDES:
        for idx in getattr(prepared, side).index:
            h.update(side.encode() + np.asarray(idx, dtype=np.int64).tobytes())
    return h.hexdigest()


def encode_shard(model, prepared, shard: int, shards: int, *, progress: bool = False,
                 extra_meta: dict | None = None) -> tuple[dict, dict]:
    """({side: (rows, vectors)}, meta) of shard `shard` of `shards` of a prepared split (encoding.PreparedSplit)."""

    dim = int(backbone(model).config.hidden_size)
    first = 0  # batch numbers run over the queries' batches, then the corpus'
    out, full = {}, {}
    for side in SIDES:
        p = getattr(prepared, side)
        mine = [b for b in range(len(p.batches)) if (first + b) % shards == shard]
        first += len(p.batches)
        sub = dataclasses.replace(p, batches=[p.batches[b] for b in mine], index=[p.index[b] for b in mine])
        vec = encode_prepared(model, sub, progress=f"{side} shard {shard}" if progress else False) if mine else None
        full[side] = vec if vec is not None else np.zeros((p.n, dim), dtype=np.float32)
        rows = np.sort(np.concatenate([p.index[b] for b in mine])) if mine else np.zeros(0, dtype=np.int64)
        out[side] = (rows.astype(np.int64), np.ascontiguousarray(full[side][rows], dtype=np.float32))
    meta = split_embeddings(model, prepared, full["queries"], full["corpus"], extra_meta).meta
    return out, {**meta, "shard": {"index": shard, "count": shards, "plan_sha256": plan_sha256(prepared, shards)}}


def write_shard(folder: Path, prepared, parts: dict, meta: dict) -> None:

    ids = {"queries": prepared.query_ids, "corpus": prepared.corpus_ids}
    for side in SIDES:
        rows, vectors = parts[side]
        np.save(folder / f"{side}.npy", vectors, allow_pickle=False)
        np.save(folder / f"{side}.rows.npy", rows, allow_pickle=False)
        write_ids(folder / f"{side}.ids", ids[side])
    write_json(folder / "meta.json", {**meta, "n_queries": len(prepared.query_ids),
                                      "n_corpus": len(prepared.corpus_ids)})


def _load(path: Path, what: str, dtype) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise MergeirError(f"{path}: not a readable {what} ({e})") from None
    if arr.dtype != dtype:
        raise MergeirError(f"{path}: {what} must be {np.dtype(dtype).name}, got {arr.dtype}")
    return arr


def gather_embeddings(shard_dirs: Sequence[str | os.PathLike], out: str | os.PathLike, force: bool = False) -> dict:
    """Write the embeddings artifact of all the shards of one run (byte-identical to the unsharded run's)."""

    dirs = [Path(d) for d in shard_dirs]
    if not dirs:
        raise MergeirError("no --shard folder given")
    metas = []
    for d in dirs:
        meta = read_json(d / "meta.json", "shard meta")
        if not isinstance(meta.get("shard"), dict):
            raise MergeirError(f"{d}: not an encoding shard (meta.json has no \"shard\"; written by bin/encode.py "
                               "--shard I --shards N)")
        metas.append(meta)
    count = metas[0]["shard"]["count"]
    seen = sorted(m["shard"]["index"] for m in metas)
    if seen != list(range(count)):
        raise MergeirError(f"shards {seen} given, the run has {count} (0 .. {count - 1}, each once)")
    base = {k: v for k, v in metas[0].items() if k != "shard"}
    for d, m in zip(dirs, metas):
        if m["shard"]["plan_sha256"] != metas[0]["shard"]["plan_sha256"] or {k: v for k, v in m.items()
                                                                            if k != "shard"} != base:
            raise MergeirError(f"{d} is a shard of another run than {dirs[0]} (its meta.json or batch plan differ)")
    arrays, ids = {}, {}
    for side in SIDES:
        ids[side] = read_ids(dirs[0] / f"{side}.ids")
        for d in dirs[1:]:
            if read_ids(d / f"{side}.ids") != ids[side]:
                raise MergeirError(f"{d}: {side}.ids differ from {dirs[0]}")
        n, full, filled = len(ids[side]), None, np.zeros(len(ids[side]), dtype=bool)
        for d in dirs:
            rows = _load(d / f"{side}.rows.npy", "row index", np.int64)
            vec = _load(d / f"{side}.npy", "embeddings array", np.float32)
            if vec.ndim != 2 or rows.ndim != 1 or len(rows) != len(vec) or (len(rows) and (rows.min() < 0 or
                                                                                          rows.max() >= n)):
                raise MergeirError(f"{d}: {side}.npy and {side}.rows.npy do not fit {n} {side}")
            if filled[rows].any():
                raise MergeirError(f"{d}: {side} rows computed by another shard too")
            full = np.zeros((n, vec.shape[1]), dtype=np.float32) if full is None else full
            full[rows] = vec
            filled[rows] = True
        if not filled.all():
            raise MergeirError(f"{side}: {int((~filled).sum())} rows computed by no shard")
        arrays[side] = full
    inputs = {"--shard": [str(d) for d in dirs]}
    with atomic_dir(out, stage=ENCODE_STAGE, inputs=inputs, force=force) as tmp:
        write_embeddings(tmp, Embeddings(arrays["queries"], ids["queries"], arrays["corpus"], ids["corpus"], base),
                         atomic=False)
    return base


def gather_grid(part_dirs: Sequence[str | os.PathLike], out: str | os.PathLike, force: bool = False) -> dict:
    """Write the grid artifact of a sweep run as partial grids (`bin/sweep.py --alpha-lower A`): the points of
    every part and the grid.json the whole sweep would have written."""

    dirs = [Path(d) for d in part_dirs]
    if not dirs:
        raise MergeirError("no --part folder given")
    docs = [read_json(d / "grid.json", "grid") for d in dirs]
    for d, doc in zip(dirs, docs):
        if not isinstance(doc.get("partial"), dict):
            raise MergeirError(f"{d}: not a partial grid (grid.json has no \"partial\"; written by bin/sweep.py "
                               "--alpha-lower A)")

    def rest(doc):
        return {k: v for k, v in doc.items() if k not in ("points", "partial")}

    base = rest(docs[0])
    for d, doc in zip(dirs, docs):
        if rest(doc) != base:
            diff = sorted(k for k in set(base) | set(rest(doc)) if base.get(k) != doc.get(k))
            raise MergeirError(f"{d} is part of another sweep than {dirs[0]} (grid.json differs in {', '.join(diff)})")
    lowers = [a for doc in docs for a in doc["partial"]["alpha_lower"]]
    grid = base["grid"]
    for a in lowers:
        if sum(math.isclose(a, b) for b in lowers) > 1:
            raise MergeirError(f"alpha_lower {a} is in more than one --part")
    missing = [g for g in grid if not any(math.isclose(g, a) for a in lowers)]
    if missing:
        raise MergeirError(f"no --part holds alpha_lower {', '.join(map(str, missing))} of the grid")
    points = sorted((p for doc in docs for p in doc["points"]), key=lambda p: (p["alpha_lower"], p["alpha_upper"]))
    full = {k: (points if k == "points" else v) for k, v in docs[0].items() if k != "partial"}
    with atomic_dir(out, stage=SWEEP_STAGE, inputs={"--part": [str(d) for d in dirs]}, force=force) as tmp:
        for d, doc in zip(dirs, docs):
            for p in doc["points"]:
                src = d / p["dir"]
                if not (src / "metrics.json").is_file():
                    raise MergeirError(f"{d}: point folder {p['dir']} is missing or incomplete")
                shutil.copytree(src, tmp / p["dir"])
        write_json(tmp / "grid.json", full)
    return full
