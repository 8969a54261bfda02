"""The `test` profile's chain of bin/ commands, end to end on CPU, from the same inputs as conf/test.config.

The inputs and every option value come from data/test.yaml through `plan.py tasks` (the CSVs main.nf reads),
so this test and `nextflow run main.nf -profile test` cannot drift apart. Each step is the command line its
module runs (modules/local/*.nf): PLAN, PREPARE_COLLECTION, MAKE_TINY, ENCODE/EVALUATE (source), SWEEP,
PREPARE_TRAINING, MAKE_TRIALS, SELECT_ALPHA, MERGE, ENCODE/EVALUATE (merged), LORA_TRAIN, ENCODE/EVALUATE
(lora), REPORT.
"""

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from helpers_cli import run_bin
from mergeir.experiment import load_experiment

ROOT = Path(__file__).resolve().parents[1]
TEST_YAML = ROOT / "data" / "test.yaml"
CONFIG = ROOT / "conf" / "test.config"


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _run(script, *args):
    return run_bin(script, *args, check=True, env={"CUDA_VISIBLE_DEVICES": ""})


def _encode(c: dict, model: Path, out: Path, adapter: Path | None = None):
    extra = ["--adapter", adapter] if adapter else []
    _run("encode.py", "--model", model, *extra, "--collection", c["_dir"], "--out", out, "--split", c["eval_split"],
         "--pooling", c["pooling"], "--query-instruction", c["query_instruction"], "--max-length", c["max_length"],
         "--batch-size", c["batch_size"], "--dtype", c["dtype"], "--device", "cpu", "--no-progress")


def _evaluate(c: dict, emb: Path, out: Path, **tags):
    tag_args = [a for k, v in tags.items() for a in ("--tag", f"{k}={v}")]
    drop = ["--drop-first-qrel"] if c["drop_first_qrel"] == "true" else []
    _run("evaluate.py", "--embeddings", emb, "--collection", c["_dir"], "--out", out, "--split", c["eval_split"],
         "--depth", c["depth"], *drop, *tag_args)
    return json.loads((out / "metrics.json").read_text())


def test_test_profile_reads_data_test_yaml():
    assert '"${projectDir}/data/test.yaml"' in CONFIG.read_text()


