"""Run a bin/ script the way a user does (a subprocess), for CLI contract tests."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_bin(script: str, *args, check: bool = False, env: dict | None = None, timeout: int = 600):
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run(
        [sys.executable, str(ROOT / "bin" / script), *map(str, args)],
        capture_output=True, text=True, env=e, timeout=timeout,
    )
    if check and p.returncode != 0:
        raise AssertionError(f"{script} {' '.join(map(str, args))} failed ({p.returncode}):\n{p.stderr[-4000:]}")
    return p


def error_lines(stderr: str) -> list[str]:
    """The lines a user sees as errors (progress bars and library warnings aside)."""
    return [ln for ln in stderr.splitlines() if ln.startswith("error:")]


def assert_one_error(p, *fragments: str) -> str:
    assert p.returncode != 0, f"expected failure, got exit 0; stderr: {p.stderr[-2000:]}"
    assert "Traceback" not in p.stderr, p.stderr[-3000:]
    errs = error_lines(p.stderr)
    assert len(errs) == 1, p.stderr[-3000:]
    for f in fragments:
        assert f in errs[0], errs[0]
    return errs[0]
