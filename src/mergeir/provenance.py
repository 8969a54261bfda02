"""Where an artifact came from: tool versions and input hashes, recorded in every meta/provenance file."""

from __future__ import annotations

import importlib.metadata as md
import platform

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