@pytest.mark.slow
def test_bin_chain_of_the_test_profile(tmp_path):
    exp = load_experiment(TEST_YAML)
    # PLAN
    tasks = tmp_path / "tasks"
    _run("plan.py", "tasks", "--experiment", TEST_YAML, "--out", tasks)
    (c,) = _rows(tasks / "collections.csv")
    (tiny,) = _rows(tasks / "tiny.csv")
    (lora,) = _rows(tasks / "lora.csv")
    trials = {(t["setting"], t["trial"]): t for t in _rows(tasks / "trials.csv")}
    assert c["download"] == "beir" and set(trials) == {("full", "full"), ("limited", "v1"), ("limited", "v2")}

    # PREPARE_COLLECTION: the fixture the test profile uses, resolved as main.nf does (relative to the YAML)
    source_dir = exp.resolve(c["path"])
    assert source_dir == (ROOT / "tests" / "fixtures" / "tiny-beir").resolve()
    coll = tmp_path / c["collection"]
    _run("download.py", "collection", f"beir:{source_dir}", "--out", coll)
    c["_dir"] = coll

    # MAKE_TINY
    models = tmp_path / "models"
    _run("make_tiny.py", "models", "--collection", coll, "--out", models, "--seed", tiny["seed"], "--layers", tiny["layers"])
    source, domain = models / "source", models / "domain"

    results = tmp_path / "results"
    # source arm
    _encode(c, source, tmp_path / "emb-source")
    m_source = _evaluate(c, tmp_path / "emb-source", results / "tiny-source", collection="tiny", arm="source")

    # SWEEP on the labelled split, in memory
    grid = tmp_path / "tiny-grid"
    _run("sweep.py", "--source", source, "--domain", domain, "--collection", coll, "--out", grid,
         "--split", c["train_split"], "--grid", c["grid"], "--split-layer", c["split_layer"], "--pooling", c["pooling"],
         "--query-instruction", c["query_instruction"], "--max-length", c["max_length"], "--batch-size", c["batch_size"],
         "--dtype", c["dtype"], "--device", "cpu", "--depth", c["sweep_depth"], "--restore-source-embeddings")
    g = json.loads((grid / "grid.json").read_text())
    n_alpha = len(c["grid"].split(","))
    assert len(g["points"]) == n_alpha * n_alpha

    # PREPARE_TRAINING (full set: every labelled query, hard negatives from the source) and MAKE_TRIALS
    train = tmp_path / "train.jsonl"
    _run("prepare_training.py", "mine", "--collection", coll, "--model", source, "--out", train,
         "--split", c["train_split"], "--negatives", lora["negatives"], "--pooling", c["pooling"],
         "--max-length", c["max_length"], "--query-instruction", c["query_instruction"], "--batch-size", c["batch_size"],
         "--device", "cpu", "--no-progress")
    assert c["full_queries"] == ""  # the test profile trains the full setting on every labelled query
    trial_dir = tmp_path / "trials"
    _run("prepare_training.py", "trials", "--train", train, "--out", trial_dir, "--trials", c["limited_trials"],
         "--queries", c["trial_queries"], "--seed", c["trial_seed"])
    assert sorted(p.name for p in trial_dir.glob("v*.jsonl")) == ["v1.jsonl", "v2.jsonl"]
    v1 = trial_dir / "v1.jsonl"
    assert sum(1 for ln in v1.read_text().splitlines() if ln.strip()) == int(trials[("limited", "v1")]["n_queries"])

    # SELECT_ALPHA on the grid, scored on trial v1's queries only
    alpha = tmp_path / "alpha.json"
    _run("report.py", "select-alpha", "--grid", grid, "--queries", v1, "--eval-split", c["eval_split"], "--out", alpha)
    a = json.loads(alpha.read_text())
    assert a["selection"] == "grid" and a["alpha_lower"] in g["grid"] and a["alpha_upper"] in g["grid"]

    # MERGE at the chosen alpha, then the merged arm
    merged = tmp_path / "merged"
    _run("merge.py", "--source", source, "--domain", domain, "--alpha-lower", a["alpha_lower"],
         "--alpha-upper", a["alpha_upper"], "--out", merged, "--method", c["merge_method"], "--dtype", c["merge_dtype"],
         "--split-layer", c["split_layer"], "--restore-source-embeddings")
    _encode(c, merged, tmp_path / "emb-merged")
    m_merged = _evaluate(c, tmp_path / "emb-merged", results / "tiny-merged-limited-v1", collection="tiny",
                         arm="merged", setting="limited", trial="v1", alpha_lower=a["alpha_lower"],
                         alpha_upper=a["alpha_upper"], alpha_selection="grid")

    # LORA_TRAIN on trial v1 with the recipe of data/test.yaml, then the LoRA arm
    adapter = tmp_path / "adapter"
    t = trials[("limited", "v1")]
    ds = ["--deepspeed", exp.resolve(lora["deepspeed"])] if lora["deepspeed"] else []
    _run("lora_train.py", "--model", source, "--train", v1, "--out", adapter, "--max-steps", t["max_steps"],
         "--pooling", c["pooling"], "--query-instruction", c["query_instruction"], "--lora-r", lora["lora_r"],
         "--lora-alpha", lora["lora_alpha"], "--lora-dropout", lora["lora_dropout"],
         "--lora-target-modules", lora["target_modules"], "--temperature", lora["temperature"],
         "--group-size", lora["group_size"], "--per-device-batch", lora["per_device_batch"],
         "--grad-accum", lora["grad_accum"], "--lr", lora["lr"], "--warmup-ratio", lora["warmup_ratio"],
         "--warmup-type", lora["warmup_type"], "--query-max-length", lora["query_max_length"],
         "--passage-max-length", lora["passage_max_length"], "--precision", lora["precision"], "--seed", lora["seed"],
         "--device", "cpu", "--no-progress",
         "--gradient-checkpointing" if lora["gradient_checkpointing"] == "true" else "--no-gradient-checkpointing", *ds)
    assert (adapter / "adapter_model.safetensors").is_file()
    _encode(c, source, tmp_path / "emb-lora", adapter=adapter)
    m_lora = _evaluate(c, tmp_path / "emb-lora", results / "tiny-lora-limited-v1", collection="tiny", arm="lora",
                       setting="limited", trial="v1")

    # three metrics.json, each scoring every eval query, tagged as the pipeline tags them
    n_eval = exp.collections["tiny"].n_eval_queries
    for m, arm in ((m_source, "source"), (m_merged, "merged"), (m_lora, "lora")):
        assert m["tags"]["arm"] == arm and m["tags"]["collection"] == "tiny"
        assert len(m["per_query"]) == n_eval
        assert 0.0 <= m["mean"]["ndcg_cut_10"] <= 1.0
    # the adapter was trained (its steps moved the weights), so the LoRA arm's vectors are not the source's
    lora_vecs = np.load(tmp_path / "emb-lora" / "corpus.npy", allow_pickle=False)
    source_vecs = np.load(tmp_path / "emb-source" / "corpus.npy", allow_pickle=False)
    assert lora_vecs.shape == source_vecs.shape and not np.allclose(lora_vecs, source_vecs, atol=1e-6)

    # REPORT over everything
    report = tmp_path / "report"
    _run("report.py", "build", "--results", results, "--grid", grid, "--out", report)
    assert (report / "report.md").is_file()
