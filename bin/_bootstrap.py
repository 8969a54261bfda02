"""Lets `python bin/X.py` work from a clean clone: use the installed package, else ../src."""

import sys
from pathlib import Path

try:
    import mergeir  # noqa: F401
except ImportError:  # not installed: run from the source tree
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
