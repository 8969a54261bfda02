#!/usr/bin/env python3
"""Run an experiment's plan on this machine without Nextflow: PLAN's task files, executed with the modules' own
command templates (src/mergeir/pipeline/runner.py). What `scripts/quickstart.sh` and the chain test run.

    python scripts/run_local.py OUT_DIR [--experiment data/test.yaml] [--alpha-selection grid] [--stub] ...

Rerunning with the same OUT_DIR skips every finished task (OUT_DIR/work/<PROCESS>/<id>/.done).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from mergeir.errors import MergeirError  # noqa: E402
from mergeir.pipeline.runner import Runner  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="folder for work/ (one folder per task) and the report")
    ap.add_argument("--experiment", type=Path, default=ROOT / "data" / "test.yaml")
    ap.add_argument("--dataset", default="all")
    ap.add_argument("--settings", default="full,limited")
    ap.add_argument("--alpha-selection", default="grid", help="paper | grid (the test profile's default: grid)")
    ap.add_argument("--allow-unpinned", default="false")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--encode-shards", default="2", help="the test profile's default: 2")
    ap.add_argument("--sweep-shards", default="3", help="the test profile's default: 3 (one per alpha_lower)")
    ap.add_argument("--stub", action="store_true", help="run the stub: blocks (file-name contracts only)")
    a = ap.parse_args(argv)
    t = time.time()
    try:
        report = Runner(a.out, a.experiment, stub=a.stub).run(
            dataset=a.dataset, settings=a.settings, alpha_selection=a.alpha_selection,
            allow_unpinned=a.allow_unpinned, device=a.device, encode_shards=a.encode_shards,
            sweep_shards=a.sweep_shards)
    except MergeirError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"report: {report / 'report.md'}   ({time.time() - t:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
