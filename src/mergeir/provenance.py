"""Where an artifact came from: tool versions and input hashes, recorded in every meta/provenance file."""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import platform
from pathlib import Path

from . import __version__

_PACKAGES = {
    "torch": "torch",
    "transformers": "transformers",
    "peft": "peft",
    "mergekit": "mergekit",
    "faiss": "faiss-cpu",
    "pytrec_eval": "pytrec-eval-terrier",
    "numpy": "numpy",
}


def library_digest() -> str:
    """The mergeir code that runs a task: version + sha256 over its .py files (paths and bytes), so a changed
    library is a changed task input for Nextflow's -resume (which hashes only the bin/ scripts a command names)."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for f in sorted(root.rglob("*.py")):
        h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return f"{__version__}+{h.hexdigest()[:16]}"


def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def tool_versions() -> dict[str, str | None]:
    v = {"mergeir": __version__, "python": platform.python_version()}
    for name, dist in _PACKAGES.items():
        ver = _version(dist)
        if ver is None and name == "faiss":
            ver = _version("faiss-gpu") or _version("faiss-gpu-cu12")
        v[name] = ver
    return v
