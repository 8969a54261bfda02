"""Fetching an upstream file: a local path is used as it is (compute nodes cannot reach the hubs, so every
download also accepts a local copy), a URL is downloaded. Each caller verifies what it gets (md5, git blob SHA-1)."""

from __future__ import annotations

import re
import shutil
import urllib.error
import urllib.request
from pathlib import Path

from .errors import MergeirError

_URL = re.compile(r"^https?://")


def is_url(source: str) -> bool:
    return _URL.match(source) is not None


def local_path(source: str) -> Path:
    """A `--source` on this machine (file or folder); a missing one is refused."""
    path = Path(source)
    if not path.exists():
        raise MergeirError(f"--source not found: {path}")
    return path


def fetch(source: str, dest: Path) -> Path:
    """`source` itself when it is a local path, else the URL downloaded to `dest` (errors name the URL)."""
    if not is_url(source):
        return local_path(source)
    try:
        with urllib.request.urlopen(source, timeout=60) as response, open(dest, "wb") as f:
            shutil.copyfileobj(response, f, 1 << 20)
    except (urllib.error.URLError, OSError) as e:
        raise MergeirError(f"cannot download {source}: {getattr(e, 'reason', e)}") from None
    return dest
