"""Scatter/gather of an encode: a corpus encoded as N shard jobs (one GPU each), gathered into the artifact the
single job would have written.

Shards are cut from the unsharded run's own batches (the split is tokenized and batched whole, then
batch j goes to shard j mod N), so every row is computed in exactly the batch it would have been computed in and
the gathered embeddings are byte-identical to the unsharded ones (same device and software). A shard folder holds
the rows it computed (`queries.npy` + `queries.rows.npy` positions, the same for the corpus), every id, and the
full meta.json plus `"shard": {index, count, plan_sha256, attempt}`; it is not an embeddings artifact (read_embeddings
refuses it). The α sweep split by alpha_lower is gathered by mergeir.sweep.gather, with the checks below of what the
parts of one run must agree on.

A shard retried after running out of GPU memory (`--attempt N`, the pipeline's retry) keeps the run's batch plan
and computes each of its batches in 2^(N-1) pieces, so it still gathers with its siblings (its rows agree with the
unsharded run's to float rounding, not necessarily bit for bit). Gathering compares what determines the
embeddings - the weights (fingerprint, not the folder they were read from), adapter, collection, split, pooling,
max length, instruction, dtype, tools - and the batch plan, never how a shard was batched on its device. Every
vector must be finite.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import numbers
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import MergeirError
from ..io import atomic_dir, read_json_object, write_json
from .embeddings import ENCODE_STAGE, Embeddings, read_ids, write_embeddings, write_ids
from .encode import encode_prepared, split_embeddings
from .loading import backbone

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


def _pieces(batch, idx, attempt: int) -> tuple[list, list]:
    """A planned batch (right-padded ids, mask; longest row first) cut into 2^(attempt-1) runs of consecutive
    rows, each trimmed to its own longest row: what a retry after running out of memory computes at once."""
    rows = max(1, len(idx) >> (attempt - 1))
    if rows >= len(idx):
        return [batch], [idx]
    ids, mask = batch
    batches, index = [], []
    for start in range(0, len(idx), rows):
        m = mask[start:start + rows]
        width = int(m.sum(dim=1).max())
        batches.append((ids[start:start + rows, :width], m[:, :width]))
        index.append(idx[start:start + rows])
    return batches, index


def encode_shard(model, prepared, shard: int, shards: int, *, progress: bool = False,
                 extra_meta: dict | None = None, attempt: int = 1) -> tuple[dict, dict]:
    """({side: (rows, vectors)}, meta) of shard `shard` of `shards` of a prepared split (encoding.PreparedSplit).

    `attempt` > 1 (a retry after running out of GPU memory): the same rows (the run's batch plan is kept),
    each planned batch computed in 2^(attempt-1) pieces."""

    dim = int(backbone(model).config.hidden_size)
    first = 0  # batch numbers run over the queries' batches, then the corpus'
    out, full = {}, {}
    for side in SIDES:
        p = getattr(prepared, side)
        mine = [b for b in range(len(p.batches)) if (first + b) % shards == shard]
        first += len(p.batches)
        batches, index = [], []
        for b in mine:
            more, idx = _pieces(p.batches[b], p.index[b], attempt)
            batches += more
            index += idx
        sub = dataclasses.replace(p, batches=batches, index=index)
        vec = encode_prepared(model, sub, progress=f"{side} shard {shard}" if progress else False) if mine else None
        full[side] = vec if vec is not None else np.zeros((p.n, dim), dtype=np.float32)
        rows = np.sort(np.concatenate([p.index[b] for b in mine])) if mine else np.zeros(0, dtype=np.int64)
        out[side] = (rows.astype(np.int64), np.ascontiguousarray(full[side][rows], dtype=np.float32))
    meta = split_embeddings(model, prepared, full["queries"], full["corpus"], extra_meta).meta
    return out, {**meta, "shard": {"index": shard, "count": shards, "plan_sha256": plan_sha256(prepared, shards),
                                   "attempt": attempt}}


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
    if not path.is_file():
        raise MergeirError(f"{path}: {what} not found")
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise MergeirError(f"{path}: not a readable {what} ({e})") from None
    if not isinstance(arr, np.ndarray) or arr.dtype != dtype:
        raise MergeirError(f"{path}: {what} must be {np.dtype(dtype).name}, got {getattr(arr, 'dtype', type(arr))}")
    return arr


# ---------------------------------------------------------------- what a shard or part must agree on

# how a shard was batched on its device: never part of what its siblings must agree on (the plan is compared)
BATCHING = ("batch_size", "max_batch_tokens")


def is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def is_number(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def non_finite(obj, where: str = ""):
    """The path (e.g. `mean.ndcg_cut_10`) of the first NaN or infinite number in a JSON value, else None."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return where or "(the value)"
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    for k, v in items:
        found = non_finite(v, f"{where}.{k}" if where else str(k))
        if found:
            return found
    return None


def _shard_meta(d: Path) -> dict:
    """A shard's meta.json with a well-formed `shard` record, or one error naming the folder and the field."""
    path = d / "meta.json"
    meta = read_json_object(path, "shard meta")
    if "shard" not in meta:
        raise MergeirError(f"{d}: not an encoding shard (meta.json has no \"shard\"; written by bin/encode.py "
                           "--shard I --shards N)")
    rec = meta["shard"]
    if not isinstance(rec, dict):
        raise MergeirError(f"{path}: \"shard\" must be an object {{index, count, plan_sha256}}, got "
                           f"{type(rec).__name__} {rec!r}")
    for key, ok, what in (("index", is_int, "an integer"), ("count", is_int, "an integer"),
                          ("plan_sha256", lambda v: isinstance(v, str) and v, "a non-empty string")):
        if key not in rec:
            raise MergeirError(f"{path}: \"shard\" has no \"{key}\" (it must be {what})")
        if not ok(rec[key]):
            raise MergeirError(f"{path}: \"shard\".\"{key}\" must be {what}, got {rec[key]!r}")
    if not (rec["count"] >= 1 and 0 <= rec["index"] < rec["count"]):
        raise MergeirError(f"{path}: \"shard\" index {rec['index']} is not within [0, count {rec['count']})")
    if "attempt" in rec and not (is_int(rec["attempt"]) and rec["attempt"] >= 1):
        raise MergeirError(f"{path}: \"shard\".\"attempt\" must be an integer >= 1, got {rec['attempt']!r}")
    for side in SIDES:
        n = meta.get(f"n_{side}")
        if n is not None and not (is_int(n) and n >= 0):
            raise MergeirError(f"{path}: \"n_{side}\" must be a count, got {n!r}")
    if meta.get("dim") is not None and not (is_int(meta["dim"]) and meta["dim"] >= 1):
        raise MergeirError(f"{path}: \"dim\" must be a positive integer, got {meta['dim']!r}")
    return meta


def _what_encodes(meta: dict, other: dict) -> dict:
    """The fields of an encoding meta that determine the embeddings: where the weights lay is left out when both
    sides record the weights' fingerprint (a copy of a model encodes the same), and so is the batching."""
    out = {k: v for k, v in meta.items() if k not in ("shard", *BATCHING)}
    for field, fingerprint in (("model", "model_fingerprint"), ("adapter", "adapter_fingerprint")):
        if meta.get(fingerprint) and other.get(fingerprint):
            out.pop(field, None)
    return out


def differ(a: dict, b: dict) -> list[str]:
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def gather_embeddings(shard_dirs: Sequence[str | os.PathLike], out: str | os.PathLike, force: bool = False) -> dict:
    """Write the embeddings artifact of all the shards of one run (byte-identical to the unsharded run's when
    no shard was retried with smaller batches; else equal to float rounding)."""

    dirs = [Path(d) for d in shard_dirs]
    if not dirs:
        raise MergeirError("no --shard folder given")
    metas = [_shard_meta(d) for d in dirs]
    count = metas[0]["shard"]["count"]
    for d, m in zip(dirs, metas):
        if m["shard"]["count"] != count:
            raise MergeirError(f"{d} is shard {m['shard']['index']} of {m['shard']['count']}, {dirs[0]} one of "
                               f"{count}: shards of one run have one count")
    seen = sorted(m["shard"]["index"] for m in metas)
    if len(seen) != count or seen != list(range(count)):  # the length first: a count of 10**12 in meta.json
        raise MergeirError(f"shards {seen} given, the run has {count} (0 .. {count - 1}, each once)")
    # the gathered meta is shard 0's (whichever order the folders were given in)
    order = sorted(range(len(dirs)), key=lambda i: metas[i]["shard"]["index"])
    dirs, metas = [dirs[i] for i in order], [metas[i] for i in order]
    base = {k: v for k, v in metas[0].items() if k != "shard"}
    for d, m in zip(dirs[1:], metas[1:]):
        diff = differ(_what_encodes(m, metas[0]), _what_encodes(metas[0], m))
        if diff:
            raise MergeirError(f"{d} is a shard of another run than {dirs[0]}: its meta.json differs in "
                               f"{', '.join(diff)}")
        if m["shard"]["plan_sha256"] != metas[0]["shard"]["plan_sha256"]:
            sizes = ", ".join(f"{k} {m.get(k)} vs {metas[0].get(k)}" for k in BATCHING if m.get(k) != metas[0].get(k))
            raise MergeirError(f"{d} is a shard of another run than {dirs[0]}: its batch plan differs"
                               f"{' (' + sizes + ')' if sizes else ''}; the shards of one run are cut from the same "
                               "batches (the same --batch-size / --max-batch-tokens)")
    arrays, ids, dim = {}, {}, base.get("dim")
    dim_from = f"{dirs[0]}/meta.json says dim {dim}"
    for side in SIDES:
        for d, m in zip(dirs, metas):
            mine = read_ids(d / f"{side}.ids")
            if m.get(f"n_{side}") is not None and m[f"n_{side}"] != len(mine):
                raise MergeirError(f"{d}: {side}.ids holds {len(mine)} ids but meta.json says n_{side} "
                                   f"{m[f'n_{side}']}")
            if side not in ids:
                ids[side] = mine
            elif mine != ids[side]:
                raise MergeirError(f"{d}: {side}.ids differ from {dirs[0]}")
        n, full, filled = len(ids[side]), None, np.zeros(len(ids[side]), dtype=bool)
        for d in dirs:
            rows = _load(d / f"{side}.rows.npy", "row index", np.int64)
            vec = _load(d / f"{side}.npy", "embeddings array", np.float32)
            if rows.ndim != 1:
                raise MergeirError(f"{d}/{side}.rows.npy: expected a 1-d row index, got shape {rows.shape}")
            if vec.ndim != 2:
                raise MergeirError(f"{d}/{side}.npy: expected a 2-d array (vectors x dim), got shape {vec.shape}")
            if len(vec) != len(rows):
                raise MergeirError(f"{d}/{side}.npy holds {len(vec)} vectors but {side}.rows.npy names {len(rows)} "
                                   f"rows: the shard is incomplete or its files come from different runs")
            if len(rows) and (rows.min() < 0 or rows.max() >= n):
                raise MergeirError(f"{d}/{side}.rows.npy: rows outside [0, {n}) of the {n} {side} ids")
            if len(np.unique(rows)) != len(rows):
                raise MergeirError(f"{d}/{side}.rows.npy: a row is named twice")
            if dim is None:
                dim, dim_from = vec.shape[1], f"{d}/{side}.npy holds {vec.shape[1]}-d vectors"
            if vec.shape[1] != dim:
                raise MergeirError(f"{d}/{side}.npy: its vectors are {vec.shape[1]}-d, but {dim_from}: shards of one "
                                   "run have one dimension")
            bad = ~np.isfinite(vec).all(axis=1)
            if bad.any():
                i = int(np.argmax(bad))
                what = {"queries": "query", "corpus": "document"}[side]
                raise MergeirError(f"{d}/{side}.npy: the vector of {what} {ids[side][rows[i]]!r} holds NaN or "
                                   f"infinite values ({int(bad.sum())} of the shard's {len(rows)} {side} vectors do); "
                                   "re-encode this shard")
            if filled[rows].any():
                raise MergeirError(f"{d}: {side} rows computed by another shard too")
            full = np.zeros((n, dim), dtype=np.float32) if full is None else full
            full[rows] = vec
            filled[rows] = True
        if not filled.all():
            raise MergeirError(f"{side}: {int((~filled).sum())} rows computed by no shard")
        arrays[side] = full if full is not None else np.zeros((n, dim or 0), dtype=np.float32)
    inputs = {"--shard": [str(d) for d in dirs]}
    with atomic_dir(out, stage=ENCODE_STAGE, inputs=inputs, force=force) as tmp:
        write_embeddings(tmp, Embeddings(arrays["queries"], ids["queries"], arrays["corpus"], ids["corpus"], base),
                         atomic=False)
    return base
