"""The test profile inside the stage images: `nextflow run main.nf -profile test,podman` with the images
containers/ci.sh just built (containers/build.sh on a debootstrapped Debian base, CUDA 13, torch from PyPI) gives
the same metrics, rankings and report as the same profile without containers (the session's real `-profile
test,local` run, conftest's engine_first), and pipeline_info's trace names the image of every task.

Needs root's podman (containers/setup-podman.sh) and built images: it runs only when MERGEIR_CONTAINERS is set,
to the config containers/build.sh pinned the images in (CONFIG=...), or to 1 for containers/ci.sh's default
($MERGEIR_CACHE/containers-ci.config, MERGEIR_CACHE defaulting to ~/.cache/mergeir). Without podman it skips, unless
MERGEIR_CONTAINERS or MERGEIR_REQUIRE_ENGINE=1 asks for it (then it fails). CI (.ci/run) builds the images in the
background while the other tests run and names the build's exit-status file in MERGEIR_CONTAINERS_BUILD: these
tests (collected last, conftest) wait for it, and a failed build fails them with its log's tail."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

import yaml
from helpers_engine import REQUIRE, assert_ok, metrics, process_name, run

ROOT = Path(__file__).resolve().parents[1]
ENV = "MERGEIR_CONTAINERS"
BUILD_ENV = "MERGEIR_CONTAINERS_BUILD"  # CI: the background build's exit-status file (<name>.log beside it)
BUILD_WAIT_S = 90 * 60
STAGES = ["download", "merge", "train", "encode", "report"]

pytestmark = [pytest.mark.slow, pytest.mark.containers, pytest.mark.engine]


def wait_for_build() -> None:
    """CI's background build (.ci/run): wait for its exit status file, then fail loudly if it failed."""
    status = os.environ.get(BUILD_ENV)
    if not status:
        return
    status_path = Path(status)
    deadline = time.time() + BUILD_WAIT_S
    while not status_path.exists():
        if time.time() > deadline:
            pytest.fail(f"{BUILD_ENV}: the image build did not finish within {BUILD_WAIT_S} s", pytrace=False)
        time.sleep(10)
    rc = status_path.read_text().strip()
    if rc != "0":
        log = status_path.with_suffix(".log")
        tail = log.read_text(errors="replace")[-3000:] if log.is_file() else "(no log)"
        pytest.fail(f"the image build (containers/ci.sh --build-only) exited {rc}; its log ends:\n{tail}",
                    pytrace=False)


def images_config() -> Path:
    given = os.environ.get(ENV, "")
    if shutil.which("podman") is None:
        (pytest.fail if given or REQUIRE else pytest.skip)(
            "container test: podman is not installed (sudo bash containers/setup-podman.sh)")
    if not given:
        pytest.skip(f"container test: {ENV} not set (build the images with `bash containers/ci.sh --build-only`, "
                    f"then {ENV}=1, or {ENV}=<the config containers/build.sh wrote>)")
    if given == "1":
        cache = Path(os.environ.get("MERGEIR_CACHE") or Path.home() / ".cache" / "mergeir")
        path = cache / "containers-ci.config"
    else:
        path = Path(given).expanduser()
    # asked for the container test: anything missing now is a failure, not a skip
    if not path.is_file():
        pytest.fail(f"{ENV}: no images config at {path} (containers/ci.sh writes it)", pytrace=False)
    return path


def pinned(config: Path) -> dict[str, tuple[str, set[str]]]:
    """stage -> (image reference, the processes it runs) from a containers.config-shaped file."""
    text = config.read_text()
    out = {}
    for procs, ref, stage in re.findall(r"withName: '([^']+)' \{\s*container = '([^']+)' // image: (\w+)", text):
        out[stage] = (ref, set(procs.split("|")))
    return out


@pytest.fixture(scope="module")
def config() -> Path:
    wait_for_build()
    path = images_config()
    images = pinned(path)
    assert sorted(images) == sorted(STAGES), f"{path}: stages {sorted(images)}"
    for stage, (ref, _) in images.items():
        p = subprocess.run(["podman", "image", "exists", ref], capture_output=True)
        if p.returncode != 0:
            pytest.fail(f"{stage}: image {ref} (pinned in {path}) is not in podman's storage", pytrace=False)
    return path


