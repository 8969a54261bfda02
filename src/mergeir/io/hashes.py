"""File hashes: sha256 (every provenance record), md5 (BEIR's zips only) and git's blob id."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def _hash_file(path: str | os.PathLike, algorithm: str, chunk: int = 1 << 20) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while b := f.read(chunk):
            h.update(b)
    return h.hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    return _hash_file(path, "sha256")


def md5_file(path: str | os.PathLike) -> str:
    """BEIR publishes md5s of its zips; nothing else should use md5."""
    return _hash_file(path, "md5")


def git_blob_sha1(path: str | os.PathLike) -> str:
    """Git's blob id: sha1(b"blob <size>\\0" + bytes) — how the authors' training zips are pinned."""
    data = Path(path).read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
