"""A model folder's safetensors weight files, read without decoding a tensor: headers, completeness, which file
holds which key, and a cheap fingerprint of the weights. Pickle formats are refused, never loaded.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
from pathlib import Path

from ..errors import MergeirError
from ..io import read_json

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
WEIGHT_SUFFIXES = (".safetensors",) + PICKLE_SUFFIXES + (".h5", ".msgpack", ".gguf", ".onnx")
ST_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
                   "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}


def read_safetensors_header(path: Path, complete: bool = True) -> dict:
    """The JSON header of a .safetensors file ({name: {dtype, shape, data_offsets}}, `__metadata__`), no tensors.

    `complete` (the default) also checks that the file holds every byte the header promises — each tensor's
    offsets agree with its dtype and shape, and the data ends exactly at the end of the file — so a truncated
    download or copy is refused here, by every stage, before any tensor is read."""
    try:
        with open(path, "rb") as f:
            raw = f.read(8)
            if len(raw) != 8:
                raise ValueError("file shorter than 8 bytes")
            (n,) = struct.unpack("<Q", raw)
            if n > 100_000_000:
                raise ValueError(f"header length {n} is implausible")
            body = f.read(n)
            if len(body) != n:
                raise ValueError(f"header of {n} bytes is cut short (file truncated)")
            header = json.loads(body)
            size = os.fstat(f.fileno()).st_size
        if not isinstance(header, dict):
            raise ValueError("header is not a JSON object")
        if complete:
            _check_data_length(header, size - 8 - n)
        return header
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise MergeirError(f"{path}: not a readable safetensors file ({e})") from None


def _check_data_length(header: dict, data_bytes: int) -> None:
    end = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            start, stop = (int(x) for x in info["data_offsets"])
            n = ST_DTYPE_BYTES.get(info["dtype"])
            shape = [int(d) for d in info["shape"]]
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"tensor {name}: malformed header entry") from None
        if n is not None and stop - start != n * math.prod(shape):
            raise ValueError(f"tensor {name}: {stop - start} data bytes for shape {shape} {info['dtype']}")
        end = max(end, stop)
    if end > data_bytes:
        raise ValueError(f"truncated: the header describes {end} data bytes, the file holds {data_bytes}")
    if end < data_bytes:
        raise ValueError(f"{data_bytes - end} bytes after the last tensor (not a complete safetensors file)")


def weight_files(folder: Path, what: str = "model") -> dict[str, str]:
    """{native key: file name} for the folder's safetensors weights; refuses pickle-only or weightless folders."""
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        weight_map = read_json(index, f"{what} safetensors index").get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise MergeirError(f"{index}: no weight_map")
        for name in sorted(set(weight_map.values())):
            if not (folder / name).is_file():
                raise MergeirError(f"{what} {folder}: shard {name} named in model.safetensors.index.json is missing")
            read_safetensors_header(folder / name)  # complete, not just present
        return dict(weight_map)
    files = sorted(p.name for p in folder.glob("*.safetensors"))
    if not files:
        pickles = sorted(p.name for p in folder.iterdir() if p.name.endswith(PICKLE_SUFFIXES))
        if pickles:
            raise MergeirError(
                f"{what} {folder} has only pickle weights ({', '.join(pickles[:3])}); mergeir loads safetensors "
                "only (pickle can run code) — use a revision with *.safetensors or convert it with a trusted tool"
            )
        raise MergeirError(f"{what} {folder}: no model weights (*.safetensors) found")
    key_file: dict[str, str] = {}
    for name in files:
        for key in read_safetensors_header(folder / name):
            if key == "__metadata__":
                continue
            if key in key_file:
                raise MergeirError(f"{what} {folder}: tensor {key} is in both {key_file[key]} and {name}")
            key_file[key] = name
    return key_file


FINGERPRINT_SAMPLES = 32  # evenly spaced 64 KiB windows of each file's tensor data
_WINDOW = 1 << 16


def weights_fingerprint(folder: str | os.PathLike, what: str = "--model") -> str:
    """A cheap identity of a folder's weights: sha256 over each safetensors file's name, size, header and 32
    evenly spaced 64 KiB windows of its tensor data. Two checkpoints of one architecture with other weights
    differ in it; a full sha256 of a 14 GB model at every encode would take minutes."""
    folder = Path(folder)
    h = hashlib.sha256()
    for name in sorted(set(weight_files(folder, what).values())):
        path = folder / name
        size = path.stat().st_size
        h.update(f"{name}\t{size}\n".encode())
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            h.update(f.read(n))
            start, length = 8 + n, size - 8 - n
            for i in range(FINGERPRINT_SAMPLES):
                f.seek(start + (length - _WINDOW) * i // (FINGERPRINT_SAMPLES - 1) if length > _WINDOW else start)
                h.update(f.read(_WINDOW))
    return h.hexdigest()
