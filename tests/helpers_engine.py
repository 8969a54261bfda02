"""Run the pipeline through the real Nextflow engine (.venv/bin/nextflow, scripts/install_nextflow.sh) and read what
it recorded: the trace file (one row per task attempt), PLAN's task files and the published outputs."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "nextflow"
# CI sets this: a missing engine or cluster then fails the tests instead of skipping them
REQUIRE = os.environ.get("MERGEIR_REQUIRE_ENGINE") == "1"


def nextflow_bin() -> str:
    local = ROOT / ".venv" / "bin" / "nextflow"
    if local.is_file():
        return str(local)
    found = shutil.which("nextflow")
    if found:
        return found
    (pytest.fail if REQUIRE else pytest.skip)("no Nextflow engine: run scripts/install_nextflow.sh")


def engine_env(launch: Path, parser: str = "v1", extra: dict | None = None) -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{ROOT / '.venv' / 'bin'}:{env.get('PATH', '')}"
    env.update({"NXF_SYNTAX_PARSER": parser, "NXF_OFFLINE": "true", "NXF_ANSI_LOG": "false",
                "NXF_HOME": str(launch / ".nxf-home"), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    env.update(extra or {})
    return env


@dataclass
class Run:
    launch: Path
    outdir: Path
    suffix: str
    returncode: int
    output: str
    rows: list[dict] = field(default_factory=list)

    @property
    def pipeline_info(self) -> Path:
        return self.outdir / "pipeline_info"


def command(launch: Path, outdir: Path, suffix: str, profile: str, *args: str) -> list[str]:
    return [nextflow_bin(), "run", str(ROOT / "main.nf"), "-profile", profile, "--outdir", str(outdir),
            "--trace_report_suffix", suffix, *args]


def run(launch: Path, suffix: str, *args: str, profile: str = "test,local", outdir: Path | None = None,
        parser: str = "v1", env: dict | None = None, timeout: int = 1500) -> Run:
    """`nextflow run main.nf` in `launch` (its work/ and .nextflow/ live there); suffix names the trace file."""
    launch.mkdir(parents=True, exist_ok=True)
    outdir = outdir or launch / "results"
    p = subprocess.run(command(launch, outdir, suffix, profile, *args), cwd=launch, capture_output=True, text=True,
                       env=engine_env(launch, parser, env), timeout=timeout)
    r = Run(launch, outdir, suffix, p.returncode, p.stdout + p.stderr)
    r.rows = trace(r)
    return r


def run_interrupted(launch: Path, suffix: str, *args: str, after_completed: int, profile: str = "test,local",
                    parser: str = "v1", timeout: int = 1500) -> Run:
    """Start a run, SIGTERM the engine once `after_completed` tasks have finished, wait for it to stop."""
    launch.mkdir(parents=True, exist_ok=True)
    outdir = launch / "results"
    proc = subprocess.Popen(command(launch, outdir, suffix, profile, *args), cwd=launch, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=engine_env(launch, parser))
    stub = Run(launch, outdir, suffix, 0, "")
    deadline = time.time() + timeout
    while proc.poll() is None and time.time() < deadline:
        if sum(r["status"] == "COMPLETED" for r in trace(stub)) >= after_completed:
            proc.send_signal(signal.SIGTERM)
            break
        time.sleep(1)
    out, _ = proc.communicate(timeout=300)
    stub.returncode, stub.output, stub.rows = proc.returncode, out, trace(stub)
    return stub


def trace(r: Run) -> list[dict]:
    path = r.pipeline_info / f"execution_trace_{r.suffix}.txt"
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def process_name(row: dict) -> str:
    return row["process"].split(":")[-1]


def by_status(r: Run, status: str) -> list[dict]:
    return [x for x in r.rows if x["status"] == status]


def executed(r: Run) -> dict[str, int]:
    """Process -> tasks that ran (not CACHED) in this run, counting each task once whatever its attempts."""
    out: dict[str, set] = {}
    for x in r.rows:
        if x["status"] != "CACHED":
            out.setdefault(process_name(x), set()).add(x["tag"])
    return {k: len(v) for k, v in out.items()}


def planned(r: Run) -> dict[str, set[str]]:
    """Process -> task ids from PLAN's task files plus the rows each SELECT_ALPHA added at run time."""
    tasks = r.pipeline_info / "tasks"
    out: dict[str, set[str]] = {}
    for f in tasks.glob("*.json"):
        if f.stem.isupper():
            out[f.stem] = {row["id"] for row in json.loads(f.read_text())}
    for sel in (r.outdir / "alpha").glob("*/*"):
        for f in sel.glob("*.json"):
            if f.stem.isupper():
                out.setdefault(f.stem, set()).update(row["id"] for row in json.loads(f.read_text()))
    out.pop("LOCAL", None)
    return {k: v for k, v in out.items() if v}


def processes(r: Run) -> set[str]:
    """Every process the plan runs: PLAN, and each process with at least one row."""
    return set(planned(r)) | {"PLAN"}


def tree_digest(folder: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under folder."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def metrics(r: Run) -> dict[str, dict]:
    """EVALUATE id -> the scores of its published metrics.json (mean and per query; its provenance names the run's
    own folders and machine, so two runs differ there)."""
    out = {}
    for p in (r.outdir / "results").glob("*/*/metrics.json"):
        m = json.loads(p.read_text())
        out[p.parent.name] = {"mean": m["mean"], "per_query": m["per_query"]}
    return out


def report_tables(r: Run) -> dict[str, str]:
    """The report's files but its provenance.json (which names the run's folders): what two runs must share."""
    return {k: v for k, v in tree_digest(r.outdir / "report").items() if not k.endswith("provenance.json")}


def assert_ok(r: Run) -> None:
    assert r.returncode == 0, r.output[-6000:]
