"""The test profile end to end on CPU, through the CPU runner: PLAN's task files for data/test.yaml, each task the
command its module's template renders (the same files and templates `nextflow run main.nf -profile test` runs)."""

import csv
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mergeir.pipeline.runner import Runner

ROOT = Path(__file__).resolve().parents[1]
TEST = ROOT / "data" / "test.yaml"
CONFIG = ROOT / "conf" / "test.config"


def test_runner_defaults_are_the_test_profile():
    params = dict(re.findall(r"^\s*(\w+)\s*=\s*'?([^'\s]+)'?", CONFIG.read_text().split("process {")[0], re.M))
    assert params["experiment"] == '"${projectDir}/data/test.yaml"'
    script = (ROOT / "scripts" / "run_local.py").read_text()
    for name in ("alpha_selection", "device", "encode_shards", "sweep_shards"):
        assert f'"--{name.replace("_", "-")}", default="{params[name]}"' in script, name


@pytest.mark.parametrize("shards", [(1, 1), (2, 3)])
def test_stub_run_of_the_test_profile(tmp_path, shards):
    """Every stub's file-name contract holds: the whole DAG runs on stubs (PLAN and the alpha edge for real),
    unsharded and with both scatter/gathers (the grid-chosen arm's ENCODE too)."""
    runner = Runner(tmp_path, TEST, stub=True)
    report = runner.run(alpha_selection="grid", device="cpu", encode_shards=shards[0], sweep_shards=shards[1])
    assert (report / "report.md").is_file()
    merges = list((tmp_path / "work" / "MERGE").iterdir())
    assert [m.name for m in merges] == ["merged-tiny-source-tiny-domain-a1_1"]  # the stub alpha, one merge
    gathered = runner.done_by_process.get("GATHER_EMBEDDINGS", [])
    assert len(gathered) == (0 if shards[0] == 1 else 5)  # source, merged (chosen at run time) and 3 LoRA
    assert len(runner.done_by_process.get("SWEEP_PART", [])) == (0 if shards[1] == 1 else 3)
    if shards[0] > 1:
        staged = sorted(p.name for p in (tmp_path / "work" / "GATHER_EMBEDDINGS" / "emb-tiny-source" / "parts").iterdir())
        assert staged == ["emb-tiny-source-shard0of2", "emb-tiny-source-shard1of2"]


def _bin(*args):
    subprocess.run([sys.executable, str(ROOT / "bin" / args[0]), *map(str, args[1:])], check=True,
                   capture_output=True, text=True)