@pytest.fixture(scope="module")
def contained(config, tmp_path_factory):
    r = run(tmp_path_factory.mktemp("podman"), "podman", "-c", str(config), profile="test,podman")
    assert_ok(r)
    return r


@pytest.fixture(scope="module")
def uncontained(config, engine_first):
    """The same profile without containers: the session's real run (its one OOM retry and published
    intermediates change no result), so CI runs the test profile on the host once."""
    return engine_first


def test_every_task_ran_in_its_stage_image(contained, config):
    images = pinned(config)
    image_of = {p: ref for ref, procs in images.values() for p in procs}
    rows = [x for x in contained.rows if x["status"] == "COMPLETED"]
    assert rows, contained.output[-3000:]
    for row in rows:
        proc = process_name(row)
        assert row.get("container"), f"trace row of {proc} ({row['tag']}) names no image"
        assert proc in image_of, f"{proc} has no `// image:` line in {config}"
        assert row["container"] == image_of[proc], (proc, row["container"], image_of[proc])
    # every stage image ran something
    used = {row["container"] for row in rows}
    assert used == {ref for ref, _ in images.values()}, used


def test_metrics_equal_the_uncontained_run(contained, uncontained):
    got, want = metrics(contained), metrics(uncontained)
    assert want and sorted(got) == sorted(want)
    for key in want:
        assert got[key] == want[key], key
    # and the rankings themselves: the same documents at the same ranks; scores equal to float32 rounding, since
    # the host run's source shard was re-encoded at half the batch after its injected OOM (oom-once.config), and a
    # batch's padding moves the last bit of a pooled sum
    runs = sorted(uncontained.outdir.glob("results/*/*/run.trec"))
    assert runs
    for p in runs:
        rel = p.relative_to(uncontained.outdir)
        got, want = _ranking(contained.outdir / rel), _ranking(p)
        assert [r[:3] for r in got] == [r[:3] for r in want], rel
        assert max(abs(a[3] - b[3]) for a, b in zip(got, want)) <= 1e-6, rel


def _ranking(path: Path) -> list[tuple[str, str, int, float]]:
    rows = [ln.split() for ln in path.read_text().splitlines()]
    return [(q, doc, int(rank), float(score)) for q, _, doc, rank, score, _ in rows]


def test_report_equals_the_uncontained_run(contained, uncontained):
    """report.md and every table (md, csv, tex); not provenance.json, whose hashes cover the metrics files'
    work-dir paths."""
    report = sorted(p.relative_to(uncontained.outdir) for p in (uncontained.outdir / "report").rglob("*")
                    if p.is_file() and p.suffix in {".md", ".csv", ".tex"})
    assert any(p.name.startswith("table_") for p in report), "no report tables"
    for rel in report:
        a, b = contained.outdir / rel, uncontained.outdir / rel
        assert a.is_file(), rel
        assert a.read_text() == b.read_text(), rel


def _versions(r) -> list[dict]:
    return yaml.safe_load((r.pipeline_info / "software_versions.yml").read_text())


def test_tasks_ran_the_images_python(contained, config):
    """software_versions.yml (every task's bin/versions.py): `#!/usr/bin/env python3` found the image's venv."""
    ref = pinned(config)["download"][0]
    p = subprocess.run(["podman", "run", "--rm", ref, "python3", "-c",
                        "import platform, sys; print(platform.python_version(), sys.prefix)"],
                       capture_output=True, text=True, check=True)
    python, prefix = p.stdout.split()
    assert prefix == "/opt/mergeir"
    entries = _versions(contained)
    assert entries and {e["python"] for e in entries} == {python}, {e["process"]: e["python"] for e in entries}


def test_images_hold_this_checkouts_package(contained, uncontained):
    """The mergeir package in every image is the checkout's (src/ as the uncontained run imports it): images built
    from another state of src/ would make this comparison meaningless."""
    here = {e["library"] for e in _versions(uncontained)}
    assert len(here) == 1
    assert {e["process"]: e["library"] for e in _versions(contained)} == \
        {e["process"]: next(iter(here)) for e in _versions(contained)}
