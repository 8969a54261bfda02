"""The embeddings artifact: queries.npy / corpus.npy (float32, one row per id), queries.ids / corpus.ids (one id
a line) and meta.json (how they were encoded), written atomically and checked when read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import MergeirError
from ..io import Stage, atomic_dir, read_json, read_text, write_json


@dataclass
class Embeddings:
    queries: np.ndarray
    query_ids: list[str]
    corpus: np.ndarray
    corpus_ids: list[str]
    meta: dict


def write_ids(path: Path, ids: Sequence[str]) -> None:
    for i in ids:
        if not i or "\n" in i or "\r" in i:
            raise MergeirError(f"{path.name}: id {i!r} cannot be written one per line")
    path.write_text("".join(f"{i}\n" for i in ids), encoding="utf-8")


# the embeddings folder's marker: meta.json names the stage (older ones: the fields every meta.json has)
ENCODE_STAGE = Stage("encode", "meta.json", legacy=("collection_checksum", "n_corpus", "pooling"))


def write_embeddings(out: str | Path, emb: Embeddings, atomic: bool = True) -> Path:
    """Write the embeddings artifact. atomic=True: via a temp folder renamed at the end; atomic=False: into
    `out` directly (for callers already inside their own `atomic_dir`)."""
    if atomic:
        with atomic_dir(out, stage=ENCODE_STAGE) as tmp:
            write_embeddings(tmp, emb, atomic=False)
        return Path(out)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for name, arr, ids in (("queries", emb.queries, emb.query_ids), ("corpus", emb.corpus, emb.corpus_ids)):
        if arr.shape[0] != len(ids):
            raise MergeirError(f"{name}: {arr.shape[0]} embeddings but {len(ids)} ids")
        np.save(out / f"{name}.npy", np.ascontiguousarray(arr, dtype=np.float32), allow_pickle=False)
        write_ids(out / f"{name}.ids", ids)
    write_json(out / "meta.json", {**emb.meta, "n_queries": len(emb.query_ids), "n_corpus": len(emb.corpus_ids)})
    return out


def read_ids(path: Path) -> list[str]:
    if not path.is_file():
        raise MergeirError(f"embeddings file not found: {path}")
    ids = read_text(path).splitlines()
    if len(set(ids)) != len(ids):
        raise MergeirError(f"{path}: duplicate ids")
    return ids


def _read_npy(path: Path) -> np.ndarray:
    if not path.is_file():
        raise MergeirError(f"embeddings file not found: {path}")
    try:
        arr = np.load(path, allow_pickle=False)
    except ValueError as e:
        raise MergeirError(f"{path}: not a plain .npy array ({e})") from None
    if arr.dtype not in (np.float32, np.float64, np.float16) or arr.ndim != 2:
        raise MergeirError(f"{path}: expected a 2-d float32 array, got {arr.dtype} with shape {arr.shape}")
    if arr.dtype != np.float32:  # another tool's float64/float16: the same vectors in the dtype search uses
        with np.errstate(over="ignore"):
            arr = arr.astype(np.float32)
    if not np.isfinite(arr).all():
        raise MergeirError(f"{path}: contains NaN or infinite values (or values beyond float32's range)")
    return arr


def read_embeddings(folder: str | Path) -> Embeddings:
    """Read and check an embeddings folder (shapes agree with ids and meta, same dimension for both sides)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MergeirError(f"embeddings folder not found: {folder}")
    meta = read_json(folder / "meta.json", "embeddings meta")
    q, d = _read_npy(folder / "queries.npy"), _read_npy(folder / "corpus.npy")
    qids, dids = read_ids(folder / "queries.ids"), read_ids(folder / "corpus.ids")
    for name, arr, ids in (("queries", q, qids), ("corpus", d, dids)):
        if arr.shape[0] != len(ids):
            raise MergeirError(f"{folder}: {name}.npy has {arr.shape[0]} rows but {name}.ids has {len(ids)} ids")
        if meta.get(f"n_{name}") not in (None, len(ids)):
            raise MergeirError(f"{folder}: meta.json says n_{name}={meta.get(f'n_{name}')}, files hold {len(ids)}")
    if q.shape[1] != d.shape[1]:
        raise MergeirError(f"{folder}: queries are {q.shape[1]}-d but corpus is {d.shape[1]}-d")
    return Embeddings(q, qids, d, dids, meta)
