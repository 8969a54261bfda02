"""Test-wide settings: offline hubs, quiet tokenizers, and the repo paths the CLI tests need."""

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("PYTHONHASHSEED", "0")
sys.path.insert(0, str(ROOT / "tests"))  # tests/helpers_*.py


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def tiny_beir() -> Path:
    return ROOT / "tests" / "fixtures" / "tiny-beir"


@pytest.fixture(scope="session")
def scifact() -> Path:
    p = ROOT.parent / "shared" / "data" / "scifact"
    if not p.is_dir():
        pytest.skip(f"real SciFact not found at {p}")
    return p
