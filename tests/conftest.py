"""Test-wide settings: offline hubs, quiet tokenizers, the repo paths the CLI tests need, and where the real-data
tests find SciFact."""

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
def engine_first(tmp_path_factory):
    """The real test profile through the real engine (tests/test_engine*.py): intermediates published, and one
    ENCODE shard's first try failing as a GPU out-of-memory exit (the pipeline's retry must absorb it)."""
    from helpers_engine import FIXTURES, assert_ok, run
    r = run(tmp_path_factory.mktemp("engine"), "first", "--publish_intermediates", "true",
            "-c", str(FIXTURES / "oom-once.config"))
    assert_ok(r)
    return r


@pytest.fixture(scope="session")
def tiny_beir() -> Path:
    return ROOT / "tests" / "fixtures" / "tiny-beir"


# Real-data tests need BEIR SciFact, which the repository does not hold: they find it by `--scifact PATH` or
# $MERGEIR_SCIFACT, and without either they skip with this reason, listed loudly at the end of the run.
SCIFACT_ENV = "MERGEIR_SCIFACT"
REAL_DATA_SKIP = f"real-data test: SciFact not given (--scifact PATH or {SCIFACT_ENV}=PATH)"


def pytest_collection_modifyitems(config, items):
    # the container tests last: CI builds their images in the background while the others run (.ci/run)
    items.sort(key=lambda item: item.get_closest_marker("containers") is not None)


def pytest_addoption(parser):
    parser.addoption("--scifact", metavar="PATH", default=None,
                     help=f"BEIR SciFact folder (corpus.jsonl, queries.jsonl, qrels/) for the real-data tests "
                          f"[default: ${SCIFACT_ENV}; neither: they skip]")


@pytest.fixture(scope="session")
def scifact(pytestconfig) -> Path:
    given = pytestconfig.getoption("--scifact") or os.environ.get(SCIFACT_ENV)
    if not given:
        pytest.skip(REAL_DATA_SKIP)
    p = Path(given).expanduser().resolve()
    # asked for real data and given a wrong path: fail, never skip quietly
    if not (p / "corpus.jsonl").is_file() or not (p / "qrels" / "test.tsv").is_file():
        pytest.fail(f"SciFact folder {given!r} has no corpus.jsonl and qrels/test.tsv", pytrace=False)
    return p


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter):
    skipped = [r for r in terminalreporter.stats.get("skipped", [])
               if isinstance(r.longrepr, tuple) and REAL_DATA_SKIP in str(r.longrepr[2])]
    if not skipped:
        return
    terminalreporter.section(f"{len(skipped)} REAL-DATA TESTS SKIPPED", sep="!", yellow=True, bold=True)
    for r in skipped:
        terminalreporter.line(f"SKIPPED {r.nodeid}", yellow=True)
    terminalreporter.line(f"Run them with: pytest --scifact /path/to/scifact  (or {SCIFACT_ENV}=/path/to/scifact); "
                          "README, \"Running the real-data tests\".", bold=True)