@pytest.mark.slow
def test_test_profile_end_to_end(tmp_path):
    """The test profile as Nextflow runs it (2 encode shards, one sweep task per alpha_lower), checked against
    the unsharded commands: the gathered embeddings and grid are the ones a single task writes."""
    runner = Runner(tmp_path, TEST)
    report = runner.run(alpha_selection="grid", device="cpu", encode_shards=2, sweep_shards=3)
    art = runner.artifacts
    assert len(runner.done_by_process["SWEEP_PART"]) == 3 and runner.done_by_process["GATHER_GRID"] == ["grid-tiny"]
    gathered = set(runner.done_by_process["GATHER_EMBEDDINGS"])  # every embeddings artifact, none encoded whole
    assert gathered == {a for a in art if a.startswith("emb-") and "-shard" not in a} and len(gathered) >= 5
    assert all(re.search(r"-shard[01]of2$", e) for e in runner.done_by_process["ENCODE"])
    # the same commands unsharded, from the plan's own options (as a plan with --encode-shards 1 has them)
    plan = json.loads((tmp_path / "work" / "PLAN" / "plan" / "tasks" / "GATHER_EMBEDDINGS.json").read_text())
    enc = {r["id"]: r for r in json.loads((tmp_path / "work" / "PLAN" / "plan" / "tasks" / "ENCODE.json").read_text())}
    shard0 = enc[next(g for g in plan if g["id"] == "emb-tiny-source")["inputs"]["parts"][0]]
    opts = shlex.split(shard0["options"])
    opts = opts[:opts.index("--shard")]
    _bin("encode.py", "--model", art["model-tiny-source"], "--collection", art["collection-tiny"],
         "--out", tmp_path / "single-emb", *opts)
    for f in sorted(p.name for p in (tmp_path / "single-emb").iterdir()):
        assert (tmp_path / "single-emb" / f).read_bytes() == (art["emb-tiny-source"] / f).read_bytes(), f
    part0 = json.loads((tmp_path / "work" / "PLAN" / "plan" / "tasks" / "SWEEP_PART.json").read_text())[0]
    opts = shlex.split(part0["options"])
    opts = opts[:opts.index("--alpha-lower")]
    _bin("sweep.py", "--source", art["model-tiny-source"], "--domain", art["model-tiny-domain"],
         "--collection", art["collection-tiny"], "--out", tmp_path / "single-grid", *opts)
    whole = {p.relative_to(tmp_path / "single-grid").as_posix(): p.read_bytes()
             for p in (tmp_path / "single-grid").rglob("*") if p.is_file() and p.name != "grid.json"}
    assert whole == {p.relative_to(art["grid-tiny"]).as_posix(): p.read_bytes()
                     for p in art["grid-tiny"].rglob("*") if p.is_file() and p.name != "grid.json"}
    assert json.loads((tmp_path / "single-grid" / "grid.json").read_text())["points"] == \
        json.loads((art["grid-tiny"] / "grid.json").read_text())["points"]
    g = json.loads((art["grid-tiny"] / "grid.json").read_text())
    assert len(g["points"]) == 3 * 3
    assert sorted(p.name for p in art["trials-tiny"].glob("v*.jsonl")) == ["v1.jsonl", "v2.jsonl"]
    assert sum(1 for ln in (art["trials-tiny"] / "v1.jsonl").read_text().splitlines() if ln.strip()) == 6
    alpha = json.loads((art["alpha-tiny-limited-v1"] / "alpha.json").read_text())
    assert alpha["alpha_lower"] in g["grid"] and alpha["alpha_upper"] in g["grid"]
    assert (art["lora-tiny-limited-v1"] / "adapter_model.safetensors").is_file()

    metrics = {aid: json.loads((p / "metrics.json").read_text()) for aid, p in art.items() if aid.startswith("eval-")}
    assert len(metrics) == 7  # source + merged and LoRA for full, v1, v2
    for aid, m in metrics.items():
        assert m["tags"]["arm"] in aid and m["tags"]["collection"] == "tiny" and len(m["per_query"]) == 8
    merged_v1 = metrics["eval-tiny-merged-limited-v1"]["tags"]
    assert (float(merged_v1["alpha_lower"]), float(merged_v1["alpha_upper"])) == (alpha["alpha_lower"], alpha["alpha_upper"])
    lora = np.load(art["emb-tiny-lora-limited-v1"] / "corpus.npy", allow_pickle=False)
    source = np.load(art["emb-tiny-source"] / "corpus.npy", allow_pickle=False)
    assert lora.shape == source.shape and not np.allclose(lora, source, atol=1e-6)  # the adapter was trained
    with open(report / "table_a_source_vs_merged.csv", newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert float(row["source"]) == pytest.approx(metrics["eval-tiny-source"]["mean"]["ndcg_cut_10"], abs=5e-7)
    assert float(row["merged"]) == pytest.approx(metrics["eval-tiny-merged-full-full"]["mean"]["ndcg_cut_10"], abs=5e-7)

    # a rerun is a -resume: PLAN runs again, every task is skipped because its row is unchanged
    done = {p: p.stat().st_mtime_ns for p in (tmp_path / "work").rglob(".done") if "PLAN" not in p.parts}
    Runner(tmp_path, TEST).run(alpha_selection="grid", device="cpu", encode_shards=2, sweep_shards=3)
    assert done == {p: p.stat().st_mtime_ns for p in (tmp_path / "work").rglob(".done") if "PLAN" not in p.parts}
