"""The test profile through the real Nextflow engine: a real run whose results equal the bin scripts run directly,
-resume (unchanged, and with params that only some tasks use), the exit-75 retry, and both parsers on the stubs.
The real run (`engine_first`, conftest.py) is shared with the SLURM and interrupt tests, which compare with it."""

from __future__ import annotations

import json
import shlex
import shutil

import pytest

from helpers_cli import run_bin
from helpers_engine import (FIXTURES, assert_ok, by_status, executed, metrics, planned, process_name, processes,
                            run, tree_digest)

pytestmark = [pytest.mark.slow, pytest.mark.engine]


def test_every_planned_task_ran_once_and_completed(engine_first):
    ran = {}
    for x in by_status(engine_first, "COMPLETED"):
        ran.setdefault(process_name(x), set()).add(x["tag"])
    assert len(ran.pop("PLAN")) == 1
    assert ran == planned(engine_first)
    assert "mergeir: done" in engine_first.output


def test_an_out_of_memory_exit_is_retried_with_half_the_batch(engine_first):
    tries = [x for x in engine_first.rows if x["tag"].endswith("-source-shard0of2") and process_name(x) == "ENCODE"]
    assert [(x["exit"], x["attempt"], x["status"]) for x in tries] == [("75", "1", "FAILED"), ("0", "2", "COMPLETED")]
    # the retried shard was gathered with its sibling (encoded at the full batch size) into the whole embeddings
    gathered = engine_first.outdir / "embeddings" / "tiny" / "emb-tiny-source"
    assert (gathered / "corpus.npy").is_file()
    meta = json.loads((engine_first.outdir / "embeddings" / "tiny" / "emb-tiny-source-shard0of2" / "meta.json").read_text())
    sibling = json.loads((engine_first.outdir / "embeddings" / "tiny" / "emb-tiny-source-shard1of2" / "meta.json").read_text())
    # the retry computed each of its planned batches in halves (the batch plan itself is the run's)
    assert meta["shard"]["attempt"] == 2 and sibling["shard"]["attempt"] == 1


def test_each_evaluate_equals_evaluate_py_on_the_same_embeddings(engine_first, tmp_path):
    rows = json.loads((engine_first.pipeline_info / "tasks" / "EVALUATE.json").read_text())
    rows += [r for f in (engine_first.outdir / "alpha").glob("*/*/EVALUATE.json") for r in json.loads(f.read_text())]
    published = metrics(engine_first)
    assert set(published) == {r["id"] for r in rows}
    collection = engine_first.outdir / "collections" / "collection-tiny"
    for row in rows:
        emb = engine_first.outdir / "embeddings" / row["collection"] / row["inputs"]["embeddings"]
        out = tmp_path / row["id"]
        run_bin("evaluate.py", "--embeddings", emb, "--collection", collection, "--out", out,
                *shlex.split(row["options"]), check=True)
        direct = json.loads((out / "metrics.json").read_text())
        assert direct["mean"] == published[row["id"]]["mean"] and direct["per_query"] == published[row["id"]]["per_query"]


def test_the_chosen_alpha_equals_select_alpha_on_the_gathered_grid(engine_first, tmp_path):
    rows = json.loads((engine_first.pipeline_info / "tasks" / "SELECT_ALPHA.json").read_text())
    assert rows
    for row in rows:
        train = engine_first.outdir / "training" / row["collection"] / row["inputs"]["train"] / row["train_file"]
        out = tmp_path / f"{row['id']}.json"
        run_bin("report.py", "select-alpha", "--grid", engine_first.outdir / "grid" / row["collection"] / row["inputs"]["grid"],
                "--queries", train, "--out", out, *shlex.split(row["options"]), check=True)
        assert json.loads(out.read_text()) == json.loads((engine_first.outdir / "alpha" / row["collection"] / row["id"] / "alpha.json").read_text())


def test_the_report_equals_report_build_on_the_published_results(engine_first, tmp_path):
    results, grids = tmp_path / "results", tmp_path / "grids"
    results.mkdir(), grids.mkdir()
    for d in (engine_first.outdir / "results").glob("*/*"):
        shutil.copytree(d, results / d.name)
    for d in [*(engine_first.outdir / "grid").glob("*/grid-*"), *(engine_first.outdir / "grid").glob("*/search-*")]:
        shutil.copytree(d, grids / d.name)
    run_bin("report.py", "build", "--results", results, "--grid", grids, "--out", tmp_path / "report", check=True)
    assert tree_digest(tmp_path / "report") == tree_digest(engine_first.outdir / "report")


@pytest.fixture(scope="module")
def unchanged(engine_first):
    before = tree_digest(engine_first.outdir / "report")
    r = run(engine_first.launch, "unchanged", "--publish_intermediates", "true", "-c", str(FIXTURES / "oom-once.config"),
            "-resume")
    assert_ok(r)
    return r, before


def test_resume_unchanged_reruns_nothing(unchanged):
    r, before = unchanged
    # PLAN is `cache false` (it reads the library digest afresh); every other task comes from the cache
    assert executed(r) == {"PLAN": 1}
    assert len(by_status(r, "CACHED")) == sum(len(v) for v in planned(r).values())  # planned() holds no PLAN
    assert tree_digest(r.outdir / "report") == before


def test_resume_with_fewer_settings_reruns_only_the_report(unchanged, tmp_path):
    r0, _ = unchanged
    r = run(r0.launch, "full", "--settings", "full", "-resume", outdir=tmp_path / "full")
    assert_ok(r)
    assert executed(r) == {"PLAN": 1, "REPORT": 1}
    assert not [x for x in r.rows if "limited" in x["tag"]]


def test_resume_with_an_unsharded_sweep_reruns_only_the_grid_and_what_reads_it(unchanged, tmp_path):
    r0, _ = unchanged
    r = run(r0.launch, "sweep1", "--sweep_shards", "1", "-resume", outdir=tmp_path / "sweep1")
    assert_ok(r)
    # the whole grid as one SWEEP; the SELECT_ALPHA tasks read it (same alpha: no MERGE or ENCODE runs again),
    # and the report draws its heatmap from it (the α search, its own SWEEP, and its SELECT_ALPHA stay cached)
    on_grid = [i for i in planned(r)["SELECT_ALPHA"] if not i.startswith("alpha-search-")]
    assert executed(r) == {"PLAN": 1, "SWEEP": 1, "SELECT_ALPHA": len(on_grid), "REPORT": 1}
    assert metrics(r) == metrics(r0)


@pytest.mark.parametrize("parser", ["v1", "v2"])
def test_the_stubs_run_under_both_parsers(parser, tmp_path):
    classes = tmp_path / "classes.log"
    r = run(tmp_path, "stub", "-stub", parser=parser, env={"NXF_JVM_ARGS": f"-Xlog:class+load=info:file={classes}"})
    assert_ok(r)
    # io.seqera:lib-trace is left out of the engine's jars (tools/nextflow/pom.xml): no run may load it
    loaded = classes.read_text()
    assert "nextflow.cli.Launcher" in loaded and "io.seqera" not in loaded
    assert {process_name(x) for x in by_status(r, "COMPLETED")} == processes(r)
    assert (r.pipeline_info / "execution_trace_stub.txt").is_file()  # --outdir reached the trace file
    assert (r.pipeline_info / "software_versions.yml").read_text().count("- process:") >= len(planned(r))
