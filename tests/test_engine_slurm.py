"""The real engine on a real one-node SLURM (.ci/slurm.sh), an interrupted run resumed, and the profiles' resolved
config: GPU settings that do not depend on the order the profiles are given in."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from helpers_engine import (FIXTURES, REQUIRE, ROOT, assert_ok, by_status, engine_env, executed, metrics,
                            nextflow_bin, process_name, processes, report_tables, run, run_interrupted)

pytestmark = [pytest.mark.slow, pytest.mark.engine]


@pytest.fixture(scope="module")
def slurm():
    if os.environ.get("MERGEIR_SLURM") != "1" or not os.environ.get("SLURM_CONF"):
        (pytest.fail if REQUIRE else pytest.skip)("no SLURM cluster: bash .ci/slurm.sh start, then MERGEIR_SLURM=1 "
                                                  "and SLURM_CONF as it prints")


def _sbatch(launch, row: dict) -> list[str]:
    """The #SBATCH lines Nextflow wrote for one task (its work folder's .command.run)."""
    (script,) = launch.glob(f"work/{row['hash']}*/.command.run")
    return [ln for ln in script.read_text().splitlines() if ln.startswith("#SBATCH")]


def _resources(lines: list[str]) -> set[str]:
    return {ln for ln in lines if ln.split()[1] in ("-c", "-t", "--mem")}


@pytest.mark.slurm
def test_the_test_profile_on_slurm_interrupted_and_resumed(slurm, engine_first, tmp_path):
    """Cut under the default parser, resumed under the strict one (v2), every task a SLURM job. The fast polling
    lies in $NXF_HOME/config: under v2, Nextflow 25.04 refuses `-c FILE` together with -profile (docs/pipeline.md)."""
    launch = tmp_path / "launch"
    (launch / ".nxf-home").mkdir(parents=True)  # helpers_engine.engine_env's NXF_HOME
    shutil.copy(FIXTURES / "fast-slurm.config", launch / ".nxf-home" / "config")
    # the sbatch params from the command line (Nextflow reads `--x=VALUE` for a value that starts with '-')
    given = ["--slurm_queue", "ci", "--slurm_options=--comment=mergeir-ci"]
    cut = run_interrupted(launch, "cut", *given, profile="test,slurm", after_completed=6, parser="v1")
    assert cut.returncode != 0
    done = {x["hash"] for x in by_status(cut, "COMPLETED") if process_name(x) != "PLAN"}  # PLAN: cache false
    assert len(done) >= 5
    r = run(launch, "resumed", *given, "-resume", profile="test,slurm", parser="v2")
    assert_ok(r)
    # what finished before SIGTERM came from the cache (the task hashes do not depend on the parser); everything
    # else ran now, each task a SLURM job
    assert done <= {x["hash"] for x in by_status(r, "CACHED")}
    ran = by_status(r, "COMPLETED")
    assert ran and all(x["native_id"].isdigit() for x in ran)
    for x in ran:  # each job was submitted to the queue and with the options given on the command line
        lines = _sbatch(launch, x)
        assert "#SBATCH -p ci" in lines and "#SBATCH --comment=mergeir-ci" in lines, lines
    # both parsers gave a process's jobs the same cpus, time and memory (PLAN, never cached, ran under each)
    v1 = {process_name(x): _resources(_sbatch(launch, x)) for x in cut.rows if x["attempt"] == "1"}
    v2 = {process_name(x): _resources(_sbatch(launch, x)) for x in ran if x["attempt"] == "1"}
    shared = set(v1) & set(v2)
    assert "PLAN" in shared
    assert {p: v1[p] for p in shared} == {p: v2[p] for p in shared}
    assert all(any(ln.startswith("#SBATCH --mem ") for ln in lines) for lines in v2.values()), v2  # labels applied
    assert {process_name(x) for x in ran + by_status(r, "CACHED")} == processes(r)
    assert metrics(r) == metrics(engine_first)
    assert report_tables(r) == report_tables(engine_first)


def test_a_real_run_under_the_strict_parser_interrupted_and_resumed(engine_first, tmp_path):
    cut = run_interrupted(tmp_path, "cut", after_completed=8, parser="v2")
    assert cut.returncode != 0
    done = {x["hash"] for x in by_status(cut, "COMPLETED") if process_name(x) != "PLAN"}  # PLAN: cache false
    assert done
    r = run(tmp_path, "resumed", "-resume", parser="v2")
    assert_ok(r)
    assert done <= {x["hash"] for x in by_status(r, "CACHED")}
    assert not set(executed(r)) - processes(r)
    assert metrics(r) == metrics(engine_first)
    assert report_tables(r) == report_tables(engine_first)


def _flat(profile: str, parser: str, tmp_path) -> set[str]:
    p = subprocess.run([nextflow_bin(), "config", str(ROOT), "-profile", profile, "-flat"], capture_output=True,
                       text=True, env=engine_env(tmp_path, parser), cwd=tmp_path, timeout=300)
    assert p.returncode == 0, p.stderr
    # trace_report_suffix is the time of parsing
    return {ln for ln in p.stdout.splitlines() if "trace_report_suffix" not in ln and "_report_" not in ln
            and "execution_" not in ln and "pipeline_dag_" not in ln}


@pytest.mark.parametrize("parser", ["v1", "v2"])
def test_gpu_settings_do_not_depend_on_profile_order(parser, tmp_path):
    a = _flat("singularity,slurm,gpu", parser, tmp_path)
    assert a == _flat("gpu,slurm,singularity", parser, tmp_path) == _flat("slurm,singularity,gpu", parser, tmp_path)
    gpu = {ln for ln in a if "process_gpu" in ln}
    assert any(".cpus = { task.executor in [null, 'local'] ? (params.max_cpus as int) : 8 }" in ln for ln in gpu)
    assert "process.executor = 'slurm'" in a
    assert any("--gres=${params.slurm_gres}" in ln and "task.accelerator" in ln for ln in a)
