#!/usr/bin/env python3
"""The `test` profile's chain of bin/ commands, without Nextflow: what `scripts/quickstart.sh` runs and what
tests/test_pipeline_chain.py checks.

Inputs and every option come from data/test.yaml through `plan.py tasks` (the CSVs main.nf reads), and each
step is the command line its module runs (modules/local/*.nf): PLAN, PREPARE_COLLECTION, MAKE_TINY,
ENCODE/EVALUATE (source), SWEEP, PREPARE_TRAINING, MAKE_TRIALS, SELECT_ALPHA, MERGE, ENCODE/EVALUATE (merged),
LORA_TRAIN, ENCODE/EVALUATE (lora), REPORT.

    python scripts/chain.py OUT_DIR
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEST_YAML = ROOT / "data" / "test.yaml"


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _run(script: str, *args) -> None:
    cmd = [sys.executable, str(ROOT / "bin" / script), *map(str, args)]
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    t = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise RuntimeError(f"{script} {' '.join(map(str, args))} failed ({p.returncode}):\n{p.stderr[-4000:]}")
    print(f"  {script} {args[0] if args else ''}: {time.time() - t:.1f} s", file=sys.stderr)


def run_chain(out: Path) -> dict:
    """Run the chain into `out`; return the paths the checks need."""
    sys.path.insert(0, str(ROOT / "src"))
    from mergeir.experiment import load_experiment

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    exp = load_experiment(TEST_YAML)
    p: dict = {"experiment": exp}

    tasks = out / "tasks"  # PLAN
    _run("plan.py", "tasks", "--experiment", TEST_YAML, "--out", tasks)
    (c,) = _rows(tasks / "collections.csv")
    (tiny,) = _rows(tasks / "tiny.csv")
    (lora,) = _rows(tasks / "lora.csv")
    trials = {(t["setting"], t["trial"]): t for t in _rows(tasks / "trials.csv")}
    p.update(collection_row=c, trials=trials)

    # PREPARE_COLLECTION: the fixture, resolved as main.nf does (relative to the YAML)
    p["fixture"] = exp.resolve(c["path"])
    coll = out / c["collection"]
    _run("download.py", "collection", f"beir:{p['fixture']}", "--out", coll)

    models = out / "models"  # MAKE_TINY
    _run("make_tiny.py", "models", "--collection", coll, "--out", models, "--seed", tiny["seed"], "--layers", tiny["layers"])
    source, domain = models / "source", models / "domain"
    enc = ["--collection", coll, "--split", c["eval_split"], "--pooling", c["pooling"],
           "--query-instruction", c["query_instruction"], "--max-length", c["max_length"],
           "--batch-size", c["batch_size"], "--dtype", c["dtype"], "--device", "cpu", "--no-progress"]
    drop = ["--drop-first-qrel"] if c["drop_first_qrel"] == "true" else []

    def encode_evaluate(name: str, model: Path, adapter: Path | None = None, **tags) -> Path:
        emb = out / "embeddings" / name
        _run("encode.py", "--model", model, *(["--adapter", adapter] if adapter else []), *enc, "--out", emb)
        res = out / "results" / name
        tag_args = [a for k, v in tags.items() for a in ("--tag", f"{k}={v}")]
        _run("evaluate.py", "--embeddings", emb, "--collection", coll, "--out", res, "--split", c["eval_split"],
             "--depth", c["depth"], *drop, *tag_args)
        p.setdefault(f"embeddings_{tags['arm']}", emb)
        return res / "metrics.json"

    p["metrics_source"] = encode_evaluate("tiny-source", source, collection="tiny", arm="source")

    grid = out / "grid"  # SWEEP on the labelled split, in memory
    _run("sweep.py", "--source", source, "--domain", domain, "--collection", coll, "--out", grid,
         "--split", c["train_split"], "--grid", c["grid"], "--split-layer", c["split_layer"], "--pooling", c["pooling"],
         "--query-instruction", c["query_instruction"], "--max-length", c["max_length"], "--batch-size", c["batch_size"],
         "--dtype", c["dtype"], "--device", "cpu", "--depth", c["sweep_depth"], "--restore-source-embeddings")
    p["grid"] = grid

    # PREPARE_TRAINING (every labelled query, hard negatives from the source) and MAKE_TRIALS
    train = out / "training" / "full.jsonl"
    _run("prepare_training.py", "mine", "--collection", coll, "--model", source, "--out", train,
         "--split", c["train_split"], "--negatives", lora["negatives"], "--pooling", c["pooling"],
         "--max-length", c["max_length"], "--query-instruction", c["query_instruction"], "--batch-size", c["batch_size"],
         "--device", "cpu", "--no-progress")
    trial_dir = out / "training" / "trials"
    _run("prepare_training.py", "trials", "--train", train, "--out", trial_dir, "--trials", c["limited_trials"],
         "--queries", c["trial_queries"], "--seed", c["trial_seed"])
    v1 = trial_dir / "v1.jsonl"
    p.update(trial_dir=trial_dir, v1=v1)

    # SELECT_ALPHA per setting: the full set's queries, and trial v1's queries only
    def select(name: str, queries: Path) -> dict:
        alpha = out / "alpha" / f"{name}.json"
        _run("report.py", "select-alpha", "--grid", grid, "--queries", queries, "--eval-split", c["eval_split"],
             "--out", alpha)
        return json.loads(alpha.read_text())

    def merged_arm(setting: str, trial: str, a: dict) -> Path:
        model = out / "models" / f"merged-{a['alpha_lower']}-{a['alpha_upper']}"  # MERGE, once per distinct alpha
        if not model.is_dir():
            _run("merge.py", "--source", source, "--domain", domain, "--alpha-lower", a["alpha_lower"],
                 "--alpha-upper", a["alpha_upper"], "--out", model, "--method", c["merge_method"],
                 "--dtype", c["merge_dtype"], "--split-layer", c["split_layer"], "--restore-source-embeddings")
        return encode_evaluate(f"tiny-merged-{setting}-{trial}", model, collection="tiny", arm="merged",
                               setting=setting, trial=trial, alpha_lower=a["alpha_lower"],
                               alpha_upper=a["alpha_upper"], alpha_selection="grid")

    def lora_arm(setting: str, trial: str, train_file: Path) -> tuple[Path, Path]:
        adapter = out / "adapters" / f"{setting}-{trial}"  # LORA_TRAIN with data/test.yaml's recipe
        t = trials[(setting, trial)]
        ds = ["--deepspeed", exp.resolve(lora["deepspeed"])] if lora["deepspeed"] else []
        _run("lora_train.py", "--model", source, "--train", train_file, "--out", adapter, "--max-steps", t["max_steps"],
             "--pooling", c["pooling"], "--query-instruction", c["query_instruction"], "--lora-r", lora["lora_r"],
             "--lora-alpha", lora["lora_alpha"], "--lora-dropout", lora["lora_dropout"],
             "--lora-target-modules", lora["target_modules"], "--temperature", lora["temperature"],
             "--group-size", lora["group_size"], "--per-device-batch", lora["per_device_batch"],
             "--grad-accum", lora["grad_accum"], "--lr", lora["lr"], "--warmup-ratio", lora["warmup_ratio"],
             "--warmup-type", lora["warmup_type"], "--query-max-length", lora["query_max_length"],
             "--passage-max-length", lora["passage_max_length"], "--precision", lora["precision"],
             "--seed", lora["seed"], "--device", "cpu", "--no-progress",
             "--gradient-checkpointing" if lora["gradient_checkpointing"] == "true" else "--no-gradient-checkpointing",
             *ds)
        metrics = encode_evaluate(f"tiny-lora-{setting}-{trial}", source, adapter, collection="tiny", arm="lora",
                                  setting=setting, trial=trial)
        return adapter, metrics

    p["alpha"] = select("limited-v1", v1)
    p["metrics_merged"] = merged_arm("limited", "v1", p["alpha"])
    p["adapter"], p["metrics_lora"] = lora_arm("limited", "v1", v1)
    # the full-data setting too, so the report's Tables A and B have a row
    p["alpha_full"] = select("full-full", train)
    p["metrics_merged_full"] = merged_arm("full", "full", p["alpha_full"])
    p["adapter_full"], p["metrics_lora_full"] = lora_arm("full", "full", train)

    report = out / "report"  # REPORT over everything
    _run("report.py", "build", "--results", out / "results", "--grid", grid, "--out", report)
    p["report"] = report
    return p


def main() -> None:
    if len(sys.argv) != 2 or sys.argv[1].startswith("-"):
        sys.exit(f"usage: {sys.argv[0]} OUT_DIR")
    t = time.time()
    p = run_chain(Path(sys.argv[1]))
    for arm in ("source", "merged", "lora"):
        m = json.loads(Path(p[f"metrics_{arm}"]).read_text())
        print(f"{arm:7s} nDCG@10 = {m['mean']['ndcg_cut_10']:.4f}  ({p[f'metrics_{arm}']})")
    print(f"report: {p['report'] / 'report.md'}   ({time.time() - t:.0f} s)")


if __name__ == "__main__":
    main()
