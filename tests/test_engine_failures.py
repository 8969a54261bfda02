"""Failure semantics through the real engine: a bad input fails its task with its one error line in Nextflow's
report, retries that run out finish the run instead of killing it, hostile params never reach a shell, and a
run without the test profile fits this machine (the local executor refuses a task larger than the host)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from helpers_engine import FIXTURES, ROOT, assert_ok, by_status, engine_env, nextflow_bin, process_name, processes, run

pytestmark = [pytest.mark.slow, pytest.mark.engine]


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(folder)).encode() + p.read_bytes())
    return h.hexdigest()


def _experiment(tmp_path: Path, collection: Path, name: str = "study.yaml") -> Path:
    """data/test.yaml with its collection path made absolute (pointing at `collection`), under another name."""
    text = (ROOT / "data" / "test.yaml").read_text().replace("path: ../tests/fixtures/tiny-beir", f"path: '{collection}'")
    out = tmp_path / name
    out.write_text(text)
    return out


def test_a_bad_collection_fails_its_task_with_its_error_line(tmp_path):
    coll = tmp_path / "coll"
    shutil.copytree(ROOT / "tests" / "fixtures" / "tiny-beir", coll)
    with (coll / "corpus.jsonl").open("a") as f:
        f.write("{not json\n")
    before = _digest(coll)
    r = run(tmp_path / "launch", "bad", "--experiment", str(_experiment(tmp_path, coll)))
    assert r.returncode != 0
    failed = by_status(r, "FAILED")
    assert [process_name(x) for x in failed] == ["PREPARE_COLLECTION"] and failed[0]["exit"] == "2"
    # Nextflow's error report shows the task's stderr: its one `error:` line names the file and line
    errors = [ln.strip() for ln in r.output.splitlines() if ln.strip().startswith("error:")]
    assert len(errors) == 1 and "corpus.jsonl" in errors[0] and "Traceback" not in r.output
    assert "mergeir: failed" in r.output
    assert _digest(coll) == before


def test_retries_that_run_out_finish_the_running_tasks(tmp_path):
    r = run(tmp_path, "retries", "-stub", "-c", str(FIXTURES / "oom-always.config"))
    assert r.returncode != 0
    trials = [x for x in r.rows if process_name(x) == "MAKE_TRIALS"]
    assert [(x["attempt"], x["exit"], x["status"]) for x in trials] == [(str(i), "75", "FAILED") for i in (1, 2, 3)]
    # 'finish': nothing that was running was killed (TERMINATE would abort them)
    assert not [x for x in r.rows if x["status"] == "ABORTED"]
    assert "mergeir: failed" in r.output


@pytest.mark.parametrize("value", ["tiny' ; touch PWNED ; echo '", "$(touch PWNED)", "`touch PWNED`", "a b\nc"])
def test_a_hostile_param_reaches_plan_as_text(tmp_path, value):
    r = run(tmp_path, "hostile", "-stub", "--dataset", value)
    assert r.returncode != 0
    assert not list(tmp_path.rglob("PWNED"))
    assert [process_name(x) for x in by_status(r, "FAILED")] == ["PLAN"]
    # PLAN's one error names the collection key exactly as given, and the handler registered first still reports
    assert "error:" in r.output and "mergeir: failed" in r.output


def test_a_hostile_experiment_file_name_is_staged_under_a_fixed_name(tmp_path):
    name = "x$(touch PWNED) y`touch PWNED`.yaml"
    experiment = _experiment(tmp_path, ROOT / "tests" / "fixtures" / "tiny-beir", name)
    r = run(tmp_path / "launch", "name", "-stub", "--experiment", str(experiment))
    assert_ok(r)
    assert not list(tmp_path.rglob("PWNED"))
    assert {process_name(x) for x in by_status(r, "COMPLETED")} == processes(r)


def test_without_the_test_profile_the_tasks_fit_this_machine(tmp_path):
    # the default labels ask for up to 72 GB and 16 CPUs; the local executor gets them capped at the host's
    r = run(tmp_path, "host", "-stub", "--experiment", str(ROOT / "data" / "test.yaml"), "--alpha_selection", "grid",
            profile="local")
    assert_ok(r)
    assert {process_name(x) for x in by_status(r, "COMPLETED")} == processes(r)


@pytest.mark.parametrize("parser", ["v1", "v2"])
def test_the_version_guard_refuses_only_the_releases_that_drop_profile_params(parser, tmp_path):
    # main.nf's guard, evaluated by the engine CI has on versions it cannot install: 25.10.0-25.10.6 under v2 only
    p = subprocess.run([nextflow_bin(), "run", str(FIXTURES / "version_guard.nf")], cwd=tmp_path, capture_output=True,
                       text=True, env=engine_env(tmp_path, parser), timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    got = {(v, q): flag == "true" for v, q, flag in (ln.split() for ln in p.stdout.splitlines() if ln[:1].isdigit())}
    assert len(got) == 16
    assert {k for k, refused in got.items() if refused} == {("25.10.0", "v2"), ("25.10.6", "v2")}


@pytest.mark.parametrize("parser", ["v1", "v2"])
def test_an_option_whose_value_the_engine_took_for_another_option_is_refused(parser, tmp_path):
    # `--slurm_options --qos=high` leaves the param `true`: refused before any task, not handed to sbatch
    r = run(tmp_path, "novalue", "-stub", "--slurm_options", "--qos=high", parser=parser)
    assert r.returncode != 0
    assert not r.rows
    assert "mergeir: --slurm_options has no value; write --slurm_options='VALUE'" in r.output
